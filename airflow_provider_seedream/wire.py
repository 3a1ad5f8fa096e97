"""kie's wire protocol: paths, the answer envelope, error codes, task records, and what may be sent again.

Pure: ``parse_envelope`` reads ``code``, ``msg`` or ``message`` and ``data`` from an answer already bounded and redacted,
and maps kie's codes to typed errors; ``parse_task`` checks a recordInfo record (states, ``resultJson``, result URLs);
the retry predicates say what may be sent again (a createTask only when kie certainly refused it) and how long to back
off.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream import limits
from airflow_provider_seedream.redaction import NO_SECRETS, Redactor, cut
from airflow_provider_seedream.request import MAX_URL_CHARS, RENDERED_NONE, has_space_or_control, invalid, short

CREATE_TASK_PATH = "/api/v1/jobs/createTask"


RECORD_INFO_PATH = "/api/v1/jobs/recordInfo"


CREDIT_PATH = "/api/v1/chat/credit"


DOWNLOAD_URL_PATH = "/api/v1/common/download-url"


STREAM_UPLOAD_PATH = "/api/file-stream-upload"


STATE_WAITING = "waiting"


STATE_QUEUING = "queuing"


STATE_GENERATING = "generating"


STATE_SUCCESS = "success"


STATE_FAIL = "fail"


PENDING_STATES = frozenset({STATE_WAITING, STATE_QUEUING, STATE_GENERATING})


TERMINAL_STATES = frozenset({STATE_SUCCESS, STATE_FAIL})


KNOWN_STATES = PENDING_STATES | TERMINAL_STATES


#: What a kie task id may be. kie does not document the format; ids seen are 32 hex characters
#: (``e989621f54392584b05867f87b160672``) and, in doc examples, ``task_seedream_1765173396122``. Anything outside
#: letters, digits and ``_ . : -``, or longer than 128 characters, is not an id but a broken or hostile answer (it
#: would end up in XCom, logs, trigger kwargs and file names).
TASK_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


MAX_TASK_ID_CHARS = 128


def is_task_id(value: Any) -> TypeGuard[str]:
    """Tell whether ``value`` is a well-formed kie task id (``TASK_ID_PATTERN``)."""
    return isinstance(value, str) and TASK_ID_PATTERN.fullmatch(value) is not None


def check_task_id(task_id: Any, field_name: str = "seedream_task_id") -> str:
    """Return ``task_id`` if it is a well-formed kie task id; raise naming ``field_name`` otherwise."""
    if not isinstance(task_id, str) or not task_id.strip():
        raise invalid(field_name, f"must be a non-empty kie task id string, got {short(task_id)}")
    if task_id.strip() == "None":
        raise invalid(field_name, RENDERED_NONE)
    if not is_task_id(task_id):
        raise invalid(field_name, f"is not a kie task id (1 to {MAX_TASK_ID_CHARS} letters, digits or _ . : -, "
                                   f"starting with a letter or digit): {short(task_id)}")
    return task_id


_MISSING = object()


def parse_retry_after(value: str | None) -> float | None:
    """Read a ``Retry-After`` header given in seconds, held to ``limits.MAX_RETRY_AFTER_SECONDS``; ignore dates and
    garbage (the caller backs off anyway)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip()[:32])
    except (ValueError, AttributeError):
        return None
    return limits.cap_retry_after(seconds) if math.isfinite(seconds) and seconds >= 0 else None


