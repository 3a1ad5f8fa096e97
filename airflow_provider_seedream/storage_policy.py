"""Stored results, free of I/O: where a result image goes under ``output_path`` and under which name, what a
download may retry, and how a failure reads. ``storage`` is the I/O shell that follows these rules.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_seedream import limits, request, wire
from airflow_provider_seedream.inputs import IMAGE_EXTENSIONS, sniff_image
from airflow_provider_seedream.redaction import redact_url

#: Bytes read from the network per step while storing a result: bounds the memory a download holds.
DEFAULT_CHUNK_BYTES = 256 * 1024


#: Write buffer handed to the object store. 5 MiB is S3's smallest multipart part; without it s3fs would buffer up
#: to its 50 MiB default block, i.e. a whole 4K image, before sending anything.
STORE_BLOCK_BYTES = 5 * 1024 * 1024


_SAFE = re.compile(r"[A-Za-z0-9_.-]+")


_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_component(raw: Any) -> str:
    """Turn an id into one path segment that every filesystem and bucket accepts, without collisions.

    Ids made only of ``A-Z a-z 0-9 _ . -`` are kept as they are. Anything else (``:`` and ``+`` in run ids, non-ASCII
    task ids) is replaced with ``_`` and a short digest of the original is appended, so two different ids never share
    a folder.
    """
    text = str(raw)
    if _SAFE.fullmatch(text) and text not in (".", "..") and len(text) <= 120:
        return text
    cleaned = _UNSAFE_RUN.sub("_", text).strip("._")[:80] or "id"
    return f"{cleaned}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def stored_image_stem(dag_id: str, run_id: str, task_id: str, map_index: int | None, image_index: int,
                      edit_index: int | None = None) -> str:
    """Return where a result image goes under ``output_path``, without the extension.

    ``<dag_id>/<run_id>/<task_id>/image-<i>`` or, for a mapped task, ``.../<task_id>/map-<m>_image-<i>``; an edit of a
    batch adds ``edit-<k>_`` before ``image-<i>``. Each task has its own folder, so ``edit_1`` unmapped and ``edit``
    mapped at index 1 can never write the same file, and a re-run of the same task instance writes the same names
    again (it overwrites its own files, nobody else's).
    """
    leaf = f"image-{int(image_index)}"
    if edit_index is not None:
        leaf = f"edit-{int(edit_index)}_{leaf}"
    if map_index is not None and int(map_index) >= 0:
        leaf = f"map-{int(map_index)}_{leaf}"
    return "/".join((safe_component(dag_id), safe_component(run_id), safe_component(task_id), leaf))


def has_directories(protocol: str | None) -> bool:
    """Tell whether a filesystem needs parent folders created before a write.

    Only local disks do. On buckets "folders" are key prefixes, and ``makedirs`` on a missing bucket may even create
    the bucket (s3fs, gcsfs), which is not ours to decide.
    """
    return (protocol or "file") in ("file", "local")


Placement = Literal["direct", "rename"]


#: fsspec protocols whose written objects appear only whole and only when committed: S3 (and S3-compatible stores
#: through s3fs). A single PUT is atomic per object, and a multipart upload becomes an object only when it is
#: completed; until then it is invisible to a listing or a GET. A "rename" there is a copy and a delete, which would
#: show a temporary object, so the final key is written directly instead (``placement``).
WHOLE_OBJECT_PROTOCOLS = frozenset({"s3", "s3a"})


def placement(protocol: str | tuple[str, ...] | list[str] | None) -> Placement:
    """Decide how a result is placed whole on a filesystem, from the filesystem's own protocol name(s).

    - ``"direct"``: write the final name with one object upload that is committed only after the size checks and
      abandoned otherwise (S3: one PUT or a multipart upload; a reader sees the old object or the whole new one,
      never a part, and never another name);
    - ``"rename"``: write a temporary ``<name>.part-<random>`` next to it, check it, then move it over the final name
      (local disks, where a rename within a folder is atomic; and any store this package has not verified).

    The filesystem's protocol decides, not the URI's scheme: an ``s3://`` path can be served by another filesystem
    attached under that scheme (the tests attach an in-memory one), which makes no such promise.
    """
    names = (protocol,) if isinstance(protocol, str) or protocol is None else tuple(protocol)
    return "direct" if any((name or "").lower() in WHOLE_OBJECT_PROTOCOLS for name in names) else "rename"


def no_filesystem_problem(uri: str, error: BaseException) -> str:
    """Say that no fsspec filesystem serves ``uri``'s scheme, and which provider would bring one."""
    scheme = uri.partition("://")[0] if "://" in uri else "file"
    return (f"no filesystem is registered for {scheme}:// ({error}); install the Airflow provider that brings it "
            f"(e.g. apache-airflow-providers-amazon for s3://, -google for gs://)")


def stale_siblings(stem: str, chosen_extension: str) -> list[str]:
    """Names an earlier try may have left for the same image in another format (to remove after storing)."""
    return [stem + ext for ext in sorted(set(IMAGE_EXTENSIONS.values())) if ext != chosen_extension]


def result_type(head: bytes, content_type: str | None) -> tuple[str, str] | None:
    """Return ``(content type, extension)`` of a downloaded result, trusting content first; ``None`` if no image.

    The bytes decide (a CDN error page served with 200 must not be stored as ``.png``); the ``Content-Type`` header
    only names image types the magic bytes do not cover.
    """
    sniffed = sniff_image(head)
    if sniffed in IMAGE_EXTENSIONS:
        return sniffed, IMAGE_EXTENSIONS[sniffed]
    if sniffed is not None:
        guessed = mimetypes.guess_extension(sniffed)
        return (sniffed, guessed) if guessed else None
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared.startswith("image/") and head[:1] not in (b"<", b"{"):
        return declared, IMAGE_EXTENSIONS.get(declared) or mimetypes.guess_extension(declared) or ".img"
    return None


def expected_size(content_length: str | None, content_encoding: str | None) -> int | None:
    """Return the byte count a download must have, when the server stated one that applies to the decoded body."""
    if content_encoding and content_encoding.strip().lower() not in ("", "identity"):
        return None  # Content-Length counts the encoded bytes; the decoded count cannot be compared with it
    return limits.announced_size(content_length)


def size_problem(expected: int | None, written: int) -> str | None:
    """Describe a size mismatch (a short read must never be kept as if complete), or ``None`` if sizes agree."""
    if written == 0:
        return "received 0 bytes"
    if expected is not None and written != expected:
        return f"received {written:,} of {expected:,} bytes announced by Content-Length"
    return None


FailureKind = Literal["expired", "short", "transport", "server", "refused", "not_image", "too_large", "slow"]


DownloadAction = Literal["mint", "retry", "give_up"]


def failure_for_status(status: int) -> FailureKind:
    """Classify a result host's HTTP status (kie's result links answer 403 or 404 once they expired)."""
    if status in (403, 404, 410):
        return "expired"
    if status == 429 or status >= 500:
        return "server"
    return "refused"


def next_download_action(kind: FailureKind, *, minted: bool, retried: bool) -> DownloadAction:
    """Decide what follows a failed download of one result image.

    - an expired link: mint a fresh one with kie's download-url (free) and try once more; a freshly minted link that
      fails again is not re-minted;
    - a short read, a dropped connection or a 5xx/429: try once more (never keep the partial file);
    - anything else (other 4xx, a body that is not an image, an image past ``max_download_bytes``, a download that
      took longer than ``download_timeout``): give up and say why.
    """
    if kind == "expired":
        return "give_up" if minted else "mint"
    if kind in ("short", "transport", "server"):
        return "retry" if not retried else "give_up"
    return "give_up"


def asset_uri(uri: str) -> str:
    """Return a stored file's URI as an Asset URI: the connection id in ``scheme://conn@bucket`` is access, not
    identity, so it is left out."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def check_output_path(value: Any) -> str:
    """Check the shape of ``output_path`` (a local path or a ``scheme://`` URI) before anything is paid for."""
    if not isinstance(value, str) or not value.strip():
        raise request.invalid("output_path", f"must be a local path or an object storage URI such as "
                                           f"s3://bucket/prefix, got {request.short(value)}")
    text = value.strip()
    if "\x00" in text:
        raise request.invalid("output_path", f"contains a NUL character: {request.short(value)}")
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme in ("http", "https"):
        raise request.invalid("output_path", f"must be writable storage (a local path, file://, s3://, gs://, ...), "
                                           f"not a web URL: {request.short(redact_url(text))}")
    return text


def storage_error_message(task_id: str, urls: list[str], problem: str) -> str:
    """Say what could not be stored while still naming every result URL, so nothing paid for is lost silently."""
    return (f"Seedream task {task_id} succeeded but its result could not be stored: {problem}. Result URL(s), "
            f"temporary (about 24 h, sometimes much less): {wire.describe_urls(urls)}. Retrying this Airflow task "
            f"re-reads the same kie task (no new cost) and stores again")
