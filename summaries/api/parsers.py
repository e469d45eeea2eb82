"""Request body parsing that answers 4xx to every malformed body, never a 500."""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError, UnsupportedMediaType

# JSON is Unicode (RFC 8259). Any other codec Python knows would be applied
# to the body as named by the client's "charset": "zlib" inflates a bomb,
# "punycode" decodes in quadratic time, "rot13" is not even bytes → text.
JSON_CHARSETS = frozenset({"utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be",
                           "utf-32", "utf-32-le", "utf-32-be"})


def charset_of(parser_context: Mapping[str, Any] | None) -> str:
    """The body's charset as Django read it from Content-Type (the default
    when the client named none or one Python does not know)."""
    return str((parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, plus: a charset other than UTF-8/16/32 is 415, and
    nesting too deep for Python's recursive decoder (50,000 "[") is
    malformed JSON, not a crash."""

    def parse(self, stream: IO[Any], media_type: str | None = None,
              parser_context: Mapping[str, Any] | None = None) -> Any:
        charset = charset_of(parser_context)
        if codecs.lookup(charset).name not in JSON_CHARSETS:
            raise UnsupportedMediaType(media_type or "",
                                       f"JSON must be UTF-8 (or UTF-16/32), not {charset!r}")
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
