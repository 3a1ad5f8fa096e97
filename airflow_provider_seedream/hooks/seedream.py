"""Hook for kie.ai's Market API: the Seedream family (``models``), and any other Market model unvalidated.

The hook sends requests and sleeps; every decision comes from a pure module: the request's checks (``request``), the
connection's settings (``connection``), kie's wire protocol, error mapping and retry predicates (``wire``), the wait
state machine (``waitstate``). Sync calls use ``requests``; the async calls the trigger
needs use the shared ``httpx.AsyncClient`` from ``airflow_provider_seedream.aio``.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import Callable
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any

import tenacity

from airflow_provider_seedream import aio, connection, inputs, models, request, storage_policy, waitstate, wire
from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream.version_compat import BaseHook
from airflow_provider_seedream.watch import TaskWatch

if TYPE_CHECKING:
    import requests

    from airflow_provider_seedream import pacing

SubmitPredicate = Callable[[BaseException], bool]


class _SourceChanged(Exception):
    """The file being uploaded is not the size it had when it was checked (deliberately not an ``OSError``, so
    that urllib3 does not mistake it for a network failure and the upload is not retried)."""


class _StreamBody:
    """A ``multipart/form-data`` body read on demand: the file goes out in blocks and is never held whole.

    ``__len__`` gives requests the Content-Length, so the body is sent plainly rather than chunked.
    """

    def __init__(self, head: bytes, source: IO[bytes], size: int, tail: bytes) -> None:
        self._head = head
        self._source = source
        self._size = size
        self._remaining = size
        self._tail = tail
        self._length = len(head) + size + len(tail)

    def __len__(self) -> int:
        return self._length

    def read(self, amount: int | None = -1) -> bytes:
        if amount is None or amount < 0:
            amount = self._length
        out = bytearray()
        while len(out) < amount:
            if self._head:
                take = self._head[: amount - len(out)]
                self._head = self._head[len(take):]
                out += take
            elif self._remaining:
                data = self._source.read(min(amount - len(out), self._remaining))
                if not data:
                    raise _SourceChanged(f"the file ended after {self._size - self._remaining:,} of the "
                                         f"{self._size:,} bytes it had when it was checked")
                self._remaining -= len(data)
                out += data
                if not self._remaining and self._source.read(1):
                    raise _SourceChanged(f"the file grew beyond the {self._size:,} bytes it had when it was checked")
            elif self._tail:
                take = self._tail[: amount - len(out)]
                self._tail = self._tail[len(take):]
                out += take
            else:
                break
        return bytes(out)


class SeedreamHook(BaseHook):
    """Talk to kie.ai's Market API for Seedream 4.5 edits.

    :param seedream_conn_id: the Airflow connection: API key in ``password``, base URL in ``host``
        (default ``https://api.kie.ai``), optional extras ``upload_base_url``, ``polls_per_second``, ``timeout`` and
        ``typical_run_seconds``.
    :param timeout: seconds to wait for a whole answer to one request, sync or async (``aget_task``); ``None`` takes
        the connection's extra ``timeout`` (default 30 s), which is what a trigger's own hook reads.
    :param connect_timeout: seconds to wait for a connection, sync or async.
    :param max_retries: how many times a sync read (``get_task``, credit, download-url, upload) is sent again after a
        transient error. Waits do not retry inside a query: their waiter counts transient errors in a row
        (``max_consecutive_errors``) and polls again on its schedule.
    :param retry_base: the first backoff, in seconds; it doubles with every try (with jitter) up to 60 s.
    :param submit_timeout: how long, in seconds, a createTask refused with 429 or 455 keeps being resubmitted.
    :param download_chunk_size: bytes read per step while storing a result image: what a download holds in memory.
    :param max_download_bytes: the largest result image stored, in bytes; ``None`` takes the connection's extra
        ``max_download_bytes`` (default 200 MiB). Checked against ``Content-Length`` and while streaming.
    :param download_timeout: seconds one result image may take to download in all; ``None`` takes the connection's
        extra ``download_timeout`` (default 300 s).
    """

    conn_name_attr = "seedream_conn_id"
    default_conn_name = "seedream_default"
    conn_type = "seedream"
    hook_name = "Seedream (kie.ai)"

    def __init__(
        self,
        seedream_conn_id: str = default_conn_name,
        *,
        timeout: float | None = None,
        connect_timeout: float = connection.CONNECT_TIMEOUT_SECONDS,
        max_retries: int = 4,
        retry_base: float = 1.0,
        submit_timeout: float = 600.0,
        download_chunk_size: int = storage_policy.DEFAULT_CHUNK_BYTES,
        max_download_bytes: int | None = None,
        download_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.seedream_conn_id = seedream_conn_id
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_retries = max_retries
        self.retry_base = retry_base
        self.submit_timeout = submit_timeout
        self.download_chunk_size = download_chunk_size
        self._max_download_bytes = max_download_bytes
        self._download_timeout = download_timeout

    # ---------------------------------------------------------------------------------------------------- connection
    @staticmethod
    def _form() -> dict[str, Any]:
        from airflow_provider_seedream.get_provider_info import get_provider_info

        form: dict[str, Any] = get_provider_info()["connection-types"][0]
        return form

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Shape the connection form on Airflow 3.1, from the provider info that 3.2+ reads (one description)."""
        return {key.replace("-", "_"): value for key, value in cls._form()["ui-field-behaviour"].items()}

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields for the connection form on Airflow 3.1: the provider info's ``conn-fields``, as text fields."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import StringField

        return {name: StringField(lazy_gettext(field["label"]), widget=BS3TextFieldWidget())
                for name, field in cls._form()["conn-fields"].items()}

    def _settings_from(self, conn: Any, extra: dict[str, Any]) -> connection.ConnectionSettings:
        return connection.settings_from_connection(
            conn_id=self.seedream_conn_id, host=conn.host, password=conn.password, extra=extra, port=conn.port
        )

    @cached_property
    def settings(self) -> connection.ConnectionSettings:
        """The connection's settings, read once (blocking: not for the event loop)."""
        conn = self.get_connection(self.seedream_conn_id)
        return self._settings_from(conn, conn.extra_dejson)

    async def aget_settings(self) -> connection.ConnectionSettings:
        """Read the connection without blocking the event loop, and remember it in ``settings``."""
        if "settings" in self.__dict__:
            return self.__dict__["settings"]
        conn = await self.aget_connection(self.seedream_conn_id)
        aextra = getattr(conn, "aextra_dejson", None)
        if aextra is not None:  # 3.3.2+: fully async, masking included
            extra = await aextra()
        else:  # 3.1 .. 3.3.1: extra_dejson masks secrets synchronously; keep it off the loop
            extra = await asyncio.to_thread(lambda: conn.extra_dejson)
        settings = self._settings_from(conn, extra)
        self.__dict__["settings"] = settings
        return settings

    @cached_property
    def session(self) -> requests.Session:
        from airflow_provider_seedream import transport  # imported here: DAG files that only import the operator skip it

        return transport.bounded_session(self.settings.headers, direct=self.settings.direct)

    @cached_property
    def download_session(self) -> requests.Session:
        """A session for result images: it never carries the API key, since result links live on other hosts."""
        from airflow_provider_seedream import transport

        # Ask for the bytes as stored, so that Content-Length can be compared with what was written.
        return transport.bounded_session({"Accept-Encoding": "identity"})

    @cached_property
    def pacer(self) -> pacing.HostPacer:
        """The createTask pace this host's processes share for the connection's key (kie: 20 per 10 s)."""
        from airflow_provider_seedream import pacing

        return pacing.HostPacer(self.settings.budget_key(), limit=self.settings.submits_per_10s)

    @property
    def max_download_bytes(self) -> int:
        """The largest result image stored, in bytes."""
        if self._max_download_bytes is not None:
            return int(self._max_download_bytes)
        return self.settings.max_download_bytes

    @property
    def download_timeout(self) -> float:
        """Seconds one result image may take to download, in all."""
        if self._download_timeout is not None:
            return float(self._download_timeout)
        return self.settings.download_timeout

    # ---------------------------------------------------------------------------------------------------- transport
    def _timeouts(self) -> tuple[float, float]:
        """(connect, read) timeouts: the hook's own, else the connection's extra ``timeout``."""
        return self.timeouts_for(self.settings)

    def timeouts_for(self, settings: connection.ConnectionSettings) -> tuple[float, float]:
        """(connect, whole answer) timeouts for one request, the same for the sync and the async stack: the hook's
        ``connect_timeout`` and ``timeout`` when given, else the connection's extra ``timeout``."""
        return self.connect_timeout, self.timeout if self.timeout is not None else settings.timeout

    def _send(self, method: str, url: str, what: str, *, fresh_connection: bool = False,
              total_timeout: float | None = None, **kwargs: Any) -> Any:
        """Send one request and return the answer's ``data``, or raise the typed error it stands for.

        The whole answer must arrive within the read timeout and hold at most ``limits.MAX_JSON_BYTES``; every text
        in it is redacted for the key before anything reads it.
        """
        from airflow_provider_seedream import transport

        connect_timeout, timeout = self._timeouts()
        if total_timeout is not None:  # an upload sends up to 10 MB: bounded like a download, not like an answer
            timeout = max(timeout, total_timeout)
        if fresh_connection:
            # A pooled keep-alive connection that the server already closed fails *after* sending, which would
            # make a createTask look "maybe accepted". A new connection per submit rules that case out.
            with transport.bounded_session(self.settings.headers, direct=self.settings.direct) as one_shot:
                answer = transport.fetch(one_shot, method, url, what, timeout=timeout,
                                         connect_timeout=connect_timeout, **kwargs)
        else:
            answer = transport.fetch(self.session, method, url, what, timeout=timeout,
                                     connect_timeout=connect_timeout, **kwargs)
        return wire.parse_envelope(answer.status, answer.body, answer.retry_after, self.settings.redactor)

    def _retrying(self, predicate: SubmitPredicate, what: str, stop: Any) -> tenacity.Retrying:
        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            return wire.backoff_seconds(state.attempt_number, retry_after=wire.retry_after_of(error),
                                        base=self.retry_base)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            self.log.warning("%s: %s (not accepted); trying again in %.1f s (attempt %d)", what, error,
                             state.upcoming_sleep, state.attempt_number + 1)

        return tenacity.Retrying(retry=tenacity.retry_if_exception(predicate), wait=wait, stop=stop,
                                 before_sleep=before_sleep, reraise=True)

    def _transient_retrying(self, what: str) -> tenacity.Retrying:
        """Retry transient errors (connection trouble, 429, 5xx) up to ``max_retries`` times: for reads and uploads."""
        return self._retrying(wire.is_transient, what, tenacity.stop_after_attempt(self.max_retries + 1))

    def _read(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        return self._transient_retrying(what)(self._send, method, self.settings.base_url + path, what, **kwargs)

    # ---------------------------------------------------------------------------------------------------- API
    def create_edit_task(
        self,
        prompt: str,
        image_urls: list[Any] | str,
        aspect_ratio: str | None = None,
        quality: str | None = None,
        callback_url: str | None = None,
        nsfw_checker: bool | None = None,
        model: str = models.DEFAULT_EDIT_MODEL,
        **fields: Any,
    ) -> str:
        """Validate the inputs, submit an edit (Seedream 4.5 unless ``model`` names another edit model of the family)
        and return kie's task id.

        ``image_urls`` may mix public http(s) URLs with local paths and object storage URIs (``s3://...``); files
        are checked (JPEG/PNG/WebP by content, at most 10 MB) and uploaded through kie's File Upload API first.
        ``fields`` are the model's other fields (``image_size``, ``max_images``, ``seed`` ...). Bad inputs raise
        ``SeedreamValidationError`` before anything is sent.
        """
        from airflow_provider_seedream import uploads

        prepared = uploads.prepare(request.TaskRequest(prompt, image_urls, aspect_ratio, quality, callback_url,
                                                       nsfw_checker, model, **fields), "edit")
        return self.submit_task(prepared.upload(self))

    def create_task(self, model: str, input: dict[str, Any], callback_url: str | None = None) -> str:
        """Submit a task of any model served by kie's Market endpoints and return its task id.

        A model of the Seedream family (``models.SPECS``) is validated by its spec first, files in ``image_urls``
        uploaded, as the operators do. Any other model (a newer Seedream, another vendor's) is sent with ``input``
        as given: it is not validated here (kie refuses bad input with 422, and says which field), and the log says
        so. The sensor and the triggers wait for any Market task id.
        """
        from airflow_provider_seedream import uploads

        if not isinstance(model, str) or not model.strip() or request.has_space_or_control(model):
            raise request.invalid("model", f"must be a kie.ai model id such as {models.DEFAULT_EDIT_MODEL!r}; got "
                                           f"{request.short(model)}")
        if not isinstance(input, dict):
            raise request.invalid("input", f"must be a dict of the model's input fields, got {type(input).__name__}")
        spec = models.spec_for(model)
        if spec is not None:
            unknown = sorted(str(name) for name in input if name not in request.REQUEST_FIELDS
                             or name in request.ENVELOPE_FIELDS)
            if unknown:
                raise request.invalid(unknown[0], f"model {model} has no such field (its fields: "
                                                  f"{', '.join(spec.field_names)})")
            prepared = uploads.prepare(request.TaskRequest(**{**input, "model": model, "callback_url": callback_url}))
            return self.submit_task(prepared.upload(self))
        if callback_url not in (None, ""):
            request.check_http_url("callback_url", callback_url)
        try:
            json.dumps(input, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise request.invalid("input", f"must be JSON (plain dicts, lists, strings, numbers): {error}") from None
        self.log.warning("Model %s is not in this provider's Seedream spec table: its input is sent to kie.ai "
                         "unvalidated (kie answers 422 naming a bad field)", model)
        return self.submit_task(request.TaskInput(model, tuple(input.items()), (), callback_url or None))

    def submit_task(self, task: request.TaskInput, *, before_send: Callable[[], None] | None = None,
                    idle: Callable[[float], None] | None = None) -> str:
        """Submit a checked task and return its id.

        :param before_send: called right before each createTask leaves (after pacing), e.g. to record durably that
            a submit is in flight: a process killed while waiting for the answer cannot record anything after it.
        :param idle: called instead of ``time.sleep`` while the submit waits for its place in the host's pace, with
            the seconds to wait (it should return about then): the batch watches its earlier tasks meanwhile.

        A createTask refused with 429 or 455 (not accepted) is resubmitted after ``Retry-After`` with jittered
        backoff, for up to ``submit_timeout`` seconds. One that may have been accepted (timeout after sending, reset,
        5xx) is never resubmitted, since kie has no idempotency key and a duplicate is a second bill: it raises
        ``SeedreamSubmitUncertainError`` instead.
        """
        # The first request of a process imports the HTTP stack (requests, urllib3: 92 ms of CPU on an idle machine,
        # far more on a loaded one). Here, before the wait for a slot, not between the slot and the send: the pace
        # counts each submit from its answer, so whatever delays one submit delays the one 20 places after it.
        from airflow_provider_seedream import transport  # noqa: F401

        url = self.settings.base_url + wire.CREATE_TASK_PATH
        what = "createTask"
        retrying = self._retrying(wire.may_resubmit, what, tenacity.stop_before_delay(self.submit_timeout))
        started = time.monotonic()

        def once() -> str:
            # Every try leaves at a moment reserved with this host's other workers, within kie's 20 per 10 s.
            with self.pacer.departure(sleep=idle or time.sleep) as waited:
                if waited >= 1.0:
                    self.log.info("createTask waited %.1f s for a free slot of kie's %d per 10 s (shared by this "
                                  "host's workers)", waited, self.pacer.limit)
                if before_send is not None:
                    before_send()
                data = self._send("POST", url, what, fresh_connection=True, json=task.body())
            return wire.parse_task_id(data)

        try:
            task_id = retrying(once)
        except Exception as error:
            if wire.is_clean_refusal(error):
                raise
            # Anything but a clean refusal or a well-formed task id may hide an accepted, billed task.
            message = self.settings.redactor.text(f"{type(error).__name__}: {error}")
            self.log.error("createTask may have been accepted by kie.ai but gave no usable task id (%s); NOT "
                           "resubmitting, since a second createTask would be billed again", message)
            raise exc.SeedreamSubmitUncertainError(
                f"createTask may have been accepted by kie.ai but no usable task id came back ({message}); it was "
                "not resubmitted to avoid paying twice: look for a task created at this time on kie.ai's logs page"
            ) from error
        shown = ", ".join(f"{name}={value}" for name, value in task.input if name != "prompt")
        self.log.info("Seedream task %s created (%s%s, %d input image(s)) in %.1f s", task_id, task.model,
                      f": {shown}" if shown else "", len(task.image_urls), time.monotonic() - started)
        return task_id

    def _get_task_once(self, task_id: str) -> wire.SeedreamTask:
        data = self._send("GET", self.settings.base_url + wire.RECORD_INFO_PATH, "recordInfo",
                          params={"taskId": task_id})
        return wire.parse_task(data, task_id)

    def get_task(self, task_id: str) -> wire.SeedreamTask:
        """Return what kie says about ``task_id`` now (transient errors are retried with backoff)."""
        wire.check_task_id(task_id)
        return self._transient_retrying("recordInfo")(self._get_task_once, task_id)

    def observe(self, waiter: waitstate.Waiter, log: Any,
                on_update: Callable[[wire.SeedreamTask], None] | None = None) -> waitstate.Step:
        """Query the task once (no retries of its own: the waiter counts errors), feed the outcome to ``waiter``.

        One step of every blocking wait: ``wait_for_task`` and the operator's and sensor's checks in the worker.
        """
        outcome: wire.SeedreamTask | BaseException
        try:
            outcome = self._get_task_once(waiter.task_id)
            if on_update is not None:
                on_update(outcome)
        except exc.SeedreamError as error:
            outcome = error
        step = waiter.observe(outcome, time.time())
        if step.note:
            log.info("%s", step.note)
        return step

    def wait_for_task(
        self,
        task_id: str,
        *,
        poll_interval: float = 5.0,
        timeout: float | None = 1800.0,
        deadline: float | None = None,
        on_update: Callable[[wire.SeedreamTask], None] | None = None,
        max_consecutive_errors: int = waitstate.DEFAULT_MAX_CONSECUTIVE_ERRORS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> wire.SeedreamTask:
        """Block until ``task_id`` finishes and return it; raise ``SeedreamTaskFailedError`` if it failed.

        :param poll_interval: the base pause between queries; it stretches per kie's guidance as the wait grows.
        :param timeout: seconds to wait at most (ignored when ``deadline`` is given); ``None`` waits forever.
        :param deadline: absolute end of the wait, seconds since the epoch.
        :param on_update: called with every task read, for progress reporting.
        :param max_consecutive_errors: transient errors in a row tolerated before giving up.
        """
        wire.check_task_id(task_id)
        now = time.time()
        if deadline is None:
            deadline = now + timeout if timeout is not None else float("inf")
        waiter = waitstate.Waiter.start(task_id, poll_interval=poll_interval, deadline=deadline, started_at=now,
                                        max_consecutive_errors=max_consecutive_errors)
        while True:
            step = self.observe(waiter, self.log, on_update)
            if step.event is not None:
                return waitstate.resolve_event(step.event, task_id)
            sleep(step.delay)

    def wait_for_tasks(
        self,
        task_ids: list[str],
        *,
        poll_interval: float = 5.0,
        deadline: float,
        on_end: Callable[[str, waitstate.TaskEvent], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, waitstate.TaskEvent]:
        """Block until every task in ``task_ids`` ends (or the deadline passes) and return each one's event.

        One waiter per task, polled one at a time in the order their next query falls due, and never faster than
        the connection's ``polls_per_second``: the blocking form of the batch's one deferral.

        :param on_end: called with each task's id and event as soon as that task ends (say, to store its result
            while the others still run).
        """
        watch = TaskWatch(self, poll_interval=poll_interval, rate=self.settings.polls_per_second, deadline=deadline,
                          on_end=on_end, sleep=sleep)
        for task_id in task_ids:
            watch.add(task_id)
        watch.run()
        return watch.events

    def get_credits(self) -> float:
        """Return the account's credit balance (a free call)."""
        return wire.parse_credits(self._read("GET", wire.CREDIT_PATH, "credit"))

    def get_download_url(self, result_url: str) -> str:
        """Mint a fresh 20-minute link for a kie result URL whose own link has expired."""
        data = self._read("POST", wire.DOWNLOAD_URL_PATH, "download-url", json={"url": result_url})
        return wire.parse_download_url(data)

    def open_result(self, url: str) -> requests.Response:
        """Start downloading a result image as a stream; the caller reads it in chunks and closes it.

        No API key is sent: result links are public, and they live on hosts other than kie's API. Call it inside
        ``transport.deadline(self.download_timeout)`` to bound the whole download (``storage`` does).
        """
        import requests  # imported here: DAG files that only import the operator skip it

        from airflow_provider_seedream import transport
        try:
            return self.download_session.get(url, stream=True, timeout=self._timeouts(), allow_redirects=False)
        except requests.RequestException as error:
            raise transport.transport_error(error, "result download") from None

    def upload_file(self, opener: Callable[[], IO[bytes]], *, size: int, file_name: str, mime_type: str,
                    upload_path: str = inputs.UPLOAD_PATH) -> str:
        """Stream one file to kie's File Upload API (``file-stream-upload``) and return its public download URL.

        :param opener: opens the file for reading; called again for each try, so a retried upload starts over.
        :param size: the file's size in bytes, as checked; a file that changed since fails rather than uploads.
        :param file_name: the name on kie's host; re-using one overwrites, so pass a unique name.
        """
        url = self.settings.upload_base_url + wire.STREAM_UPLOAD_PATH

        def once() -> Any:
            boundary = f"seedream-{uuid.uuid4().hex}"
            head, tail = inputs.multipart_frame(boundary, {"uploadPath": upload_path, "fileName": file_name},
                                               "file", file_name, mime_type)
            with opener() as source:
                body = _StreamBody(head, source, size, tail)
                try:
                    return self._send("POST", url, "upload", data=body, total_timeout=self.download_timeout,
                                      headers={"Content-Type": inputs.multipart_content_type(boundary)})
                except _SourceChanged as error:
                    raise exc.SeedreamValidationError(f"{file_name}: {error}", code=None) from None

        return wire.parse_upload(self._transient_retrying("upload")(once))

    def test_connection(self) -> tuple[bool, str]:
        """Check the key and the base URL with the credit endpoint, which spends nothing."""
        try:
            credits = self.get_credits()
        except Exception as error:  # the form shows the message; it must never be a traceback
            message = f"{type(error).__name__}: {error}"
            settings = self.__dict__.get("settings")  # read: every server text passed its redactor already
            return False, settings.redactor.text(message) if settings is not None else message
        return True, (f"Connected to {self.settings.base_url}; credit balance: {credits:g} "
                      f"(input uploads go to {self.settings.upload_base_url})")

    # ---------------------------------------------------------------------------------------------------- async
    async def aget_task(self, task_id: str, *, priority: float = 0.0,
                        deadline: float | None = None) -> wire.SeedreamTask:
        """Query ``task_id`` once, within the process's poll budget for this key; never blocks the loop.

        :param deadline: the wait's absolute end (seconds since the epoch): a budget paused by someone's 429 never
            holds this query past it (it raises a transient ``SeedreamRateLimitError`` then, which the waiter turns
            into its timeout), and the answer must arrive before it, or within the connection's timeout if sooner.
        """
        settings = await self.aget_settings()
        url = settings.base_url + wire.RECORD_INFO_PATH
        async with aio.lease(settings) as (client, budget):
            await aio.acquire_before(budget, priority, deadline)
            connect_timeout, timeout = self.timeouts_for(settings)
            if deadline is not None:
                timeout = min(timeout, max(deadline - time.time(), 1.0))
            answer = await aio.fetch(client, url, "recordInfo", timeout=timeout, params={"taskId": task_id},
                                     connect_timeout=connect_timeout)
        data = wire.parse_envelope(answer.status, answer.body, answer.retry_after, settings.redactor)
        return wire.parse_task(data, task_id)
