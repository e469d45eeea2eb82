"""The providers and their output contract: no database, no network (the Gemini
tests drive the real SDK against the loopback fake)."""

from __future__ import annotations

import gc
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from summaries.core.errors import JobError
from summaries.providers import (
    BatchItem,
    ContractError,
    LocalProvider,
    Provider,
    RequestRejected,
    SummaryResult,
    batching_of,
    build_provider,
    check_output,
    split_sentences,
)
from summaries.providers.gemini import (
    MAX_INPUT_CHARS,
    MAX_RETRY_AFTER_S,
    PROMPT_VERSION,
    GeminiProvider,
)
from tests.helpers.fakes.gemini import FakeGemini

pytestmark = pytest.mark.no_valkey


TWO = "Valkey is a key-value store. It forked from Redis in 2024."

# --- split_sentences ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One here. Two there.", ["One here.", "Two there."]),
        ("Dr. Smith met Mrs. Jones. They talked.", ["Dr. Smith met Mrs. Jones.", "They talked."]),
        ("We need tools, e.g. hammers, i.e. things. Fine.",
         ["We need tools, e.g. hammers, i.e. things.", "Fine."]),
        ("Prices rose 3.5 percent to $4.20 a unit. Sales fell.",
         ["Prices rose 3.5 percent to $4.20 a unit.", "Sales fell."]),
        ("She works in the U.S. Army office. It is big.",
         ["She works in the U.S. Army office.", "It is big."]),
        ("She moved to the U.S. The rest followed.",
         ["She moved to the U.S.", "The rest followed."]),
        ("It starts at 9 a.m. and ends late. Good.",
         ["It starts at 9 a.m. and ends late.", "Good."]),
        ('"Stop." Then he left.', ['"Stop."', "Then he left."]),
        ('"Why?" she asked. Nobody knew!', ['"Why?" she asked.', "Nobody knew!"]),
        ("Really?! Yes.", ["Really?!", "Yes."]),
        ("Wait... what? Then... Silence\u2026 The end",
         ["Wait... what?", "Then...", "Silence\u2026", "The end"]),
        ("J. R. R. Tolkien wrote it. Readers loved it.",
         ["J. R. R. Tolkien wrote it.", "Readers loved it."]),
        ("See fig. 3 and No. 5 below. Done.", ["See fig. 3 and No. 5 below.", "Done."]),
        ("Visit example.com today. Or v1.2 docs.", ["Visit example.com today.", "Or v1.2 docs."]),
        ("A heading\n\nThe body  starts\nhere. It ends.",
         ["A heading", "The body starts here.", "It ends."]),
        ("no punctuation at all", ["no punctuation at all"]),
        ("  \n ", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


# --- check_output -----------------------------------------------------------------


def test_check_output_accepts_and_normalises() -> None:
    result = check_output("  First  sentence here.\nSecond one, e.g. this.  ",
                          ["  Solar  Power ", "GRID", "solar power", "Grid ", "storage"])
    assert result == SummaryResult("First sentence here. Second one, e.g. this.",
                                   ["solar power", "grid", "storage"])


def test_check_output_dedups_before_counting() -> None:
    with pytest.raises(ContractError, match="1 distinct tag; expected 2-4") as info:
        check_output(TWO, ["Redis", "redis ", " REDIS"])
    assert info.value.code == "ai_bad_output" and info.value.transient is False
    assert check_output(TWO, ["a", "b", "c", "d", "A", "b "]).tags == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("summary", "tags", "message"),
    [
        ("Only one sentence.", ["a", "b"], "summary has 1 sentence; expected 2-3"),
        ("One. Two. Three. Four. Five.", ["a", "b"], "summary has 5 sentences; expected 2-3"),
        ("   ", ["a", "b"], "summary is empty"),
        ("Long. " + "word " * 300 + ".", ["a", "b"], "characters; expected at most 1000"),
        (TWO, ["a", "b", "c", "d", "e"], "5 distinct tags; expected 2-4"),
        (TWO, [], "0 distinct tags"),
        (TWO, ["a", " "], "tag 2 is empty"),
        (TWO, ["a", "one two three four"], "has 4 words; expected at most 3"),
        (TWO, ["a", "x" * 31], "has 31 characters; expected at most 30"),
        (TWO, ["a", "two\nlines"], "tag 2 spans several lines"),
    ],
)
def test_check_output_rejects(summary: str, tags: list[str], message: str) -> None:
    with pytest.raises(ContractError, match=message):
        check_output(summary, tags)


