"""Input images, free of I/O: what an input is (URL or file), its checks by content and size, placeholders and
upload names, and the multipart framing of an upload. ``uploads`` is the I/O shell that follows these rules.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from airflow_provider_seedream import request

#: Seedream 4.5 input limit per image ("max 10 MB", createTask page), applied before anything is uploaded.
MAX_INPUT_BYTES = 10 * 1024 * 1024


#: The content types Seedream accepts as input, and the extension each is stored with.
IMAGE_EXTENSIONS: dict[str, str] = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


#: How many leading bytes identify an image type.
SNIFF_BYTES = 16


#: Folder on kie's upload host that uploaded inputs go to.
UPLOAD_PATH = "airflow-seedream"


#: Reserved TLD (RFC 2606): a placeholder can never resolve, so a bug that sent one would fail rather than leak.
PLACEHOLDER_HOST = "seedream-upload.invalid"


InputKind = Literal["url", "storage"]


def sniff_image(head: bytes) -> str | None:
    """Name an image type by its magic bytes (only content counts: names and declared types can lie)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head.startswith(b"BM"):
        return "image/bmp"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "image/heic-or-avif"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    return None


@dataclass(frozen=True)
class ImageInput:
    """One entry of ``image_urls``: a public URL sent as is, or a file (local or in a bucket) to upload first."""

    index: int
    kind: InputKind
    value: str

    @property
    def field(self) -> str:
        return f"image_urls[{self.index}]"


def classify_image_input(index: int, value: Any) -> ImageInput:
    """Tell a public http(s) URL from a local path or an object storage URI; raise naming the field if neither.

    ``value`` is a string here (the shell turns path objects into their URI first). An ``http(s)://`` value is a URL
    (checked later by ``request.check_http_url``); ``scheme://...`` is an object storage URI for Airflow's
    ``ObjectStoragePath``; anything else without a scheme is a local path.
    """
    field_name = f"image_urls[{index}]"
    if not isinstance(value, str):
        raise request.invalid(field_name, f"must be an http(s) URL, a local path or an object storage URI string, "
                                        f"got {type(value).__name__} {request.short(value)}")
    text = value.strip()
    if not text or "\x00" in text:
        raise request.invalid(field_name, f"must be an http(s) URL, a local path or an object storage URI, "
                                        f"got {request.short(value)}")
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme in ("http", "https"):
        return ImageInput(index, "url", value)
    if "://" in text and not scheme:
        raise request.invalid(field_name, f"has no scheme before '://': {request.short(value)}")
    return ImageInput(index, "storage", text)


def check_input_file(field_name: str, *, size: int, head: bytes, max_bytes: int = MAX_INPUT_BYTES) -> str:
    """Return the content type of an input file, or raise naming the field: empty, too big, or not jpeg/png/webp."""
    if size <= 0:
        raise request.invalid(field_name, "is an empty file")
    if size > max_bytes:
        raise request.invalid(field_name, f"is {size:,} bytes; Seedream accepts at most {max_bytes:,} bytes "
                                        f"({max_bytes / 1024 / 1024:g} MB) per image")
    found = sniff_image(head)
    if found not in IMAGE_EXTENSIONS:
        what = f"a {found.split('/')[1].upper()} image" if found else "not an image file we recognise"
        raise request.invalid(field_name, f"is {what}; Seedream accepts JPEG, PNG or WebP (checked by content, "
                                        f"not by name)")
    return found


def placeholder_url(identity: str) -> str:
    """Stand in for a not-yet-uploaded file inside an ``TaskInput``.

    The digest of the file's identity (URI, size, modification stamp) keeps ``TaskInput.fingerprint()`` the same
    across Airflow tries, so a retry re-attaches to the task it paid for instead of uploading and paying again.
    """
    return f"https://{PLACEHOLDER_HOST}/{hashlib.sha256(identity.encode()).hexdigest()[:32]}"


def is_placeholder(url: str) -> bool:
    return urlsplit(url).hostname == PLACEHOLDER_HOST


def upload_file_name(mime_type: str, token: str) -> str:
    """Name an upload: unique (kie overwrites a re-used name, with cache delay) and free of the user's file name."""
    return f"{token}{IMAGE_EXTENSIONS.get(mime_type, '.bin')}"


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")


def multipart_frame(boundary: str, fields: dict[str, str], file_field: str, file_name: str,
                    mime_type: str) -> tuple[bytes, bytes]:
    """Return the bytes before and after the file's content in a ``multipart/form-data`` body.

    Framing the body around a stream lets an upload send a file without ever holding it in memory.
    """
    lines: list[bytes] = []
    for name, value in fields.items():
        lines.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"\r\n\r\n'.encode())
        lines.append(value.encode() + b"\r\n")
    lines.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(file_field)}"; '
        f'filename="{_quoted(file_name)}"\r\nContent-Type: {mime_type}\r\n\r\n'.encode()
    )
    return b"".join(lines), f"\r\n--{boundary}--\r\n".encode()


def multipart_content_type(boundary: str) -> str:
    return f"multipart/form-data; boundary={boundary}"
