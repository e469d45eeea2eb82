"""The output contract and the sentence splitter on hostile and very large text.

No database, no network: pure functions (and the local provider, which is one)."""

from __future__ import annotations

import unicodedata

import pytest

from summaries.core.errors import JobError
from summaries.providers import (
    ContractError,
    LocalProvider,
    check_output,
    clean_text,
    count_sentences,
    has_sentences,
    split_sentences,
)

pytestmark = pytest.mark.no_valkey


def _is_storable(text: str) -> bool:
    """What PostgreSQL and psycopg accept, and nothing a terminal would obey:
    no C0/C1 control character (whitespace collapsed to spaces) and no lone
    surrogate (strict UTF-8 encodes)."""
    text.encode("utf-8")  # raises on a lone surrogate
    return not any(unicodedata.category(ch) == "Cc" for ch in text)


# --- counting sentences without splitting them all -------------------------------

SAMPLES = [
    "One here. Two there.",
    "Dr. Smith met Mrs. Jones. They talked.",
    "She moved to the U.S. The rest followed.",
    '"Stop." Then he left.',
    "Wait... what? Then... Silence\u2026 The end",
    "A heading\n\nThe body  starts\nhere. It ends.",
    "no punctuation at all",
    "  \n ",
    "",
    "... . !!! ?",  # punctuation only: no sentence at all
    "Dr. Dr. Dr. Dr.",
    "Ends here.",
    "x. y. z.",
    "Cats purr. " * 50,
]


@pytest.mark.parametrize("text", SAMPLES)
def test_count_and_has_sentences_agree_with_split(text: str) -> None:
    total = len(split_sentences(text))
    assert count_sentences(text) == total
    for limit in range(0, 5):
        assert count_sentences(text, limit=limit) == min(total, limit)
        assert has_sentences(text, at_least=limit) is (total >= limit)
    assert has_sentences(text) is (total >= 2)  # the API's check


def test_count_sentences_rejects_a_negative_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        count_sentences("One. Two.", limit=-1)


# --- very large inputs ---------------------------------------------------------------

CATS = "Cats purr. " * 200_000  # 2.2M characters, 200,000 identical sentences


def test_split_sentences_on_two_million_characters() -> None:
    sentences = split_sentences(CATS)
    assert len(sentences) == 200_000
    assert set(sentences) == {"Cats purr."}
    assert has_sentences(CATS) and count_sentences(CATS, limit=3) == 3


@pytest.mark.parametrize(
    "text",
    [
        "." * 200_000 + " Then words.",  # one long punctuation run (regex backtracking)
        "\u2026" * 100_000 + "x" + "?" * 100_000 + " Next one.",
        "a" * 300_000 + ". " + "b" * 300_000 + ".",  # words longer than any window
        "Dr. " * 100_000 + "Smith left. He won.",  # candidates that are not boundaries
        " \n" * 100_000 + "Late start. Late end.",
    ],
)
def test_split_sentences_on_pathological_text(text: str) -> None:
    sentences = split_sentences(text)
    assert sentences and all(any(ch.isalnum() for ch in s) for s in sentences)
    assert count_sentences(text) == len(sentences)


def test_long_words_are_not_abbreviations() -> None:
    # A word longer than the look-back window is an ordinary word: the period ends it.
    long = "x" * 500
    assert split_sentences(f"See {long}. Then more.") == [f"See {long}.", "Then more."]
    assert split_sentences("Visit the U.S. The rest followed.") == [
        "Visit the U.S.", "The rest followed."]


def test_local_summarises_two_million_characters_of_two_sentences() -> None:
    pets = "Cats purr at night. Dogs bark at the postman. " * 45_000  # 2.1M characters
    result = LocalProvider().summarize(pets)
    sentences = split_sentences(result.summary)
    assert set(sentences) == {"Cats purr at night.", "Dogs bark at the postman."}
    assert len(sentences) == 2  # each distinct sentence once


def test_one_sentence_repeated_two_million_characters_is_too_short() -> None:
    # A summary would have to repeat it: refused as input_too_short, not garbled.
    with pytest.raises(JobError) as refused:
        LocalProvider().summarize(CATS)
    assert refused.value.code == "input_too_short" and not refused.value.transient


# --- control characters and lone surrogates (PostgreSQL refuses NUL) ------------------

HOSTILE = ("The windmill\x00 project started\x07. Volunteers met\x9b weekly\x85and"
           " delivered\ud800 results\x7f.\x1b[0m")


def test_clean_text_drops_controls_and_replaces_lone_surrogates() -> None:
    cleaned = clean_text(HOSTILE)
    assert cleaned == ("The windmill project started. Volunteers met weekly\x85and"
                       " delivered\ufffd results.[0m")
    # Ordinary whitespace (and other whitespace controls) is left for callers to collapse.
    assert clean_text("a\tb\nc\r\nd\x0be\x1cf") == "a\tb\nc\r\nd\x0be\x1cf"
    assert clean_text("caf\u00e9 \U0001f600 \u200b\u00ad") == "caf\u00e9 \U0001f600 \u200b\u00ad"


def test_check_output_cleans_the_summary() -> None:
    result = check_output(HOSTILE, ["wind", "mill"])
    assert _is_storable(result.summary)
    assert result.summary == ("The windmill project started. Volunteers met weekly and"
                              " delivered\ufffd results.[0m")


def test_check_output_cleans_tags() -> None:
    result = check_output("One here. Two there.",
                          ["wind\x00mill", "\x1bvolunteers\x9b", "proj\udfffect", "a\x85b"])
    assert result.tags == ["windmill", "volunteers", "proj\ufffdect", "a b"]
    assert all(_is_storable(tag) for tag in result.tags)


def test_check_output_rejects_a_tag_of_only_control_characters() -> None:
    with pytest.raises(ContractError, match="tag 2 is empty"):
        check_output("One here. Two there.", ["fine", "\x00\x07\x1b"])


def test_cleaning_happens_before_counting_sentences() -> None:
    # "\x00" hides nothing: the same two sentences with or without it.
    assert check_output("First one.\x00 Second one.", ["a", "b"]).summary == (
        "First one. Second one.")
    with pytest.raises(ContractError, match="summary has 1 sentence"):
        check_output("Only one\x00.", ["a", "b"])


def test_local_provider_output_is_storable() -> None:
    text = ("Valkey\x00 is an open source key-value store\x1b[1m. It forked from Redis\x07 in"
            " 2024 after a licence change\ud800. Many cloud providers offer it as a managed"
            " service\x9b.")
    result = LocalProvider().summarize(text)
    assert _is_storable(result.summary) and all(_is_storable(t) for t in result.tags)
    assert len(split_sentences(result.summary)) == 2