def test_contract_error_is_a_permanent_job_error() -> None:
    error = ContractError("bad")
    assert isinstance(error, JobError)
    assert (error.code, error.transient, error.message) == ("ai_bad_output", False, "bad")


# --- build_provider ---------------------------------------------------------------


def test_build_provider() -> None:
    local: Provider = build_provider("local")
    assert (local.name, local.model, local.cache_namespace) == ("local", "textrank",
                                                                "local:textrank:v5")
    gemini: Provider = build_provider("gemini", gemini_api_key="k", gemini_model="gemini-x")
    assert (gemini.name, gemini.model) == ("gemini", "gemini-x")
    assert gemini.cache_namespace == f"gemini:gemini-x:{PROMPT_VERSION}"
    # The endpoint is not part of the namespace: a proxy serves the same model.
    proxied = build_provider("gemini", gemini_api_key="secret-123", gemini_model="gemini-x",
                             gemini_base_url="http://proxy.invalid")
    assert proxied.cache_namespace == gemini.cache_namespace
    assert "secret-123" not in repr(proxied)
    with pytest.raises(ValueError, match="API key"):
        build_provider("gemini")
    with pytest.raises(ValueError, match="unknown summary provider"):
        build_provider("nope")


# --- local provider -----------------------------------------------------------------

SOLAR = """Solar panels convert sunlight into electricity using photovoltaic cells.
The efficiency of solar panels has improved steadily over the last decade.
My cat prefers to sleep on the warm laundry basket every single afternoon.
Cheaper photovoltaic cells have made solar electricity competitive with coal.
Homeowners install solar panels on roofs to cut their electricity bills.
Grid operators now plan for large amounts of solar electricity at midday."""


def test_local_picks_central_sentences_in_order() -> None:
    result = LocalProvider().summarize(SOLAR)
    chosen = split_sentences(result.summary)
    assert len(chosen) == 2
    assert all(s in SOLAR for s in chosen)
    assert "cat" not in result.summary
    assert sorted(chosen, key=SOLAR.index) == chosen  # original order
    assert 2 <= len(result.tags) <= 4
    assert all(t == t.lower() and all(w in SOLAR.lower() for w in t.split()) for t in result.tags)
    assert "solar" in result.tags


def test_local_gives_three_sentences_for_a_longer_text() -> None:
    extra = (" Battery storage lets solar electricity flow into the evening peak."
             " Solar farms in deserts pair panels with large battery banks."
             " Analysts expect solar electricity to keep getting cheaper each year.")
    result = LocalProvider().summarize(SOLAR + extra)
    assert len(split_sentences(result.summary)) == 3
    assert "cat" not in result.summary


def test_local_is_deterministic() -> None:
    assert LocalProvider().summarize(SOLAR) == LocalProvider().summarize(SOLAR)


def test_local_tags_depend_on_the_text_alone() -> None:
    # A page's title is not an input: the tags are cached under the text's key.
    tags = LocalProvider().summarize(SOLAR).tags
    assert "coal" not in tags and tags == LocalProvider().summarize(SOLAR).tags


@pytest.mark.parametrize("text", ["Just one sentence here, nothing more.", "It is. It was.",
                                  "   "])
def test_local_rejects_too_short_input(text: str) -> None:
    with pytest.raises(JobError) as info:
        LocalProvider().summarize(text)
    assert info.value.code == "input_too_short" and info.value.transient is False


def test_local_handles_short_fragments() -> None:
    result = LocalProvider().summarize("Valkey rocks. Redis forked.")
    assert result.summary == "Valkey rocks. Redis forked."
    assert set(result.tags) == {"valkey", "rocks", "redis", "forked"} & set(result.tags)


def test_local_copes_with_a_long_article() -> None:
    topics = ["harbour", "ferry", "cargo", "crane", "tide", "pilot", "dock", "freight"]
    sentences = [
        f"The {topics[i % 8]} crew at berth {i} checked the {topics[(i * 3) % 8]} schedule"
        f" and the {topics[(i * 5) % 8]} records before the morning shift number {i} began."
        for i in range(1000)
    ]
    text = " ".join(sentences)
    assert len(text.split()) > 20_000
    result = LocalProvider().summarize(text)
    assert len(split_sentences(result.summary)) == 3
    assert 2 <= len(result.tags) <= 4


