"""Languages: detection, a request's ``language`` (validation, cache key), and
the prompts that ask for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from summaries.errors import InvalidInput
from summaries.inputs import (
    TEXT,
    URL,
    NormalizedInput,
    normalize_input,
)
from summaries.language import detect_language, normalize_language
from summaries.models import Job
from summaries.providers import BatchItem
from summaries.providers.common import build_batch_prompt, instructions
from summaries.providers.gemini import GeminiProvider
from summaries.services.config import summarizer
from summaries.services.pipeline import article_key
from tests.helpers.fakes.gemini import FakeGemini

ARTICLES = Path(__file__).parent / "fixtures" / "articles"
ENGLISH = (ARTICLES / "en-harbour-bridge.txt").read_text(encoding="utf-8")
GERMAN = (ARTICLES / "de-radweg.txt").read_text(encoding="utf-8")


@pytest.mark.no_valkey
@pytest.mark.parametrize(("text", "language"), [
    (ENGLISH, "en"),
    (GERMAN, "de"),
    ((ARTICLES / "fr-tramway.txt").read_text(encoding="utf-8"), "fr"),
    ((ARTICLES / "es-biblioteca.txt").read_text(encoding="utf-8"), "es"),
    ("Il governo ha presentato mercoledì un disegno di legge che mira a limitare gli affitti "
     "nelle grandi città del paese.", "it"),
    ("O governo apresentou na quarta-feira um projeto de lei que pretende limitar os aluguéis "
     "nas grandes cidades do país.", "pt"),
    ("De regering heeft woensdag een wetsvoorstel gepresenteerd dat de huren in de grote "
     "steden moet beperken.", "nl"),
    ("Правительство в среду представило новый законопроект.", "ru"),
    ("東京は日本の首都です。人口がとても多いです。", "ja"),
    ("Valkey rocks. Redis forked.", None),  # too few words to tell
    ("1234 5678 !!!", None),
])
def test_it_detects_the_language(text: str, language: str | None) -> None:
    assert detect_language(text) == language


@pytest.mark.no_valkey
@pytest.mark.parametrize(("raw", "tag"), [
    ("de", "de"), ("EN", "en"), (" fr ", "fr"), ("pt_br", "pt-BR"), ("zh-hant", "zh-Hant"),
    ("sr-Latn-RS", "sr-Latn-RS"), ("es-419", "es-419"),
])
def test_valid_language_tags_are_canonical(raw: str, tag: str) -> None:
    assert normalize_language(raw) == tag


@pytest.mark.no_valkey
@pytest.mark.parametrize("raw", ["", "xx", "english", "de-", "d", "de--DE", "1234",
                                 "de-DE-" + "x" * 40, "<script>", "en\x00"])
def test_junk_languages_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_language(raw)
    assert caught.value.code == "invalid_language"


@pytest.mark.no_valkey
def test_a_requested_language_keys_apart_only_when_it_changes_the_summary() -> None:
    english, german = normalize_input(ENGLISH), normalize_input(GERMAN)
    ns = "gemini:m:p2"
    # An English text asked in German: its own key.
    assert english.in_language("de", translates=True).cache_key(ns) != english.cache_key(ns)
    # A German text asked in German, and one asked with no language: one key.
    assert german.in_language("de", translates=True).cache_key(ns) == german.cache_key(ns)
    # A region asks for more than the language: keyed apart.
    assert german.in_language("de-AT", translates=True).cache_key(ns) != german.cache_key(ns)
    # The offline summariser cannot translate: the language changes nothing.
    assert english.in_language("de", translates=False).cache_key(ns) == english.cache_key(ns)
    # A URL's page is unknown at submit: keyed apart.
    url = NormalizedInput(URL, "https://example.com/a")
    assert url.in_language("en", translates=True).cache_key(ns) != url.cache_key(ns)


@pytest.mark.no_valkey
def test_an_article_in_the_language_asked_shares_the_plain_key() -> None:
    assert article_key(GERMAN, "gemini:m:p2", "de") == article_key(GERMAN, "gemini:m:p2")
    assert article_key(ENGLISH, "gemini:m:p2", "de") != article_key(ENGLISH, "gemini:m:p2")
    plain = NormalizedInput(TEXT, " ".join(GERMAN.split())).cache_key("gemini:m:p2")
    assert article_key(GERMAN, "gemini:m:p2") == plain


@pytest.mark.no_valkey
def test_the_prompts_name_the_language() -> None:
    assert "in German (the language of the text)" in instructions(GERMAN)
    assert "in French, whatever the language of the text" in instructions(GERMAN, "fr")
    assert "in the language of the text" in instructions("Valkey rocks. Redis forked.")
    batch = json.loads(build_batch_prompt([BatchItem("1", GERMAN), BatchItem("2", ENGLISH,
                                                                               language="es")]))
    assert [item["language"] for item in batch] == ["German", "Spanish"]


# --- over the API (Django test client; the jobs are not processed) -----------------------


def post(client: Client, body: Any) -> Any:
    return client.post("/api/submit", data=json.dumps(body), content_type="application/json")


@pytest.mark.django_db
def test_a_submit_in_another_language_is_another_job(client: Client) -> None:
    plain = post(client, {"input": ENGLISH})
    german = post(client, {"input": ENGLISH, "language": "de"})
    again = post(client, {"input": ENGLISH, "language": "DE"})
    assert (plain.status_code, german.status_code) == (202, 202), german.content
    assert german.json()["cache_key"] != plain.json()["cache_key"]
    assert german.json()["job_id"] != plain.json()["job_id"]
    assert again.json()["job_id"] == german.json()["job_id"]  # "DE" is "de"
    job = Job.objects.get(id=german.json()["job_id"])
    assert (job.language, job.provider) == ("de", summarizer().cache_namespace)


@pytest.mark.django_db
def test_a_submit_in_the_texts_own_language_is_the_plain_one(client: Client) -> None:
    plain = post(client, {"input": GERMAN})
    german = post(client, {"input": GERMAN, "language": "de"})
    assert german.json()["job_id"] == plain.json()["job_id"]
    assert german.json()["cache_key"] == plain.json()["cache_key"]


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["klingon", "x", "de-", 42, None, ["de"]])
def test_a_junk_language_is_a_400(client: Client, language: Any) -> None:
    response = post(client, {"input": ENGLISH, "language": language})
    assert response.status_code == 400, response.content
    assert response.json()["code"] in ("invalid_language", "invalid", "null"), response.json()
    assert Job.objects.count() == 0


@pytest.mark.django_db
def test_a_batch_item_may_name_a_language(client: Client) -> None:
    response = client.post("/api/submit/batch", data=json.dumps({"inputs": [
        {"input": ENGLISH, "language": "fr"}, {"input": ENGLISH, "language": "nope!"}]}),
        content_type="application/json")
    first, second = response.json()["results"]
    assert first["http_status"] == 202 and second["http_status"] == 400
    assert second["code"] == "invalid_language"


@pytest.mark.no_valkey
def test_gemini_is_asked_for_the_language(gemini: FakeGemini) -> None:
    provider = GeminiProvider("k", "gemini-test", gemini.base_url, 5)
    provider.summarize(GERMAN)
    provider.summarize(ENGLISH, language="pt-BR")
    german, brazilian = gemini.prompts
    assert "in German (the language of the text)" in german
    assert "in Portuguese (pt-BR), whatever the language of the text" in brazilian
