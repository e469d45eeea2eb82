"""What a client submitted: classify it, normalise it, derive its cache key.

Two inputs that mean the same thing (extra spaces, ``HTTP://Example.com:80/``
versus ``http://example.com/``, tracking parameters) normalise to the same
string and so share one cache entry and one AI call. Two inputs that mean
different things never do: a URL keeps the bytes it is fetched with (see
:mod:`summaries.core.canonical_urls`).

What the database cannot store is refused here, as a 400, before anything
is written: NUL (PostgreSQL refuses it in text) and lone surrogates (JSON
allows ``"\\ud800"``; no UTF-8 encoder does), and URLs longer than the
column (:data:`summaries.core.canonical_urls.MAX_URL_CHARS`).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field, replace

from summaries.core import canonical_urls
from summaries.core.errors import ErrorCode, InvalidInput
from summaries.core.forms import DEFAULT_FORM, Form
from summaries.core.language import detect_language

__all__ = ["DOCUMENT", "TEXT", "URL", "InvalidInput", "NormalizedInput", "canonical_url",
           "normalize_input", "normalize_text",
           "reject_unstorable"]

TEXT = "text"
URL = "url"
# An uploaded file: the value is the SHA-256 (hex) of its bytes, kept in the
# database until its jobs end (services/uploads.py); the worker reads them.
DOCUMENT = "document"

_WHITESPACE = re.compile(r"\s+")
# One token that starts like "scheme://": the client meant a URL, even if the
# scheme is one we refuse (ftp://, file://).
_URL_LIKE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://\S+$")
_NUL = "\x00"
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")  # a valid pair is one code point in str


@dataclass(frozen=True)
class NormalizedInput:
    kind: str  # TEXT, URL or DOCUMENT
    value: str  # normalised text, canonical URL or the document's SHA-256
    # The language the summary is asked in, when that changes the summary
    # (see ``in_language``); None: the text's own.
    language: str | None = None
    # The form of the summary asked for (style, length): keyed only when it
    # is not the default, so a plain submit's key is the one it always was.
    form: Form = DEFAULT_FORM
    # A text as submitted (its line breaks: what the near-duplicate check
    # reads, services/near_duplicates.py); not part of the input's identity.
    raw: str = field(default="", compare=False, repr=False)

    def cache_key(self, namespace: str) -> str:
        """SHA-256 over the input, its requested language (if any), its
        form (unless the default prose/short) and the summariser's
        namespace (provider, model, prompt version): a new prompt or model
        never serves an old answer, nor a summary in one language or form a
        request for another."""
        material = f"{namespace}\n{self.kind}\n{self.value}"
        if self.language is not None:
            material += f"\nlanguage={self.language}"
        if not self.form.is_default:
            material += f"\nform={self.form.style}/{self.form.length}"
        return hashlib.sha256(material.encode()).hexdigest()

    def in_form(self, form: Form) -> NormalizedInput:
        """This input asked in ``form`` (every form changes the answer, the
        offline summariser's too, so every non-default form is keyed apart)."""
        return replace(self, form=form)

    def in_language(self, language: str | None, *, translates: bool) -> NormalizedInput:
        """This input asked in ``language`` (a canonical tag, see
        ``summaries.core.language.normalize_language``): keyed apart only when it
        may change the summary. Not for a summariser that cannot translate
        (``translates`` False: the offline one quotes the text), nor for a
        text whose detected language is the one asked (a German text asked
        in German is the same request as a plain one). A URL's page is not
        known yet: its language stays in the key (the worker shares the
        article's summary when the page turns out to be in that language)."""
        if language is None or not translates:
            return replace(self, language=None)
        if self.kind == TEXT and detect_language(self.value) == language:
            return replace(self, language=None)
        return replace(self, language=language)


def reject_unstorable(text: str) -> None:
    """Raise InvalidInput(code=ErrorCode.INVALID_INPUT) if ``text`` holds NUL or a lone surrogate.

    For client input, where refusing is honest. For text we must keep
    (extracted pages), :func:`normalize_text` cleans the same characters instead.
    """
    if _NUL in text:
        raise InvalidInput("the input contains a NUL character", code=ErrorCode.INVALID_INPUT)
    if _LONE_SURROGATE.search(text):
        raise InvalidInput("the input contains an unpaired surrogate (invalid Unicode)",
                           code=ErrorCode.INVALID_INPUT)


def normalize_text(text: str) -> str:
    """NFC, trimmed, runs of whitespace collapsed to one space, case kept.

    Total, and its result is always storable and UTF-8 encodable: NUL is
    removed and each lone surrogate becomes U+FFFD.
    """
    text = _LONE_SURROGATE.sub("\ufffd", text.replace(_NUL, ""))
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def canonical_url(url: str) -> str:
    """The canonical form of ``url`` (see :func:`summaries.core.canonical_urls.canonical_url`).

    Raises InvalidInput with code ``invalid_url`` (malformed, unstorable, too
    long) or ``blocked_url`` (a scheme other than http/https, credentials).
    """
    try:
        return canonical_urls.canonical_url(url)
    except canonical_urls.InvalidURL as exc:
        raise InvalidInput(exc.message, code=exc.code) from None


def normalize_input(raw: str) -> NormalizedInput:
    """Classify and normalise a submission, or raise InvalidInput."""
    stripped = raw.strip()
    # A URL is not Unicode-normalised: NFC could change the bytes fetched.
    if _URL_LIKE.match(stripped):
        return NormalizedInput(URL, canonical_url(stripped))
    reject_unstorable(raw)
    text = normalize_text(raw)
    if not text:
        raise InvalidInput("input cannot be empty", code=ErrorCode.EMPTY_INPUT)
    return NormalizedInput(TEXT, text, raw=raw)
