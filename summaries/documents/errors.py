"""Why a document cannot be summarised: one exception per reason, each with a stable ``code``.

The codes are part of the API (a failed job's ``code``, a 4xx's ``error``):
never rename one. ``str(error)`` is a sentence for a person.
"""

from __future__ import annotations


class DocumentError(Exception):
    """A document that cannot be read; ``code`` says why, in one word."""

    code = "document_error"


class Unsupported(DocumentError):
    """Not a kind of document this package reads (an image, a zip, legacy .doc...)."""

    code = "unsupported"


class Encrypted(DocumentError):
    """Password-protected: nothing can be read without the password."""

    code = "encrypted"


class NoTextLayer(DocumentError):
    """Pages but no text to read: a scan or pictures only (OCR is not done)."""

    code = "no_text_layer"


class Corrupt(DocumentError):
    """Truncated or invalid: the parser could not make sense of it."""

    code = "corrupt"


class TooLarge(DocumentError):
    """More bytes than DOCUMENT_MAX_BYTES, or more text than one document may give."""

    code = "too_large"


class TooManyPages(DocumentError):
    """More pages than DOCUMENT_MAX_PAGES."""

    code = "too_many_pages"


class DecompressionBomb(DocumentError):
    """Compressed parts that inflate past the bound: a zip or stream bomb."""

    code = "decompression_bomb"


class Timeout(DocumentError):
    """Parsing did not finish by the attempt's deadline."""

    code = "timeout"
