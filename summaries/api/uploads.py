"""Reading an uploaded document (POST /api/submit, multipart/form-data) without
ever holding more than DOCUMENT_MAX_BYTES of it.

Django's multipart parser hands a file's bytes to upload handlers chunk by
chunk; the one handler here refuses, before reading any of the body, a
request whose Content-Length is over the limit (413), counts the bytes as
they arrive and stops at the limit (413: a body sent without a length, or
lying about it), and refuses a file in a field other than ``file`` or a
second file (400). What is read is kept in memory (at most the limit), never
in a temporary file. The document itself is not parsed here: the worker does
(services/document_text.py).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from summaries.core.errors import ErrorCode, InputTooLarge, InvalidInput

FILE_FIELD = "file"
# The form's other fields and the multipart framing, beside the file.
FORM_ALLOWANCE = 64 * 1024


def _too_large(limit: int) -> InputTooLarge:
    return InputTooLarge(f"the file is larger than {limit} bytes (DOCUMENT_MAX_BYTES)")


class DocumentUploadHandler(FileUploadHandler):
    """Keeps one file, in memory, of at most ``limit`` bytes."""

    def __init__(self, request: HttpRequest | None = None, *, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.files = 0
        self.buffer = io.BytesIO()
        self.size = 0

    def handle_raw_input(self, input_data: IO[bytes], META: dict[str, Any],
                         content_length: int, boundary: str,
                         encoding: str | None = None) -> None:
        if content_length > self.limit + FORM_ALLOWANCE:
            raise _too_large(self.limit)  # not a byte of it read

    def new_file(self, field_name: str, file_name: str, content_type: str,
                 content_length: int | None, charset: str | None = None,
                 content_type_extra: dict[str, bytes] | None = None) -> None:
        super().new_file(field_name, file_name, content_type, content_length, charset,
                         content_type_extra)
        if field_name != FILE_FIELD:
            raise InvalidInput(f"unexpected file field {field_name!r}: send the document "
                               f"as {FILE_FIELD!r}", code=ErrorCode.BAD_REQUEST)
        self.files += 1
        if self.files > 1:
            raise InvalidInput("send one file per submit", code=ErrorCode.BAD_REQUEST)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.size += len(raw_data)
        if self.size > self.limit:
            raise _too_large(self.limit)
        self.buffer.write(raw_data)

    def file_complete(self, file_size: int) -> InMemoryUploadedFile:
        self.buffer.seek(0)
        return InMemoryUploadedFile(self.buffer, self.field_name, self.file_name,
                                    self.content_type, file_size, self.charset,
                                    self.content_type_extra)


class MultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser with DocumentUploadHandler as the only handler,
    and a malformed body a 400 ``bad_request`` (not "malformed JSON")."""

    def parse(self, stream: IO[Any], media_type: str | None = None,
              parser_context: Mapping[str, Any] | None = None) -> Any:
        context = parser_context or {}
        request = context["request"]
        # Set on DRF's Request, which DRF's parser reads them from.
        request.upload_handlers = [DocumentUploadHandler(
            request, limit=int(settings.DOCUMENT_MAX_BYTES))]
        try:
            return super().parse(stream, media_type, context)
        except ParseError as exc:
            raise InvalidInput(f"malformed multipart body: {exc.detail}",
                               code=ErrorCode.BAD_REQUEST) from None