def error_for_code(code: int, message: str, *, retry_after: float | None = None) -> exc.SeedreamError:
    """Map a kie code (inside the body or as the HTTP status) to the typed error a caller can act on."""
    text = f"kie.ai answered {code}: {message or 'no message'}"  # message: redacted and cut by parse_envelope
    if code == 401 or code == 403 or code == 433:
        return exc.SeedreamAuthError(text, code=code)
    if code == 402:
        return exc.SeedreamInsufficientCreditsError(text, code=code)
    if code == 404 or (code == 422 and "recordinfo is null" in (message or "").lower()):
        return exc.SeedreamNotFoundError(text, code=code)
    if code == 422:
        return exc.SeedreamValidationError(text, code=code)
    if code == 429:
        return exc.SeedreamRateLimitError(text, retry_after=retry_after)
    if code == 455 or code == 503:
        return exc.SeedreamServiceUnavailableError(text, code=code, retry_after=retry_after)
    if code == 505:
        return exc.SeedreamFeatureDisabledError(text, code=code)
    if code >= 500:
        return exc.SeedreamServerError(text, code=code)
    return exc.SeedreamApiError(text, code=code)


def parse_envelope(status: int, body: bytes | str, retry_after_header: str | None = None,
                   redactor: Redactor = NO_SECRETS) -> Any:
    """Return the ``data`` of a kie answer, or raise the typed error it stands for.

    kie reports errors both as HTTP statuses and as ``code`` inside HTTP 200 bodies, and names the message ``msg``
    on most endpoints but ``message`` on recordInfo; both layers and both names are read here. Every string of the
    answer passes through ``redactor`` first (a server may echo the key), and messages are cut to a few KiB.
    """
    retry_after = parse_retry_after(retry_after_header)
    try:
        payload = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly nested JSON
        payload = None
    if not isinstance(payload, dict):
        if 200 <= status < 300:
            raise exc.SeedreamResponseError(f"kie.ai answered HTTP {status} with a body that is not a JSON object: "
                                             f"{redactor.bytes_snippet(body, 60)!r}")
        raise error_for_code(status, f"HTTP {status}", retry_after=retry_after)
    try:
        payload = redactor.tree(payload)
    except RecursionError:  # parsed, but nested too deep to walk: no answer of kie looks like that
        raise exc.SeedreamResponseError("kie.ai answered with JSON nested too deeply to read") from None
    message = payload.get("msg") or payload.get("message") or ""
    message = redactor.text(message if isinstance(message, str) else json.dumps(message)[:4096])
    code = payload.get("code")
    if isinstance(code, bool) or not isinstance(code, int):
        code = None
    if not 200 <= status < 300:
        raise error_for_code(code if code not in (None, 200) else status, message or f"HTTP {status}",
                             retry_after=retry_after)
    if code is None:
        raise exc.SeedreamResponseError(f"kie.ai answer has no integer 'code': {short(payload)}")
    if code != 200:
        raise error_for_code(code, message, retry_after=retry_after)
    data = payload.get("data", _MISSING)
    if data is _MISSING:
        raise exc.SeedreamResponseError("kie.ai answered code 200 without 'data'")
    return data


def parse_task_id(data: Any) -> str:
    """Read the task id from createTask's ``data``; anything but a well-formed id (``TASK_ID_PATTERN``) raises."""
    task_id = data.get("taskId") if isinstance(data, dict) else None
    if not is_task_id(task_id):
        raise exc.SeedreamResponseError(f"createTask answer has no well-formed taskId: {short(data)}")
    return task_id


def parse_credits(data: Any) -> float:
    """Read the credit balance, which may be fractional (prices such as 6.5 credits exist)."""
    if isinstance(data, bool) or not isinstance(data, (int, float, str)):
        raise exc.SeedreamResponseError(f"credit answer is not a number: {short(data)}")
    try:
        value = float(data)
    except ValueError:
        raise exc.SeedreamResponseError(f"credit answer is not a number: {short(data)}") from None
    if not math.isfinite(value):
        raise exc.SeedreamResponseError(f"credit answer is not a finite number: {short(data)}")
    return value


def parse_download_url(data: Any) -> str:
    """Read the fresh link that download-url minted (``data`` is the URL itself)."""
    url = data.get("url") or data.get("downloadUrl") if isinstance(data, dict) else data
    if not is_result_url(url):
        raise exc.SeedreamResponseError(f"download-url answer holds no URL: {short(data)}")
    return url


