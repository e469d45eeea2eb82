"""Why a document cannot be summarised: one exception per reason, each with a stable ``code``.

The codes are ErrorCode members (summaries/core/errors.py) and part of the
API (a failed job's ``code``, an upload's 4xx): never rename one.
``str(error)`` is a sentence for a person.
"""

from __future__ import annotations

from summaries.core.errors import ErrorCode


class DocumentError(Exception):
    """A document that cannot be read; ``code`` says why, in one word."""

    code: ErrorCode = ErrorCode.JOB_ERROR


class Unsupported(DocumentError):
    """Not a kind of document this package reads (an image, a zip, legacy .doc...)."""

    code = ErrorCode.UNSUPPORTED


class Encrypted(DocumentError):
    """Password-protected: nothing can be read without the password."""

    code = ErrorCode.ENCRYPTED


class NoTextLayer(DocumentError):
    """Pages but no text to read: a scan or pictures only (OCR is not done)."""

    code = ErrorCode.NO_TEXT_LAYER


class Corrupt(DocumentError):
    """Truncated or invalid: the parser could not make sense of it."""

    code = ErrorCode.CORRUPT


class TooLarge(DocumentError):
    """More bytes than DOCUMENT_MAX_BYTES, or more text than one document may give."""

    code = ErrorCode.TOO_LARGE


class TooManyPages(DocumentError):
    """More pages than DOCUMENT_MAX_PAGES."""

    code = ErrorCode.TOO_MANY_PAGES


class DecompressionBomb(DocumentError):
    """Compressed parts that inflate past the bound: a zip or stream bomb."""

    code = ErrorCode.DECOMPRESSION_BOMB


class Timeout(DocumentError):
    """Parsing did not finish by the attempt's deadline."""

    code = ErrorCode.TIMEOUT
