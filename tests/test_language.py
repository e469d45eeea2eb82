"""Languages: detection, a request's ``language`` (validation, cache key), and
the prompts that ask for it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from summaries.core.errors import InvalidInput
from summaries.core.inputs import (
    TEXT,
    URL,
    NormalizedInput,
    normalize_input,
)
from summaries.core.language import NAMES, detect_language, normalize_language
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
# Per language, a paragraph ("long") and a short line ("short"), written for these
# tests and bench/language.py.
SAMPLES: dict[str, dict[str, str]] = {
    code: texts for code, texts in json.loads(
        (Path(__file__).parent / "fixtures" / "languages.json").read_text("utf-8")).items()
    if not code.startswith("_")}
# The languages issue 18 found named wrongly (uk, bg → Russian; fa → Arabic) or
# not at all (pl, sv), and their neighbours in script or family.
NEIGHBOURS = ["uk", "bg", "ru", "sr", "fa", "ar", "pl", "cs", "sv", "da", "no", "fi", "lt"]


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
    ("Valkey rocks. Redis forked.", "en"),
    ("Notice", None),  # one word: no language has a majority
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
    assert "in the language of the text" in instructions("Notice")
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


# --- the detector: many languages, short texts, and no wrong name ------------------------


@pytest.mark.no_valkey
@pytest.mark.parametrize("code", sorted(SAMPLES))
def test_it_names_the_language_of_a_paragraph(code: str) -> None:
    assert detect_language(SAMPLES[code]["long"]) == code


@pytest.mark.no_valkey
@pytest.mark.parametrize("code", [c for c in NEIGHBOURS if c != "sr"])
def test_it_names_the_language_of_a_short_line(code: str) -> None:
    # Serbian's short line reads as Russian to the model (bench/language.py): a
    # known miss, not asserted either way.
    assert detect_language(SAMPLES[code]["short"]) == code


@pytest.mark.no_valkey
def test_it_covers_more_than_a_hundred_languages() -> None:
    assert len(NAMES) >= 100
    # Every name the prompt can use is one a request may name too.
    assert all(normalize_language(code) == code for code in NAMES)


@pytest.mark.no_valkey
@pytest.mark.parametrize(("code", "name", "wrong"), [
    ("uk", "Ukrainian", "Russian"), ("bg", "Bulgarian", "Russian"), ("fa", "Persian", "Arabic"),
    ("pl", "Polish", None), ("sv", "Swedish", None),
])
def test_the_prompt_names_the_texts_own_language(code: str, name: str,
                                                  wrong: str | None) -> None:
    prompt = instructions(SAMPLES[code]["long"])
    assert f"in {name} (the language of the text)" in prompt
    if wrong:
        assert wrong not in prompt
    batch = json.loads(build_batch_prompt([BatchItem("1", SAMPLES[code]["short"])]))
    assert batch[0]["language"] == name


@pytest.mark.no_valkey
def test_an_unsure_detection_names_no_language() -> None:
    for text in ("Notice", "ok?", "42 % — 17:30", "\u2014"):
        assert "in the language of the text" in instructions(text)
        assert json.loads(build_batch_prompt([BatchItem("1", text)]))[0]["language"] == ""


@pytest.mark.no_valkey
def test_a_text_asked_in_its_own_language_shares_the_plain_key() -> None:
    ukrainian = normalize_input(SAMPLES["uk"]["long"])
    ns = "gemini:m:p3"
    assert ukrainian.in_language("uk", translates=True).cache_key(ns) == ukrainian.cache_key(ns)
    assert ukrainian.in_language("ru", translates=True).cache_key(ns) != ukrainian.cache_key(ns)


@pytest.mark.no_valkey
def test_the_model_is_loaded_only_by_a_process_that_detects() -> None:
    # A fresh process: what the API and every worker import, then a request's
    # language checked (no detection), then one detection.
    script = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', "
        "'smartcache.settings'); django.setup()\n"
        "import summaries.api.views, summaries.tasks, summaries.core.language as language\n"
        "language.normalize_language('uk')\n"
        "before = language._model.cache_info().currsize\n"
        "found = language.detect_language('Потяг до аеропорту знову запізнюється.')\n"
        "print(before, language._model.cache_info().currsize, found)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[1], timeout=120)
    assert out.stdout.split() == ["0", "1", "uk"]


@pytest.mark.no_valkey
def test_gemini_is_asked_for_ukrainian_not_russian(gemini: FakeGemini) -> None:
    provider = GeminiProvider("k", "gemini-test", gemini.base_url, 5)
    provider.summarize(SAMPLES["uk"]["long"])
    (prompt,) = gemini.prompts
    assert "in Ukrainian (the language of the text)" in prompt
    assert "Russian" not in prompt
