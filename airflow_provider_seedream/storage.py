"""Result images to durable storage: streamed from kie's temporary links to any ``ObjectStoragePath``.

kie's result URLs die (documented "typically 24 hours"; observed after about 40 minutes), so a finished task's images
are copied as soon as it succeeds, on the worker: in constant memory (fixed-size chunks, never the whole file), under
deterministic names, placed whole so that a reader never sees half a file (``storage_policy.placement``: on S3 one
upload to the final key, committed only once complete and checked; elsewhere a temporary name moved into place),
with the size checked against ``Content-Length`` and against what the store reports. An expired link is re-minted
through kie's download-url endpoint and tried once more; a short read or a dropped connection is tried once more.
Every rule is a pure function in ``storage_policy``; this module reads HTTP and writes storage.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests
import tenacity

from airflow_provider_seedream import request
from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream import redaction, storage_policy
from airflow_provider_seedream.exceptions import SeedreamStorageError

if TYPE_CHECKING:
    from logging import Logger

    from airflow.sdk import ObjectStoragePath

    from airflow_provider_seedream.hooks.seedream import SeedreamHook

__all__ = ["SeedreamStorageError", "StoredImage", "check_output_path", "store_results"]

#: Seconds between progress lines while one download is running.
PROGRESS_EVERY_SECONDS = 5.0


@dataclass(frozen=True)
class StoredImage:
    """One result image, copied: where it is now, what it is, and what copying it took."""

    uri: str
    size: int
    mime_type: str
    seconds: float
    source_url: str


class _DownloadFailed(Exception):
    """One download attempt failed; ``kind`` drives ``storage_policy.next_download_action``."""

    def __init__(self, kind: storage_policy.FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class _Attempts:
    """Where the next attempt for one image downloads from, and which second chances are used up."""

    original_url: str
    url: str
    minted: bool = False
    retried: bool = False

    def action(self, error: BaseException | None) -> storage_policy.DownloadAction:
        if not isinstance(error, _DownloadFailed):
            return "give_up"
        return storage_policy.next_download_action(error.kind, minted=self.minted, retried=self.retried)


def check_output_path(value: Any) -> ObjectStoragePath:
    """Resolve ``output_path`` and its filesystem without writing anything; raise naming the field if unusable.

    Runs before createTask in the operator (a bad destination must cost nothing) and before the wait in the sensor.
    """
    from airflow_provider_seedream import uploads

    if not (hasattr(value, "protocol") and hasattr(value, "path")):
        value = storage_policy.check_output_path(value)
    try:
        path = uploads.to_storage_path(value)
        path.fs  # noqa: B018 - resolves the filesystem (and its connection) now, not after the task was paid for
    except ValueError as error:
        raise request.invalid("output_path", storage_policy.no_filesystem_problem(str(value), error)) from error
    except Exception as error:  # a connection that does not exist, a filesystem that cannot be built
        raise request.invalid(
            "output_path", f"cannot use {redaction.redact_url(str(value))}: {type(error).__name__}: {error}"
        ) from error
    return path


def store_results(
    hook: SeedreamHook,
    task_id: str,
    urls: list[str],
    *,
    output_path: Any,
    dag_id: str,
    run_id: str,
    airflow_task_id: str,
    map_index: int | None,
    log: Logger,
    edit_index: int | None = None,
) -> list[StoredImage]:
    """Copy every result image of a succeeded kie task to ``output_path`` and return what was stored, in order.

    Raises ``SeedreamStorageError`` naming the result URLs when anything cannot be stored.
    """
    stored: list[StoredImage] = []
    try:
        root = check_output_path(output_path)
        started = time.monotonic()
        for index, url in enumerate(urls):
            stem = storage_policy.stored_image_stem(dag_id, run_id, airflow_task_id, map_index, index, edit_index)
            stored.append(_store_one(hook, root, stem, url, f"{index + 1}/{len(urls)}", log))
    except Exception as error:
        problem = str(error) if isinstance(error, (_DownloadFailed, exc.SeedreamError)) else \
            f"{type(error).__name__}: {error}"
        message = storage_policy.storage_error_message(task_id, urls, problem)
        log.error("%s", message)
        raise SeedreamStorageError(message, result_urls=urls, stored=[s.uri for s in stored]) from error
    total_bytes = sum(s.size for s in stored)
    seconds = time.monotonic() - started
    log.info("Stored %d result image(s) of Seedream task %s: %s bytes in %.2f s (%s) under %s", len(stored), task_id,
             f"{total_bytes:,}", seconds, _rate(total_bytes, seconds), redaction.redact_url(str(root)))
    return stored


def _rate(size: int, seconds: float) -> str:
    return f"{size / 1024 / 1024 / seconds:.1f} MB/s" if seconds > 0 else "instant"


def _store_one(hook: SeedreamHook, root: ObjectStoragePath, stem: str, url: str, label: str,
               log: Logger) -> StoredImage:
    state = _Attempts(original_url=url, url=url)

    def before_next(retry_state: tenacity.RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if state.action(error) == "mint":
            log.warning("Result image %s: the result URL has expired (%s); minting a fresh link with kie's "
                        "download-url and trying once more", label, error)
            try:
                state.url = hook.get_download_url(state.original_url)
            except exc.SeedreamError as mint_error:
                raise _DownloadFailed("refused", f"{error}; download-url could not mint a fresh link: "
                                                 f"{mint_error}") from mint_error
            state.minted = True
        else:
            log.warning("Result image %s: %s; trying once more", label, error)
            state.retried = True

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(lambda error: state.action(error) != "give_up"),
        stop=tenacity.stop_after_attempt(3),  # at most: first try, one fresh link, one more try
        wait=lambda retry_state: 0.0 if retry_state.outcome is None
        or state.action(retry_state.outcome.exception()) == "mint" else min(2.0, hook.retry_base),
        before_sleep=before_next,
        reraise=True,
    )
    return retrying(_download_once, hook, root, stem, state, label, log)


def _download_once(hook: SeedreamHook, root: ObjectStoragePath, stem: str, state: _Attempts, label: str,
                   log: Logger) -> StoredImage:
    from airflow_provider_seedream import transport

    started = time.monotonic()
    cap, seconds_allowed = hook.max_download_bytes, hook.download_timeout
    with transport.deadline(seconds_allowed) as bound:
        try:
            response = hook.open_result(state.url)
        except exc.SeedreamTransportError as error:
            if bound.expired:
                raise _DownloadFailed("slow", f"the download did not start within {seconds_allowed:g} s") from None
            raise _DownloadFailed("transport", f"no answer from the result host ({error})") from error
        with response:
            if response.status_code != 200:
                raise _DownloadFailed(storage_policy.failure_for_status(response.status_code),
                                      f"the result host answered HTTP {response.status_code}")
            expected = storage_policy.expected_size(response.headers.get("Content-Length"),
                                           response.headers.get("Content-Encoding"))
            if expected is not None and expected > cap:
                raise _DownloadFailed("too_large", f"the result host announces {expected:,} bytes; at most {cap:,} "
                                                   f"are stored (max_download_bytes)")
            chunks = response.iter_content(chunk_size=hook.download_chunk_size)
            try:
                first = next(chunks, b"")
            except requests.RequestException as error:
                raise _broke_off(bound, 0, error) from error
            kind = storage_policy.result_type(first, _header(response, "Content-Type"))
            if kind is None:
                raise _DownloadFailed("not_image", f"the result host did not send an image (Content-Type "
                                                   f"{_header(response, 'Content-Type') or 'unset'})")
            mime_type, extension = kind
            final = root / (stem + extension)
            written = _write_atomically(final, first, chunks, expected, label, started, log, cap=cap, bound=bound)
    _remove_stale(root, stem, extension, log)
    seconds = time.monotonic() - started
    log.info("Stored result image %s: %s bytes (%s) in %.2f s (%s) -> %s", label, f"{written:,}", mime_type,
             seconds, _rate(written, seconds), redaction.redact_url(str(final)))
    return StoredImage(uri=str(final), size=written, mime_type=mime_type, seconds=seconds,
                       source_url=state.original_url)


def _header(response: Any, name: str) -> str | None:
    """A response header, cut short: it ends up in messages."""
    value = response.headers.get(name)
    return value[:100] if isinstance(value, str) else None


def _broke_off(bound: Any, written: int, error: BaseException) -> _DownloadFailed:
    if bound.expired:
        return _DownloadFailed("slow", f"the download took longer than {bound.seconds:g} s (download_timeout); "
                                       f"stopped after {written:,} bytes")
    return _DownloadFailed("short", f"the download broke off after {written:,} bytes ({type(error).__name__})")


def _write_atomically(final: ObjectStoragePath, first: bytes, chunks: Any, expected: int | None, label: str,
                      started: float, log: Logger, *, cap: int, bound: Any) -> int:
    """Store the body at ``final`` so that nobody ever sees it partly written; return the bytes written.

    At most ``cap`` bytes are written; ``bound`` (the download's ``transport.Deadline``) must not have expired when
    the last byte arrived, since a cut connection can look like the end of a body without a length.
    """
    fs = final.fs
    if storage_policy.placement(getattr(fs, "protocol", None)) == "direct":
        written = _write_direct(fs, final, first, chunks, expected, label, started, log, cap=cap, bound=bound)
    else:
        written = _write_then_rename(fs, final, first, chunks, expected, label, started, log, cap=cap, bound=bound)
    landed = fs.size(final.path)
    if landed is not None and int(landed) != written:
        _discard(fs, final.path)  # our own file, and wrong: the next try writes it again
        raise _DownloadFailed("short", f"the store held {int(landed):,} bytes after writing {written:,}")
    return written


def _write_direct(fs: Any, final: ObjectStoragePath, first: bytes, chunks: Any, expected: int | None, label: str,
                  started: float, log: Logger, *, cap: int, bound: Any) -> int:
    """Upload straight to the final key, and commit the upload only once the body is whole (object stores).

    With ``autocommit=False`` s3fs sends the body as a multipart upload and completes it only in ``commit()``; until
    then no object exists under the key (an earlier try's object stays as it was), and no other key is ever written.
    A failed body aborts the upload.
    """
    out = fs.open(final.path, "wb", block_size=storage_policy.STORE_BLOCK_BYTES, autocommit=False)
    try:
        written = _stream_into(out, first, chunks, expected, label, started, log, cap=cap, bound=bound)
        out.close()  # sends what is still buffered; publishes nothing
        out.commit()
    except BaseException:
        _abandon(out)
        raise
    return written


def _write_then_rename(fs: Any, final: ObjectStoragePath, first: bytes, chunks: Any, expected: int | None,
                       label: str, started: float, log: Logger, *, cap: int, bound: Any) -> int:
    """Stream into ``<name>.part-<random>`` next to ``final``, check the size, then move it over ``final``."""
    temporary = final.parent / f"{final.name}.part-{uuid.uuid4().hex[:12]}"
    try:
        if storage_policy.has_directories(final.protocol):
            fs.makedirs(final.parent.path, exist_ok=True)
        with temporary.open("wb", block_size=storage_policy.STORE_BLOCK_BYTES) as out:
            written = _stream_into(out, first, chunks, expected, label, started, log, cap=cap, bound=bound)
        fs.mv(temporary.path, final.path)
    except BaseException:
        _discard(fs, temporary.path)
        raise
    return written


def _stream_into(out: Any, first: bytes, chunks: Any, expected: int | None, label: str, started: float, log: Logger,
                 *, cap: int, bound: Any) -> int:
    """Write the body into ``out`` and check that it is whole (in time, and as long as announced)."""
    if len(first) > cap:
        raise _DownloadFailed("too_large", f"the image is larger than {cap:,} bytes (max_download_bytes)")
    out.write(first)
    written = len(first)
    next_note = started + PROGRESS_EVERY_SECONDS
    try:
        for chunk in chunks:
            if written + len(chunk) > cap:
                raise _DownloadFailed("too_large", f"the image is larger than {cap:,} bytes "
                                                   f"(max_download_bytes); stopped there")
            out.write(chunk)
            written += len(chunk)
            if time.monotonic() >= next_note:
                next_note = time.monotonic() + PROGRESS_EVERY_SECONDS
                log.info("Result image %s: %s bytes%s so far after %.0f s", label, f"{written:,}",
                         f" of {expected:,}" if expected else "", time.monotonic() - started)
    except requests.RequestException as error:
        raise _broke_off(bound, written, error) from error
    if bound.expired:
        raise _broke_off(bound, written, TimeoutError())
    problem = storage_policy.size_problem(expected, written)
    if problem:
        raise _DownloadFailed("short", problem)
    return written


def _abandon(out: Any) -> None:
    """Throw an uncommitted upload away: nothing appears under its key (S3: the multipart upload is aborted)."""
    try:
        out.close()  # uncommitted: sends what is buffered, publishes nothing, and lets discard() end the upload
    except Exception:
        pass
    try:
        out.discard()
    except Exception:  # an upload that cannot be aborted stays invisible; a bucket lifecycle rule removes it
        pass


def _discard(fs: Any, path: str) -> None:
    try:
        if fs.exists(path):
            fs.rm(path)
    except Exception:  # best effort: the partial file is named .part-*, never mistaken for a result
        pass


def _remove_stale(root: ObjectStoragePath, stem: str, extension: str, log: Logger) -> None:
    """Remove this image's copies in other formats left by an earlier try: it owns them, nobody else does."""
    for name in storage_policy.stale_siblings(stem, extension):
        path = root / name
        try:
            if path.fs.exists(path.path):
                path.fs.rm(path.path)
                log.info("Removed %s, an earlier try's copy of the same image in another format",
                         redaction.redact_url(str(path)))
        except Exception as error:  # never fail a stored result over a leftover
            log.warning("Could not remove the stale copy %s: %s", redaction.redact_url(str(path)), error)