def parse_upload(data: Any) -> str:
    """Read the public URL of an uploaded file (``downloadUrl``; older examples say ``fileUrl``)."""
    url = (data.get("downloadUrl") or data.get("fileUrl")) if isinstance(data, dict) else None
    if not is_result_url(url):
        raise exc.SeedreamResponseError(f"upload answer holds no downloadUrl: {short(data)}")
    return url


def _number(value: Any) -> float | None:
    """Read an informational number; anything that is not a finite number (NaN, 1e999, text) becomes ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or value == "":
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _ms(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


@dataclass(frozen=True)
class SeedreamTask:
    """What kie says about one task (recordInfo's ``data``), in plain, JSON-safe fields."""

    task_id: str
    state: str
    result_urls: tuple[str, ...] = ()
    fail_code: str | None = None
    fail_msg: str | None = None
    create_time: int | None = None
    update_time: int | None = None
    complete_time: int | None = None
    cost_time: float | None = None
    credits_consumed: float | None = None
    model: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def succeeded(self) -> bool:
        return self.state == STATE_SUCCESS

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "state": self.state,
            "result_urls": list(self.result_urls),
            "fail_code": self.fail_code,
            "fail_msg": self.fail_msg,
            "create_time": self.create_time,
            "update_time": self.update_time,
            "complete_time": self.complete_time,
            "cost_time": self.cost_time,
            "credits_consumed": self.credits_consumed,
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SeedreamTask:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known["result_urls"] = tuple(known.get("result_urls") or ())
        return cls(**known)


def is_result_url(value: Any) -> TypeGuard[str]:
    """Tell whether ``value`` may be stored as a result URL: http(s), a host, no spaces, at most 2048 characters."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL_CHARS:
        return False
    if has_space_or_control(value) or "\\" in value:
        return False
    try:
        parts = urlsplit(value)
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def _parse_result_urls(task_id: str, raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            raise exc.SeedreamResponseError(f"task {task_id}: resultJson is not JSON: {short(raw)}") from None
    if not isinstance(raw, dict):
        raise exc.SeedreamResponseError(f"task {task_id}: resultJson is not an object: {short(raw)}")
    urls = raw.get("resultUrls")
    if not isinstance(urls, list) or not all(isinstance(u, str) and u for u in urls):
        raise exc.SeedreamResponseError(f"task {task_id}: resultJson has no resultUrls list: {short(raw)}")
    if not urls:
        raise exc.SeedreamResponseError(f"task {task_id} succeeded but returned no result URLs")
    if len(urls) > limits.MAX_RESULT_URLS:
        raise exc.SeedreamResponseError(f"task {task_id} reports {len(urls)} result URLs; at most "
                                        f"{limits.MAX_RESULT_URLS} are read")
    bad = next((u for u in urls if not is_result_url(u)), None)
    if bad is not None:
        raise exc.SeedreamResponseError(f"task {task_id}: result URL is not an http(s) URL with a host: "
                                        f"{short(bad)}")
    return tuple(urls)


def _text(value: Any) -> str | None:
    """Read an informational text of an answer (already redacted), cut to a few KiB."""
    if value in (None, ""):
        return None
    text = value if isinstance(value, str) else json.dumps(value)[:4096]
    return cut(text)


def parse_task(data: Any, task_id: str | None = None) -> SeedreamTask:
    """Parse recordInfo's ``data`` into a ``SeedreamTask``; raise ``SeedreamResponseError`` if it makes no sense."""
    if data is None:
        raise exc.SeedreamNotFoundError(f"recordInfo returned no data for task {task_id}", code=422)
    if not isinstance(data, dict):
        raise exc.SeedreamResponseError(f"recordInfo data is not an object: {short(data)}")
    tid = data.get("taskId")
    if task_id is not None and tid != task_id:
        # An answer about another task (a proxy's cache, a mixed-up response) must never be taken as ours.
        raise exc.SeedreamResponseError(f"recordInfo was asked about task {task_id} but answered about "
                                        f"{short(tid)}")
    if not is_task_id(tid):
        raise exc.SeedreamResponseError(f"recordInfo data has no well-formed taskId: {short(tid)}")
    state = data.get("state")
    if not isinstance(state, str) or state not in KNOWN_STATES:
        raise exc.SeedreamResponseError(f"task {tid}: unknown state {short(state)} (expected one of "
                                        f"{', '.join(sorted(KNOWN_STATES))})")
    urls: tuple[str, ...] = ()
    if state == STATE_SUCCESS:
        urls = _parse_result_urls(tid, data.get("resultJson"))
    cost = data.get("costTime")
    credits = data.get("creditsConsumed", data.get("consumeCredits"))
    return SeedreamTask(
        task_id=tid,
        state=state,
        result_urls=urls,
        fail_code=_text(data.get("failCode")),
        fail_msg=_text(data.get("failMsg")),
        create_time=_ms(data.get("createTime")),
        update_time=_ms(data.get("updateTime")),
        complete_time=_ms(data.get("completeTime")),
        cost_time=_number(cost),
        credits_consumed=_number(credits),
        model=_text(data.get("model")),
    )


def is_transient(error: BaseException) -> bool:
    """Tell whether a read (recordInfo, credit, download) may be sent again."""
    return isinstance(error, exc.SeedreamError) and error.retryable


def is_clean_refusal(error: BaseException) -> bool:
    """Tell whether a failed createTask was certainly not accepted (so nothing was billed).

    Only kie's own refusals qualify: bad key, no credits, invalid input, a disabled feature, the rate limit (429) and
    maintenance (455), and a connection that was never made. Anything else (a timeout after sending, a reset, 5xx,
    an answer that cannot be read, an HTTP 200 without a well-formed task id) may hide an accepted, billed task.
    """
    if isinstance(error, (exc.SeedreamAuthError, exc.SeedreamInsufficientCreditsError, exc.SeedreamValidationError,
                          exc.SeedreamFeatureDisabledError, exc.SeedreamRateLimitError)):
        return True
    if isinstance(error, exc.SeedreamServiceUnavailableError):
        return error.code == 455
    return isinstance(error, exc.SeedreamTransportError) and not error.sent


def may_resubmit(error: BaseException) -> bool:
    """Tell whether a createTask may be sent again: only when kie certainly did not accept it.

    429 and 455 are refusals; a connection that was never made carried nothing. A timeout after sending, a reset,
    or a 5xx may hide an accepted (and billed) task, and createTask has no idempotency key.
    """
    if isinstance(error, exc.SeedreamRateLimitError):
        return True
    if isinstance(error, exc.SeedreamServiceUnavailableError):
        return error.code == 455
    return isinstance(error, exc.SeedreamTransportError) and not error.sent


def backoff_seconds(
    attempt: int,
    *,
    retry_after: float | None = None,
    base: float = 1.0,
    cap: float = 60.0,
    rng: Callable[[], float] = random.random,
) -> float:
    """Return how long to wait before try ``attempt + 1``: full-jitter exponential, never less than Retry-After.

    Jitter spreads a burst of refused submits over the window instead of bringing them back all at once.
    """
    if retry_after is not None:
        # The server said when a slot frees: come back then (plus a little jitter so that every refused client does
        # not return at once), not later. Growing the wait past it only idles while kie's 10 s window reopens.
        retry_after = min(max(retry_after, 0.1), cap)
        return min(cap, retry_after + min(1.0, 0.1 * retry_after + 0.05) * rng())
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return ceiling * (0.5 + 0.5 * rng())


def retry_after_of(error: BaseException | None) -> float | None:
    return getattr(error, "retry_after", None)


def describe_urls(urls: Iterable[str]) -> str:
    return ", ".join(urls)