# --- Gemini through the real SDK, against the fake --------------------------------------

TEXT = ("The windmill project started last spring with a small team of volunteers. "
        "Volunteers on the windmill project met every week to plan the next steps. "
        "By autumn the windmill project had delivered its first public results.")


def provider(fake: FakeGemini, timeout_s: float = 5.0) -> GeminiProvider:
    return GeminiProvider("test-key", "gemini-test", fake.base_url, timeout_s)


def failure(fake: FakeGemini, mode: str, timeout_s: float = 5.0) -> JobError:
    fake.mode = mode
    with pytest.raises(JobError) as info:
        provider(fake, timeout_s).summarize(TEXT)
    return info.value


def test_gemini_ok(gemini: FakeGemini) -> None:
    result = provider(gemini).summarize(TEXT)
    assert len(split_sentences(result.summary)) == 2
    assert "windmill" in result.summary and "windmill" in result.tags
    assert gemini.calls == 1
    call = gemini.received[0]
    assert call.path == "/v1/models/gemini-test:generateContent"  # the SDK's default version
    assert (call.model, call.api_key) == ("gemini-test", "test-key")
    assert call.user_text == "<text>\n" + TEXT + "\n</text>"  # the text and nothing else
    assert "2-3 sentences" in call.prompt and "2-4 short lowercase tags" in call.prompt
    config = call.body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert set(config["responseSchema"]["required"]) == {"summary", "tags"}


def test_gemini_different_texts_get_different_summaries(gemini: FakeGemini) -> None:
    other = TEXT.replace("windmill", "lighthouse")
    first, second = provider(gemini).summarize(TEXT), provider(gemini).summarize(other)
    assert first.summary != second.summary and "lighthouse" in second.summary


def test_gemini_caps_the_text_sent(gemini: FakeGemini) -> None:
    provider(gemini).summarize(TEXT + " More words follow here." * 5000)
    assert MAX_INPUT_CHARS < len(gemini.received[0].user_text) < MAX_INPUT_CHARS + 100


@pytest.mark.parametrize(
    ("mode", "code", "transient"),
    [
        ("rate_limit", "ai_rate_limited", True),
        ("unavailable", "ai_unavailable", True),
        ("rejected", "ai_rejected", False),
        ("blocked", "ai_blocked", False),
        ("safety", "ai_blocked", False),
    ],
)
def test_gemini_failures_are_mapped_without_retrying(
        gemini: FakeGemini, mode: str, code: str, transient: bool) -> None:
    error = failure(gemini, mode)
    assert (error.code, error.transient) == (code, transient)
    assert gemini.calls == 1  # no SDK retry, no re-ask: retries belong to the task


def test_gemini_timeout_is_transient(gemini: FakeGemini) -> None:
    error = failure(gemini, "hang", timeout_s=0.5)
    assert (error.code, error.transient) == ("ai_timeout", True)
    assert gemini.calls == 1


def test_gemini_slow_answer_within_timeout(gemini: FakeGemini) -> None:
    gemini.delay_s = 0.2
    assert provider(gemini, timeout_s=3).summarize(TEXT).tags


def test_gemini_unreachable_is_transient() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error_provider = GeminiProvider("k", "gemini-test", f"http://127.0.0.1:{port}", 2)
    with pytest.raises(JobError) as info:
        error_provider.summarize(TEXT)
    assert (info.value.code, info.value.transient) == ("ai_unavailable", True)


@pytest.mark.parametrize("mode", ["bad", "truncated"])
def test_gemini_bad_output_is_asked_again_once_then_fails(gemini: FakeGemini, mode: str) -> None:
    error = failure(gemini, mode)
    assert isinstance(error, ContractError)
    assert (error.code, error.transient) == ("ai_bad_output", False)
    assert gemini.calls == 2
    assert "previous answer was rejected" in gemini.prompts[1]


