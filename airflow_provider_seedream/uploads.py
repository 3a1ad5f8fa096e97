"""Inputs from disk or a bucket: checked before anything is sent, then uploaded to kie's File Upload API.

``image_urls`` entries that are public http(s) URLs pass through untouched. Local paths, ``file://`` URIs and any
URI Airflow's ``ObjectStoragePath`` understands (``s3://``, ``gs://``, ... through the usual Airflow connections) are
checked first (exists, JPEG/PNG/WebP by content, at most 10 MB; at most 14 images in all), so a bad input costs
nothing and sends nothing. They are uploaded (free, streamed, unique names) only right before createTask, and the
uploaded URLs are what the task sends. Every rule is a pure function in ``inputs``; this module reads storage.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol

from airflow_provider_seedream import inputs, models, redaction, request, storage_policy
from airflow_provider_seedream import exceptions as exc

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath


class Uploader(Protocol):
    """What an upload needs of the hook (``SeedreamHook`` is one): its upload call and its log."""

    @property
    def log(self) -> Any: ...

    def upload_file(self, opener: Callable[[], IO[bytes]], *, size: int, file_name: str, mime_type: str,
                    upload_path: str = ...) -> str: ...

#: Read buffer for an upload's source: without it s3fs would fetch a whole (up to 10 MB) object at once.
READ_BLOCK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class InputFile:
    """A checked input file, waiting to be uploaded.

    :param identity: URI, size and modification stamp: what makes a retry "the same input".
    """

    index: int
    uri: str
    size: int
    mime_type: str
    identity: str

    @property
    def field(self) -> str:
        return f"image_urls[{self.index}]"


def to_storage_path(value: Any) -> ObjectStoragePath:
    """Return an ``ObjectStoragePath`` for a local path (made absolute, as ``file://``) or any storage URI."""
    from airflow.sdk import ObjectStoragePath

    if isinstance(value, ObjectStoragePath):
        return value
    text = str(value).strip()
    if "://" in text:
        return ObjectStoragePath(text)
    # An explicit file:// URI: Airflow 3.1 would otherwise read a relative path from the filesystem root.
    return ObjectStoragePath("file://" + os.path.abspath(os.path.expanduser(text)))


def _as_text(value: Any) -> Any:
    """Path objects become their URI (an ``ObjectStoragePath`` keeps its ``conn_id@``); anything else is untouched."""
    if isinstance(value, str):
        return value
    if hasattr(value, "protocol") and hasattr(value, "path"):  # ObjectStoragePath / UPath
        return str(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def given_images(image_urls: Any) -> list[Any]:
    """Return the entries of a (rendered) ``image_urls`` as a list, path objects as their URI text.

    A list, a string that reads as a list, one URL or path, or one path object on its own. Raises
    ``SeedreamValidationError`` naming ``image_urls`` when it is none of these.
    """
    if isinstance(image_urls, (list, tuple)):
        image_urls = [_as_text(value) for value in image_urls]
    elif not isinstance(image_urls, str) and _as_text(image_urls) is not image_urls:
        image_urls = [_as_text(image_urls)]  # one path object on its own
    return [_as_text(value) for value in request.coerce_url_list("image_urls", image_urls)]


def _storage_problem(field_name: str, uri: str, error: BaseException) -> exc.SeedreamError:
    shown = redaction.redact_url(uri)
    if isinstance(error, FileNotFoundError):
        return request.invalid(field_name, f"no such file: {shown} (neither an http(s) URL nor an existing file)")
    if isinstance(error, (IsADirectoryError, NotADirectoryError)):
        return request.invalid(field_name, f"is not a file: {shown}")
    if isinstance(error, PermissionError):
        return request.invalid(field_name, f"cannot be read (permission denied): {shown}")
    if isinstance(error, ValueError) and "filesystem" in str(error).lower():
        return request.invalid(field_name, storage_policy.no_filesystem_problem(uri, error))
    # Anything else (a bucket that timed out, a throttled read) may pass on a retry: not a validation error.
    return exc.SeedreamError(f"{field_name}: could not read {shown}: {type(error).__name__}: {error}")


def inspect_input(item: inputs.ImageInput) -> InputFile:
    """Check one local or bucket input (exists, size, type by content) without sending anything to kie."""
    uri = item.value
    try:
        path = to_storage_path(uri)
        uri = str(path)
        fs = path.fs
        info = fs.info(path.path)
        if info.get("type") not in (None, "file"):
            raise IsADirectoryError(uri)
        size = int(info.get("size") or 0)
        head = fs.cat_file(path.path, start=0, end=inputs.SNIFF_BYTES) if size else b""
    except Exception as error:  # every storage backend raises its own types; classify them into one message
        raise _storage_problem(item.field, uri, error) from error
    mime_type = inputs.check_input_file(item.field, size=size, head=head)
    stamp = next((str(info[key]) for key in ("mtime", "LastModified", "updated", "ETag", "etag", "created")
                  if info.get(key) not in (None, "")), "")
    return InputFile(item.index, uri, size, mime_type, identity=f"{uri}\0{size}\0{stamp}")


@dataclass(frozen=True)
class PreparedTask:
    """A task whose every input was checked; files still to upload are stood in for by placeholders.

    ``task.fingerprint()`` is stable across Airflow tries (the placeholders derive from each file's identity), so a
    retry can re-attach to the task it paid for before anything is uploaded again.
    """

    task: request.TaskInput
    files: tuple[InputFile, ...] = ()

    def upload(self, hook: Uploader) -> request.TaskInput:
        """Upload the files (in order) and return the task to send, with the uploaded URLs in place."""
        if not self.files:
            return self.task
        urls = list(self.task.image_urls)
        total = time.monotonic()
        for item in self.files:
            urls[item.index] = upload_input(hook, item)
        hook.log.info("Uploaded %d input file(s) through kie's File Upload API in %.2f s", len(self.files),
                      time.monotonic() - total)
        if any(inputs.is_placeholder(url) for url in urls):  # a bug here must never reach createTask
            raise exc.SeedreamError("internal error: an input was not uploaded; nothing was submitted")
        return dataclasses.replace(self.task, image_urls=tuple(urls))


def upload_input(hook: Uploader, item: InputFile) -> str:
    """Stream one checked file to kie's File Upload API under a unique name and return its public URL."""
    path = to_storage_path(item.uri)
    name = inputs.upload_file_name(item.mime_type, uuid.uuid4().hex)
    started = time.monotonic()
    try:
        url = hook.upload_file(lambda: path.open("rb", block_size=READ_BLOCK_BYTES), size=item.size, file_name=name,
                               mime_type=item.mime_type)
    except (exc.SeedreamApiError, exc.SeedreamValidationError) as error:
        # The upload host refused this file (400), or it changed since it was checked: nothing was paid for.
        raise request.invalid(item.field, f"could not upload {redaction.redact_url(item.uri)}: {error}") from error
    except exc.SeedreamError as error:
        hook.log.error("%s: uploading %s failed: %s (nothing was submitted)", item.field,
                       redaction.redact_url(item.uri), error)
        raise
    hook.log.info("%s: uploaded %s (%s, %s bytes) in %.2f s -> %s", item.field, redaction.redact_url(item.uri),
                  item.mime_type, f"{item.size:,}", time.monotonic() - started, url)
    return url


def prepare(task: request.TaskRequest, kind: models.Kind | None = None) -> PreparedTask:
    """Check every input of a task, files included, and return it ready to upload and send.

    Pure checks run first (the model, counts, URLs, prompt, enums, numbers, against the model's spec), then the
    files are looked at (size and leading bytes only). Raises ``SeedreamValidationError`` naming the field
    (``image_urls[3]: ...``); nothing is sent to kie. ``kind`` holds the model to edit or text-to-image models.
    """
    spec = models.spec_for(task.model)
    if task.image_urls is None or spec is None or not spec.takes_images:
        return PreparedTask(request.build_input(task, kind))  # no images to look at (or refused right there)
    raw: Sequence[Any] = given_images(task.image_urls)
    # The count (files included) is checked by build_input below, still before any file is read.
    given = [inputs.classify_image_input(i, value) for i, value in enumerate(raw)]
    provisional = [item.value if item.kind == "url" else inputs.placeholder_url(str(item.index)) for item in given]
    valid = request.build_input(dataclasses.replace(task, image_urls=provisional), kind)
    checked = tuple(inspect_input(item) for item in given if item.kind == "storage")
    if not checked:
        return PreparedTask(valid)
    urls = list(valid.image_urls)
    for item in checked:
        urls[item.index] = inputs.placeholder_url(item.identity)
    return PreparedTask(dataclasses.replace(valid, image_urls=tuple(urls)), checked)
