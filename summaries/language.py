"""Languages: a request's ``language`` checked, a text's language detected.

Detection is offline and needs no model: the share of a text's words that
are function words of each language (``summaries.lexicon``), each word
weighted by how few languages share it, picks among the European languages
the lexicon knows; a text in another script is told by its script (Greek,
Cyrillic, Arabic, Hebrew, Devanagari, Thai, Korean, Japanese, Chinese). It
reads only the start of a text (``DETECT_CHARS``), so it costs the same on
any length. ``None``: not sure (too few words, or no profile stands out).
"""

from __future__ import annotations

import re
from collections import Counter

from summaries.errors import InvalidInput
from summaries.lexicon import LEXICONS

# ISO 639-1 codes a request may name, with the English name the AI prompts use.
NAMES: dict[str, str] = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "bn": "Bengali", "ca": "Catalan",
    "cs": "Czech", "cy": "Welsh", "da": "Danish", "de": "German", "el": "Greek",
    "en": "English", "eo": "Esperanto", "es": "Spanish", "et": "Estonian", "eu": "Basque",
    "fa": "Persian", "fi": "Finnish", "fr": "French", "ga": "Irish", "gl": "Galician",
    "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian", "hy": "Armenian",
    "id": "Indonesian", "is": "Icelandic", "it": "Italian", "ja": "Japanese", "ka": "Georgian",
    "kk": "Kazakh", "ko": "Korean", "lt": "Lithuanian", "lv": "Latvian", "mk": "Macedonian",
    "ms": "Malay", "mt": "Maltese", "nb": "Norwegian Bokmål", "nl": "Dutch",
    "nn": "Norwegian Nynorsk",
    "no": "Norwegian", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian",
    "sk": "Slovak", "sl": "Slovenian", "sq": "Albanian", "sr": "Serbian", "sv": "Swedish",
    "sw": "Swahili", "ta": "Tamil", "th": "Thai", "tl": "Tagalog", "tr": "Turkish",
    "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese", "zh": "Chinese",
}

# language[-script][-region][-variant...]: "de", "pt-BR", "zh-Hant", "sr-Latn-RS".
_TAG = re.compile(r"^(?P<lang>[A-Za-z]{2})(?:-(?P<script>[A-Za-z]{4}))?(?:-(?P<region>[A-Za-z]{2}|"
                  r"[0-9]{3}))?(?:-[A-Za-z0-9]{5,8})*$")
MAX_TAG_CHARS = 35


def normalize_language(raw: str) -> str:
    """``raw`` as a canonical language tag (``"pt-br"`` → ``"pt-BR"``), or
    InvalidInput(code="invalid_language") when it is not a BCP-47-like tag
    whose language is one of ``NAMES``."""
    value = raw.strip().replace("_", "-")
    match = _TAG.match(value) if len(value) <= MAX_TAG_CHARS else None
    if match is None or match.group("lang").lower() not in NAMES:
        raise InvalidInput(
            f"language must be a language code such as \"en\", \"de\" or \"pt-BR\" "
            f"(ISO 639-1, optionally with a region); got {raw[:40]!r}",
            code="invalid_language")
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
MIN_WORDS = 8  # fewer words than this say too little
MIN_SHARE = 0.12  # of the words, weighted: an ordinary text is 30-50% function words
# Letters of a word: any script's letters (digits and "_" are not), joined by
# inner apostrophes or hyphens ("l'état", "Baden-Württemberg", "don't").
WORD = re.compile(r"[^\W\d_]+(?:['\u2019\-][^\W\d_]+)*")

_SCRIPTS: list[tuple[str, re.Pattern[str]]] = [
    ("ja", re.compile(r"[\u3040-\u30ff]")),  # kana: Japanese, even among kanji
    ("ko", re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")),
    ("zh", re.compile(r"[\u4e00-\u9fff]")),
    ("el", re.compile(r"[\u0370-\u03ff]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),  # Cyrillic: Russian the likeliest
    ("ar", re.compile(r"[\u0600-\u06ff]")),
    ("he", re.compile(r"[\u0590-\u05ff]")),
    ("hi", re.compile(r"[\u0900-\u097f]")),
    ("th", re.compile(r"[\u0e00-\u0e7f]")),
]

# How many languages count each function word among theirs: a word only one
# language has ("the", "und", "est") says more than one all share ("a").
_SHARED = Counter(word for lex in LEXICONS.values() for word in lex.stopwords)


def detect_language(text: str) -> str | None:
    """The ISO 639-1 code of ``text``'s language, or None when unsure."""
    sample = text[:DETECT_CHARS]
    letters = sum(1 for ch in sample if ch.isalpha())
    if letters == 0:
        return None
    for code, pattern in _SCRIPTS:
        if len(pattern.findall(sample)) > letters * 0.3:
            return code
    words = [w.lower().replace("\u2019", "'") for w in WORD.findall(sample)]
    if len(words) < MIN_WORDS:
        return None
    scores = dict.fromkeys(LEXICONS, 0.0)
    for word in words:
        # An elided article ("l'état", "dell'anno") speaks by its first part.
        head = word.split("'")[0] + "'" if "'" in word else word
        for token in {word, head}:
            shared = _SHARED.get(token)
            if shared:
                for code, lex in LEXICONS.items():
                    if token in lex.stopwords:
                        scores[code] += 1.0 / shared
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    (best, top), (_, second) = ranked[0], ranked[1]
    if top / len(words) < MIN_SHARE or top < 1.5 * second:
        return None
    return best