@pytest.mark.parametrize("first", ["bad_then_ok", "truncated"])
def test_gemini_bad_output_then_ok(gemini: FakeGemini, first: str) -> None:
    if first == "bad_then_ok":
        gemini.mode = first
    else:
        gemini.script([first, "ok"])
    result = provider(gemini).summarize(TEXT)
    assert "windmill" in result.summary
    assert gemini.calls == 2
    assert "previous answer was rejected" not in gemini.prompts[0]
    assert "previous answer was rejected" in gemini.prompts[1]
    provider(gemini).summarize(TEXT)  # bad_then_ok: later calls are fine at once
    assert gemini.calls == 3


def test_fake_script_then_mode(gemini: FakeGemini) -> None:
    gemini.script(["unavailable", "rate_limit"])
    codes = []
    for _ in range(3):
        try:
            provider(gemini).summarize(TEXT)
            codes.append("ok")
        except JobError as exc:
            codes.append(exc.code)
    assert codes == ["ai_unavailable", "ai_rate_limited", "ok"]
    with pytest.raises(ValueError, match="unknown mode"):
        gemini.mode = "nope"


def test_lower_case_text_still_splits_into_sentences() -> None:
    text = "the team met on monday. volunteers planned the work. etc. and so on."
    assert split_sentences(text) == [
        "the team met on monday.", "volunteers planned the work.", "etc. and so on."]


def test_local_tags_prefer_names_and_early_terms_over_arbitrary_words() -> None:
    text = ("Valkey is an open source key-value store. It forked from Redis in 2024 after a "
            "licence change. Many cloud providers now offer it as a managed service.")
    tags = LocalProvider().summarize(text).tags
    assert tags[:2] == ["redis", "valkey"]


# --- Gemini: what a broken gateway or network sends ----------------------------------


@pytest.mark.parametrize("mode", ["html", "not_json_error", "not_object", "wrong_shape",
                                  "bad_gzip"])
def test_gemini_garbled_responses_are_transient(gemini: FakeGemini, mode: str) -> None:
    # A proxy's HTML page with 200, JSON of the wrong shape, a broken gzip body:
    # none of this is a bug of ours (internal_error) nor Gemini's final word.
    error = failure(gemini, "html_error" if mode == "not_json_error" else mode)
    assert type(error) is JobError
    assert (error.code, error.transient) == ("ai_unavailable", True)
    assert gemini.calls == 1
    assert len(error.message) <= 300 and "\n" not in error.message


def test_gemini_control_characters_never_reach_the_result(gemini: FakeGemini) -> None:
    gemini.mode = "nul"
    result = provider(gemini).summarize(TEXT)
    assert result.summary == ("The windmill project started. Volunteers met weekly and"
                              " delivered\ufffd results.")
    assert result.tags == ["windmill", "volunteers", "proj\ufffdect"]
    assert gemini.calls == 1


@pytest.mark.parametrize("mode", ["drip", "drip_headers"])
def test_gemini_timeout_bounds_the_whole_call(gemini: FakeGemini, mode: str) -> None:
    # 12 bytes one per second: every read is quick, the whole answer takes 12 s.
    gemini.mode = mode
    with pytest.raises(JobError) as info:
        provider(gemini, timeout_s=2).summarize(TEXT)
    assert (info.value.code, info.value.transient) == ("ai_timeout", True)
    assert gemini.calls == 1


def test_gemini_drip_within_the_timeout_succeeds(gemini: FakeGemini) -> None:
    gemini.mode, gemini.drip_s, gemini.drip_bytes = "drip", 0.05, 6
    assert "windmill" in provider(gemini, timeout_s=5).summarize(TEXT).summary


# --- Gemini from many threads at once -----------------------------------------------


def test_gemini_provider_is_safe_to_share_across_threads(gemini: FakeGemini) -> None:
    gemini.delay_s = 0.05  # keep the calls overlapping
    shared = provider(gemini)
    texts = [TEXT.replace("windmill", f"windmill{i}") for i in range(50)]
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda t: shared.summarize(t), texts))
    assert [r.summary.split()[1] for r in results] == [f"windmill{i}" for i in range(50)]
    assert gemini.calls == 50


