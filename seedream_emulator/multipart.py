"""A small ``multipart/form-data`` parser for the File Upload API's stream endpoint.

Why not ``cgi.FieldStorage``: the ``cgi`` module is deprecated (PEP 594) and removed in Python 3.13. The body is
already fully in memory (uploads are capped), so splitting on the boundary is all that is needed; part headers are
parsed with the ``email`` package, which handles quoting in ``Content-Disposition`` parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser


class MultipartError(ValueError):
    """The body is not well-formed multipart/form-data."""


@dataclass(frozen=True)
class Part:
    """One form field: its name, the client's file name (if a file) and content type, and the raw bytes."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes

    @property
    def text(self) -> str:
        """The value decoded as UTF-8 (form fields that are not files)."""
        return self.data.decode("utf-8", errors="replace")


def boundary_of(content_type: str) -> bytes:
    """Return the boundary parameter of a ``multipart/form-data`` Content-Type header."""
    message = Message()
    message["Content-Type"] = content_type
    if message.get_content_type() != "multipart/form-data":
        raise MultipartError(f"Content-Type must be multipart/form-data, got {message.get_content_type()!r}")
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise MultipartError("multipart/form-data Content-Type has no boundary")
    return boundary.encode("latin-1")


def parse_multipart(body: bytes, content_type: str) -> dict[str, Part]:
    """Parse a form body into parts keyed by field name (a repeated name keeps the first part)."""
    delimiter = b"\r\n--" + boundary_of(content_type)
    # Prefix CRLF so the first delimiter looks like every other one.
    chunks = (b"\r\n" + body).split(delimiter)
    if len(chunks) < 2 or not chunks[-1].startswith(b"--"):
        raise MultipartError("multipart body has no closing boundary")
    parts: dict[str, Part] = {}
    for chunk in chunks[1:-1]:
        part = _parse_part(chunk)
        parts.setdefault(part.name, part)
    return parts


def _parse_part(chunk: bytes) -> Part:
    # After the delimiter comes optional transport padding, then CRLF, headers, a blank line, the data.
    _, newline, rest = chunk.partition(b"\r\n")
    head, separator, data = rest.partition(b"\r\n\r\n")
    if not newline or not separator:
        raise MultipartError("multipart part has no header/body separator")
    headers = BytesHeaderParser().parsebytes(head + b"\r\n\r\n")
    if headers.get_content_disposition() != "form-data":
        raise MultipartError("multipart part lacks 'Content-Disposition: form-data'")
    name = headers.get_param("name", header="content-disposition")
    if not isinstance(name, str):
        raise MultipartError("multipart part has no field name")
    content_type = headers.get("Content-Type")
    return Part(name=name, filename=headers.get_filename(), content_type=content_type, data=data)
