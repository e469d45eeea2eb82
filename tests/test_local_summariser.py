"""The offline summariser reads like a summary, in English, German, French and
Spanish: hand-written articles in tests/fixtures/articles, judged by the same
checks as bench/summaries_quality.py (tests/helpers/summary_quality.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from summaries.core.language import detect_language
from summaries.core.lexicon import LEXICONS
from summaries.providers import LocalProvider, split_sentences
from summaries.providers.local import ALGORITHM_VERSION
from tests.helpers.summary_quality import judge, tag_problem

pytestmark = pytest.mark.no_valkey

ARTICLES = Path(__file__).parent / "fixtures" / "articles"
FIXTURES = sorted(ARTICLES.glob("*.txt"))
LANGUAGE_OF = {"en": "en", "de": "de", "fr": "fr", "es": "es"}


def article(name: str) -> str:
    return (ARTICLES / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_it_reads_like_a_summary(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    language = detect_language(text)
    assert language == LANGUAGE_OF[path.stem.split("-")[0]]

    result = LocalProvider().summarize(text)
    verdict = judge(text, result.summary, result.tags, language)

    assert verdict.connective_starts == [], result.summary
    assert verdict.pronoun_starts == [], result.summary
    assert verdict.bad_tags == [], result.tags
    # Each article's lead carries its story: it opens the summary.
    assert verdict.lead_eligible and verdict.lead_included, result.summary
    # Quoted from the text, in its order.
    chosen = split_sentences(result.summary)
    flat = " ".join(text.split())
    assert [flat.index(s.rstrip(".")) for s in chosen] == sorted(
        flat.index(s.rstrip(".")) for s in chosen)


@pytest.mark.parametrize("path", [p for p in FIXTURES if not p.stem.startswith("en-")],
                         ids=lambda p: p.stem)
def test_tags_of_a_non_english_text_are_its_words_not_stopwords(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    tags = LocalProvider().summarize(text).tags
    language = detect_language(text)
    assert language is not None
    for tag in tags:
        for word in tag.split():
            assert word not in LEXICONS[language].stopwords, tag
            assert word not in LEXICONS["en"].stopwords, tag
            assert word in text.lower(), tag


def test_non_english_tags_keep_their_accents() -> None:
    tags = LocalProvider().summarize(article("fr-tramway.txt")).tags
    assert "métropole" in tags  # "calend rio" was what an ASCII tokeniser made of accents


def test_names_make_tags() -> None:
    tags = LocalProvider().summarize(article("en-harbour-bridge.txt")).tags
    assert "port albany" in tags


@pytest.mark.parametrize(("tag", "problem"), [
    ("president's", "possessive"),
    ("the", "stopword"),
    ("open", "bare verb"),
    ("stay", "bare verb"),
    ("submarine", "not in the text"),
])
def test_the_tag_checks_catch_what_they_should(tag: str, problem: str) -> None:
    text = "The president's plan says the open harbour will stay open. Ships open it daily."
    assert tag_problem(tag, text, "en") == problem


def test_a_name_after_to_is_not_taken_for_a_verb() -> None:
    text = "The probe flew to Mars in May. A second mission to Mars will try to land."
    assert tag_problem("mars", text, "en") is None
    assert tag_problem("land", text, "en") == "bare verb"


def test_connectives_are_dropped_when_every_sentence_opens_with_one() -> None:
    text = ("But the harbour crew checked the ferry schedule before dawn. "
            "And the freight records showed a late cargo ship from Lisbon. "
            "However, the harbour master kept the ferry schedule unchanged.")
    result = LocalProvider().summarize(text)
    assert judge(text, result.summary, result.tags, "en").connective_starts == []
    assert all(s.split()[0].lower().strip(",") not in {"but", "and", "however"}
               for s in split_sentences(result.summary))


def test_a_pronoun_sentence_may_follow_its_referent() -> None:
    text = ("Mayor Helen Okafor opened the harbour bridge in Port Albany on Tuesday morning. "
            "She said the harbour bridge joins two halves of the city at last. "
            "Crowds of commuters crossed the harbour bridge on foot before the first tram. "
            "It was the first harbour bridge in the city since the old ferry closed.")
    result = LocalProvider().summarize(text)
    verdict = judge(text, result.summary, result.tags, "en")
    assert verdict.pronoun_starts == [], result.summary
    chosen = split_sentences(result.summary)
    assert chosen[0].startswith("Mayor Helen Okafor")


def test_the_algorithm_version_is_in_the_namespace() -> None:
    assert LocalProvider().cache_namespace == f"local:textrank:{ALGORITHM_VERSION}"
    assert ALGORITHM_VERSION == "v5"


def test_a_requested_language_does_not_change_an_extract() -> None:
    text = article("de-radweg.txt")
    provider = LocalProvider()
    assert provider.translates is False
    assert provider.summarize(text, language="en") == provider.summarize(text)