def test_gemini_calls_survive_other_providers_coming_and_going(gemini: FakeGemini) -> None:
    # Providers (and their SDK clients) built, used and dropped while another
    # provider's calls are in flight must not close anything those calls use.
    gemini.delay_s = 0.02
    shared = provider(gemini)
    stop = threading.Event()
    failures: list[BaseException] = []

    def churn() -> None:
        while not stop.is_set():
            try:
                provider(gemini).summarize(TEXT)
            except BaseException as exc:  # collected and asserted below
                failures.append(exc)
            gc.collect()

    churners = [threading.Thread(target=churn) for _ in range(3)]
    for thread in churners:
        thread.start()
    try:
        with ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(lambda _: shared.summarize(TEXT), range(100)))
    finally:
        stop.set()
        for thread in churners:
            thread.join()
    assert not failures
    assert len(results) == 100 and all("windmill" in r.summary for r in results)


# --- a 429's retry delay ------------------------------------------------------------


@pytest.mark.parametrize("mode", ["rate_limit_retry_after", "rate_limit_retry_info"])
def test_gemini_429_with_a_retry_delay_carries_it(gemini: FakeGemini, mode: str) -> None:
    gemini.retry_after_s = 46
    error = failure(gemini, mode)
    assert (error.code, error.transient, error.retry_after) == ("ai_rate_limited", True, 46.0)
    assert gemini.calls == 1


def test_gemini_429_without_a_delay_has_none(gemini: FakeGemini) -> None:
    assert failure(gemini, "rate_limit").retry_after is None


def test_gemini_retry_delay_is_capped(gemini: FakeGemini) -> None:
    gemini.retry_after_s = 86_400  # a daily quota: come back tomorrow
    assert failure(gemini, "rate_limit_retry_info").retry_after == MAX_RETRY_AFTER_S


# --- batches: one call, each item checked on its own ------------------------------------


def batch_of(*topics: str) -> list[BatchItem]:
    return [BatchItem(f"i{n}", TEXT.replace("windmill", topic))
            for n, topic in enumerate(topics)]


def test_gemini_batch_is_one_call_and_each_item_gets_its_own_summary(gemini: FakeGemini) -> None:
    topics = ("windmill", "lighthouse", "tannery", "ropewalk")
    results = provider(gemini).summarize_batch(batch_of(*topics))
    assert gemini.calls == 1 and gemini.items_per_call == [4]
    assert set(results) == {"i0", "i1", "i2", "i3"}
    for n, topic in enumerate(topics):
        result = results[f"i{n}"]
        assert isinstance(result, SummaryResult) and topic in result.summary, (topic, result)
        assert topic in result.tags
    call = gemini.received[0]
    assert call.items is not None and set(call.items[0]) == {"id", "language", "text"}
    assert call.body["generationConfig"]["responseSchema"]["type"] == "ARRAY"


@pytest.mark.parametrize("mode", ["batch_drop", "batch_mangle", "batch_wrong_id"])
def test_gemini_batch_flags_the_unusable_item_only(gemini: FakeGemini, mode: str) -> None:
    gemini.mode = mode
    results = provider(gemini).summarize_batch(batch_of("windmill", "lighthouse", "tannery"))
    assert isinstance(results["i0"], ContractError)  # the fake spoils the first item
    assert all(isinstance(results[i], SummaryResult) for i in ("i1", "i2"))
    assert gemini.calls == 1  # no re-ask inside a batch: the caller asks alone


@pytest.mark.parametrize("mode", ["truncated", "bad"])
def test_gemini_batch_unusable_as_a_whole_flags_every_item(gemini: FakeGemini, mode: str) -> None:
    gemini.mode = mode
    results = provider(gemini).summarize_batch(batch_of("windmill", "lighthouse"))
    assert all(isinstance(r, ContractError) for r in results.values()) and len(results) == 2


@pytest.mark.parametrize(("mode", "code"), [("unavailable", "ai_unavailable"),
                                            ("rate_limit", "ai_rate_limited"),
                                            ("rejected", "ai_rejected"),
                                            ("blocked", "ai_blocked"),
                                            ("safety", "ai_blocked")])
def test_gemini_batch_call_failures_are_raised(gemini: FakeGemini, mode: str, code: str) -> None:
    # Blocked and rejected batches too: the batcher splits them (test_ai_batches.py).
    gemini.mode = mode
    with pytest.raises(JobError) as info:
        provider(gemini).summarize_batch(batch_of("windmill", "lighthouse"))
    assert info.value.code == code
    assert isinstance(info.value, RequestRejected) == (mode == "rejected")


def test_only_gemini_supports_batches(gemini: FakeGemini) -> None:
    assert batching_of(provider(gemini)) is not None
    assert batching_of(LocalProvider()) is None
