"""How much of an answer we read, and for how long: the caps every call to the outside obeys.

A provider runs inside every worker and the triggerer, next to other teams' DAGs; one endless, enormous or
trickling answer must not hang a triggerer or fill memory or a disk. The numbers live here, with the one pure reader
both HTTP stacks feed: it counts the bytes of an answer as they arrive, decodes a compressed body within the same cap,
and refuses past it, so no stack ever holds more than the cap.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

#: The most bytes a JSON answer of kie may have (decoded). kie's largest answer, a task with 15 result URLs, is
#: about 4 KiB; anything near this cap is not an answer.
MAX_JSON_BYTES = 4 * 1024 * 1024
#: The longest pause a ``Retry-After`` may impose, in seconds. kie's windows are 1 s (recordInfo) and 10 s
#: (createTask); a larger value is treated as this one, so that no server can park a wait (or the shared poll budget
#: of every wait for the key) for days.
MAX_RETRY_AFTER_SECONDS = 60.0
#: The default largest result image stored, in bytes (connection extra ``max_download_bytes``). A 4K PNG of
#: Seedream is at most about 50 MB (4096 x 4096 x 3 bytes, uncompressed worst case).
DEFAULT_MAX_DOWNLOAD_BYTES = 200 * 1024 * 1024
MAX_MAX_DOWNLOAD_BYTES = 4 * 1024 * 1024 * 1024
#: The default longest time one result image may take to download, in seconds (connection extra
#: ``download_timeout``): 20 MB at 100 KB/s, far slower than any working link.
DEFAULT_DOWNLOAD_TIMEOUT_SECONDS = 300.0
MAX_DOWNLOAD_TIMEOUT_SECONDS = 3600.0
#: Bytes read from the network per step.
READ_CHUNK_BYTES = 64 * 1024
#: The most result URLs one task may report (Seedream returns at most 15 images; 4.0's max_images is 6).
MAX_RESULT_URLS = 32


@dataclass(frozen=True)
class Answer:
    """A whole answer, read within its bounds by either HTTP stack."""

    status: int
    body: bytes
    retry_after: str | None


class BodyTooLarge(Exception):
    """The answer passed its cap; reading stopped there."""


class BodyUndecodable(Exception):
    """The answer was compressed in a way we do not read, or its compressed data was broken."""


def _decompressor(encoding: str) -> zlib._Decompress | None:
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return None
    if name in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if name == "deflate":
        return zlib.decompressobj()
    raise BodyUndecodable(f"the answer is compressed with {name[:40]!r}, which is not read (identity was asked for)")


@dataclass
class BoundedBody:
    """Collects an answer's bytes up to ``cap`` (after decoding); ``feed`` raises ``BodyTooLarge`` past it.

    :param cap: the most decoded bytes kept.
    :param encoding: the answer's ``Content-Encoding``; gzip and deflate are decoded here, in steps that never
        produce more than the cap allows (a small compressed body cannot expand into gigabytes).
    """

    cap: int
    encoding: str = ""
    _parts: list[bytes] = field(default_factory=list, repr=False)
    _size: int = 0
    _raw: int = 0
    _decoder: zlib._Decompress | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._decoder = _decompressor(self.encoding)

    @property
    def size(self) -> int:
        """Decoded bytes kept so far."""
        return self._size

    def feed(self, chunk: bytes) -> None:
        self._raw += len(chunk)
        if self._decoder is None:
            self._keep(chunk)
            return
        data = chunk
        try:
            while data:
                # Never ask for more than one byte past the cap: that byte is what proves the cap was passed.
                out = self._decoder.decompress(data, self.cap - self._size + 1)
                self._keep(out)
                data = self._decoder.unconsumed_tail
        except zlib.error as error:
            raise BodyUndecodable(f"the compressed answer is broken ({error})") from None

    def _keep(self, data: bytes) -> None:
        if not data:
            return
        if self._size + len(data) > self.cap:
            raise BodyTooLarge(f"the answer is larger than {self.cap:,} bytes; stopped reading at that cap")
        self._parts.append(data)
        self._size += len(data)

    def finish(self) -> bytes:
        """Return the whole decoded body."""
        if self._decoder is not None:
            try:
                self._keep(self._decoder.flush())
            except zlib.error as error:
                raise BodyUndecodable(f"the compressed answer is broken ({error})") from None
        return b"".join(self._parts)


def open_body(headers: Mapping[str, str], cap: int) -> BoundedBody:
    """Start reading an answer with these headers: refuse one that announces more than ``cap`` bytes at once."""
    declared = announced_size(headers.get("Content-Length"))
    if declared is not None and declared > cap:
        raise BodyTooLarge(f"the answer announces {declared:,} bytes; at most {cap:,} are read")
    return BoundedBody(cap, headers.get("Content-Encoding") or "")


def too_slow(what: str, timeout: float) -> str:
    """Say that no whole answer arrived in time (the same words from both HTTP stacks)."""
    return f"{what}: no whole answer from kie.ai within {timeout:g} s"


def announced_size(content_length: str | None) -> int | None:
    """Return the byte count a ``Content-Length`` header states, or ``None`` if it states none we can read."""
    if content_length is None:
        return None
    text = str(content_length).strip()
    if not text.isdigit():
        return None
    return int(text)


def cap_retry_after(seconds: float | None) -> float | None:
    """Hold a server's ``Retry-After`` to ``MAX_RETRY_AFTER_SECONDS``."""
    return None if seconds is None else min(seconds, MAX_RETRY_AFTER_SECONDS)
