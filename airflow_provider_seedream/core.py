"""The decisions of the provider, free of I/O.

Everything that can be decided without the network lives here as pure functions and frozen dataclasses: validating
inputs and building the createTask body, reading connection settings, parsing kie's envelope (``code``, ``msg`` or
``message``, ``data``) and mapping codes to typed errors, parsing ``resultJson``, retry decisions, the poll schedule,
and the wait state machine shared by the hook's blocking wait, the sensor's poke mode and the trigger. The hook and the
trigger only send requests and sleep.
"""

from __future__ import annotations

import ast
import ipaddress
import json
import math
import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, TypedDict, TypeGuard
from urllib.parse import urlsplit

from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream import limits, schedule
from airflow_provider_seedream.redaction import NO_SECRETS, Redactor, cut

MODEL = "seedream/4.5-edit"
DEFAULT_BASE_URL = "https://api.kie.ai"
DEFAULT_UPLOAD_BASE_URL = "https://kieai.redpandaai.co"
CREATE_TASK_PATH = "/api/v1/jobs/createTask"
RECORD_INFO_PATH = "/api/v1/jobs/recordInfo"
CREDIT_PATH = "/api/v1/chat/credit"
DOWNLOAD_URL_PATH = "/api/v1/common/download-url"
STREAM_UPLOAD_PATH = "/api/file-stream-upload"

ASPECT_RATIOS = ("1:1", "4:3", "3:4", "16:9", "9:16", "2:3", "3:2", "21:9")
QUALITIES = ("basic", "high")
MAX_PROMPT_CHARS = 3000
MAX_IMAGES = 14
MAX_URL_CHARS = 2048

# kie's documented recordInfo budget is 10 requests/s per key; stay safely under it by default.
DEFAULT_POLLS_PER_SECOND = 8.0
# Seconds to wait for one answer (connection extra ``timeout``); a createTask that times out is never resubmitted.
DEFAULT_TIMEOUT_SECONDS = 30.0
#: Seconds to wait for a connection to kie (the read timeout is the connection's extra ``timeout``).
CONNECT_TIMEOUT_SECONDS = 10.0
MAX_TIMEOUT_SECONDS = 600.0
MAX_POLLS_PER_SECOND = 9.0
#: The median Seedream edit time the poll budget assumes when it must choose whose status to ask first.
DEFAULT_TYPICAL_RUN_SECONDS = 20.0
MAX_TYPICAL_RUN_SECONDS = 3600.0
# A task created a moment ago may answer "recordInfo is null" for a short while.
DEFAULT_NOT_FOUND_GRACE = 30.0
DEFAULT_MAX_CONSECUTIVE_ERRORS = 5

STATE_WAITING = "waiting"
STATE_QUEUING = "queuing"
STATE_GENERATING = "generating"
STATE_SUCCESS = "success"
STATE_FAIL = "fail"
PENDING_STATES = frozenset({STATE_WAITING, STATE_QUEUING, STATE_GENERATING})
TERMINAL_STATES = frozenset({STATE_SUCCESS, STATE_FAIL})
KNOWN_STATES = PENDING_STATES | TERMINAL_STATES


# --------------------------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------------------------


# What Jinja renders for a missing value (``{{ ti.xcom_pull(...) }}`` of nothing, a param set to None).
RENDERED_NONE = "rendered to the text 'None': the template's value was missing (an XCom never pushed, a param unset?)"


def invalid(field_name: str, problem: str) -> exc.SeedreamValidationError:
    """The refusal of an input, naming its field: raised before anything is sent."""
    return exc.SeedreamValidationError(f"{field_name}: {problem}", field=field_name, code=None)


def short(value: Any, limit: int = 80) -> str:
    """A value as an error message may quote it: its repr, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def has_space_or_control(text: str) -> bool:
    """Tell whether ``text`` holds whitespace or a control character (never part of a URL we send or store)."""
    return any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text)


def is_loopback_host(host: str | None) -> bool:
    """Tell whether ``host`` names this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_http_url(field_name: str, value: Any) -> str:
    """Return ``value`` if it is an absolute http(s) URL with a host, else raise naming ``field_name``."""
    if not isinstance(value, str):
        raise invalid(field_name, f"must be an http(s) URL string, got {type(value).__name__} {short(value)}")
    if not value or value != value.strip() or any(ch.isspace() for ch in value):
        raise invalid(field_name, f"must be an http(s) URL without spaces, got {short(value)}")
    if len(value) > MAX_URL_CHARS:
        raise invalid(field_name, f"URL is {len(value)} characters long; at most {MAX_URL_CHARS} are allowed")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise invalid(field_name, f"must use http or https, got {short(value)}")
    if not parts.hostname:
        raise invalid(field_name, f"has no host: {short(value)}")
    return value


def coerce_url_list(field_name: str, value: Any) -> list[Any]:
    """Turn a templated ``image_urls`` value into a list.

    Jinja renders a list to its text unless the DAG sets ``render_template_as_native_obj``, so a string that reads
    as a JSON or Python list is parsed back; a single URL string becomes a list of one.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            parsed: Any
            try:
                parsed = json.loads(text)
            except ValueError:
                try:
                    parsed = ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    raise invalid(field_name, f"could not read a list of URLs from {short(value)}") from None
            if not isinstance(parsed, list):
                raise invalid(field_name, f"must be a list of URLs, got {short(value)}")
            return parsed
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise invalid(field_name, f"must be a list of 1 to {MAX_IMAGES} URLs, got {type(value).__name__}")


@dataclass(frozen=True)
class EditInput:
    """A validated Seedream 4.5 edit request, ready to send."""

    prompt: str
    image_urls: tuple[str, ...]
    aspect_ratio: str = "1:1"
    quality: str = "basic"
    callback_url: str | None = None
    nsfw_checker: bool | None = None

    def body(self) -> dict[str, Any]:
        """Return the createTask JSON body (``aspect_ratio`` and ``quality`` always sent: the schema requires them)."""
        payload: dict[str, Any] = {
            "prompt": self.prompt,
            "image_urls": list(self.image_urls),
            "aspect_ratio": self.aspect_ratio,
            "quality": self.quality,
        }
        if self.nsfw_checker is not None:
            payload["nsfw_checker"] = self.nsfw_checker
        body: dict[str, Any] = {"model": MODEL, "input": payload}
        if self.callback_url:
            body["callBackUrl"] = self.callback_url
        return body

    def fingerprint(self) -> str:
        """Return a stable digest of the request, to tell a retry of the same edit from a changed one."""
        import hashlib

        canonical = json.dumps(self.body(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def build_edit_input(
    prompt: Any,
    image_urls: Any,
    aspect_ratio: Any = "1:1",
    quality: Any = "basic",
    callback_url: Any = None,
    nsfw_checker: Any = None,
) -> EditInput:
    """Validate every input of an edit and return it; raise ``SeedreamValidationError`` naming the first bad field."""
    if not isinstance(prompt, str):
        raise invalid("prompt", f"must be a string, got {type(prompt).__name__}")
    if prompt.strip() == "None":
        raise invalid("prompt", RENDERED_NONE)
    if not prompt.strip():
        raise invalid("prompt", f"must not be empty (1 to {MAX_PROMPT_CHARS} characters)")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise invalid("prompt", f"is {len(prompt)} characters long; at most {MAX_PROMPT_CHARS} are allowed")

    urls = coerce_url_list("image_urls", image_urls)
    if not 1 <= len(urls) <= MAX_IMAGES:
        raise invalid("image_urls", f"must hold 1 to {MAX_IMAGES} URLs, got {len(urls)}")
    checked = tuple(check_http_url(f"image_urls[{i}]", url) for i, url in enumerate(urls))

    if not isinstance(aspect_ratio, str) or aspect_ratio not in ASPECT_RATIOS:
        raise invalid("aspect_ratio", f"must be one of {', '.join(ASPECT_RATIOS)}; got {short(aspect_ratio)}")
    if not isinstance(quality, str) or quality not in QUALITIES:
        raise invalid("quality", f"must be 'basic' (2K) or 'high' (4K); got {short(quality)}")
    if callback_url in (None, ""):
        callback_url = None
    else:
        check_http_url("callback_url", callback_url)
    if nsfw_checker is not None and not isinstance(nsfw_checker, bool):
        raise invalid("nsfw_checker", f"must be true, false or unset; got {short(nsfw_checker)}")
    return EditInput(prompt, checked, aspect_ratio, quality, callback_url, nsfw_checker)


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


def check_positive(field_name: str, value: Any, minimum: float = 0.0) -> float:
    """Return ``value`` as a float if it is a number above ``minimum``; raise naming the field otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= minimum:
        raise invalid(field_name, f"must be a number greater than {minimum:g}, got {short(value)}")
    return float(value)


# --------------------------------------------------------------------------------------------------------------------
# Connection settings
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and how to reach kie, read from an Airflow connection. The key never shows in ``repr``."""

    base_url: str
    api_key: str = field(repr=False)
    upload_base_url: str = DEFAULT_UPLOAD_BASE_URL
    polls_per_second: float = DEFAULT_POLLS_PER_SECOND
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    typical_run_seconds: float = DEFAULT_TYPICAL_RUN_SECONDS
    max_download_bytes: int = limits.DEFAULT_MAX_DOWNLOAD_BYTES
    download_timeout: float = limits.DEFAULT_DOWNLOAD_TIMEOUT_SECONDS
    submits_per_10s: int = 20
    credits_per_image: float | None = None

    @property
    def headers(self) -> dict[str, str]:
        # identity: a compressed answer is decoded by ``limits.BoundedBody`` within its cap, but need not be.
        return {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json",
                "Accept-Encoding": "identity"}

    @cached_property
    def redactor(self) -> Redactor:
        """Takes this connection's key out of every text a server sends back."""
        return Redactor.of([self.api_key])

    @property
    def direct(self) -> bool:
        """Whether kie is reached over plain http (a loopback emulator): then never through an environment proxy."""
        return self.base_url.startswith("http://") or self.upload_base_url.startswith("http://")

    def budget_key(self) -> str:
        """Return a non-reversible name for the key, to share one poll budget per key without holding the key."""
        import hashlib

        return hashlib.sha256(f"{self.base_url}\0{self.api_key}".encode()).hexdigest()[:16]


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# The only base URLs accepted: scheme, a DNS name or an IP literal, an optional port, an optional plain path. Every
# URL parser (urllib's, urllib3's under requests, httpx's) reads the same host from such a URL; userinfo, backslashes,
# percent-escapes, whitespace, queries and fragments, where parsers disagree, never get this far.
_BASE_URL = re.compile(
    rf"(?P<scheme>https?)://(?P<host>{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{{1,5}}))?"
    r"(?P<path>(?:/[A-Za-z0-9._~-]+)*)/?",
    re.IGNORECASE,
)


def _masked(raw: Any) -> str:
    """Describe a rejected URL without what may be a credential in it (``user:password@``)."""
    text = str(raw)
    if "@" in text:
        text = "***@" + text.rpartition("@")[2]
    return short(text)


def parse_base_url(field_name: str, raw: str | None, default: str, port: int | None = None) -> str:
    """Read a base URL once, strictly, and decide the https/loopback rule on that reading; raise naming the field.

    Returns ``scheme://host[:port][/path]`` (lowercase scheme and host, no trailing slash).
    """
    text = (raw or "").strip() or default
    if "://" not in text:
        text = "https://" + text
    if has_space_or_control(text):
        raise invalid(field_name, f"must be a base URL such as {default}, without spaces or control characters; "
                                   f"got {_masked(raw)}")
    if "@" in text.partition("://")[2].partition("/")[0] or "\\" in text:
        raise invalid(field_name, f"must not carry a user name or password (the key goes in the connection's "
                                   f"password) nor backslashes; got {_masked(raw)}")
    found = _BASE_URL.fullmatch(text)
    if found is None:
        raise invalid(field_name, f"must be a base URL such as {default} (scheme, host, optional port and plain "
                                   f"path; no query, fragment or escapes); got {_masked(raw)}")
    scheme, host = found["scheme"].lower(), found["host"].lower()
    path = found["path"] or ""
    if any(segment in (".", "..") for segment in path.split("/")):
        raise invalid(field_name, f"must not contain '.' or '..' path segments; got {_masked(raw)}")
    if found["port"] is not None:
        number = int(found["port"])
    elif port:
        number = int(port)
    else:
        number = None
    if number is not None and not 0 < number < 65536:
        raise invalid(field_name, f"port must be 1 to 65535, got {number}")
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise invalid(field_name, f"has a malformed IPv6 address: {_masked(raw)}") from None
    if scheme == "http" and not is_loopback_host(host):
        # Bearer keys travel in a header: over plain http anyone on the path could read them.
        raise invalid(field_name, f"plain http is only allowed to a loopback host (the emulator); use https for "
                                   f"{host}")
    netloc = host if number is None else f"{host}:{number}"
    return f"{scheme}://{netloc}{path.rstrip('/')}"


def _extra_number(extra: Mapping[str, Any], key: str, default: float, maximum: float, unit: str) -> float:
    """Read an optional positive number from the connection's extra, at most ``maximum``; raise naming the field.

    The connection form stores an optional field left empty as null (or ""): that means the default.
    """
    raw = extra.get(key)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise invalid(f"extra.{key}", f"must be a number, got {short(raw)}") from None
    if not 0 < value <= maximum:
        raise invalid(f"extra.{key}", f"must be above 0 and at most {maximum:g} {unit}, got {value:g}")
    return value


def settings_from_connection(
    *,
    conn_id: str,
    host: str | None,
    password: str | None,
    extra: Mapping[str, Any] | None,
    port: int | None = None,
) -> ConnectionSettings:
    """Read ``ConnectionSettings`` from a connection's fields; raise naming the field that is wrong."""
    extra = dict(extra or {})
    api_key = check_api_key(conn_id, password)
    base_url = parse_base_url("host", host, DEFAULT_BASE_URL, port)
    upload = parse_base_url("extra.upload_base_url", extra.get("upload_base_url"), DEFAULT_UPLOAD_BASE_URL)
    # kie allows 10 status queries/s, but requests paced at exactly 10/s arrive unevenly and draw 429s.
    rate = _extra_number(extra, "polls_per_second", DEFAULT_POLLS_PER_SECOND, MAX_POLLS_PER_SECOND,
                         "(kie allows 10 per second)")
    timeout = _extra_number(extra, "timeout", DEFAULT_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS, "seconds")
    typical_run = _extra_number(extra, "typical_run_seconds", DEFAULT_TYPICAL_RUN_SECONDS, MAX_TYPICAL_RUN_SECONDS,
                                "seconds")
    max_download = _extra_number(extra, "max_download_bytes", limits.DEFAULT_MAX_DOWNLOAD_BYTES,
                                 limits.MAX_MAX_DOWNLOAD_BYTES, "bytes")
    download_timeout = _extra_number(extra, "download_timeout", limits.DEFAULT_DOWNLOAD_TIMEOUT_SECONDS,
                                     limits.MAX_DOWNLOAD_TIMEOUT_SECONDS, "seconds")
    # kie allows 20; more only makes sense for a stand-in without kie's limit (the emulator with --no-rate-limits).
    submits = _extra_number(extra, "submits_per_10s", 20, 10_000, "")
    if submits != int(submits):
        raise invalid("extra.submits_per_10s", f"must be a whole number, got {submits:g}")
    # Optional: the price of one image, for the batch's "enough credits?" check before its first submit.
    price = None
    if extra.get("credits_per_image") not in (None, ""):
        price = _extra_number(extra, "credits_per_image", 0.0, 1_000_000, "credits")
    return ConnectionSettings(base_url=base_url, api_key=api_key, upload_base_url=upload, polls_per_second=rate,
                              timeout=timeout, typical_run_seconds=typical_run, max_download_bytes=int(max_download),
                              download_timeout=download_timeout, submits_per_10s=int(submits),
                              credits_per_image=price)


def check_api_key(conn_id: str, password: str | None) -> str:
    """Return the key from a connection's password, without surrounding whitespace (a paste accident).

    A key with whitespace, control or non-ASCII characters inside is refused before any request: it cannot travel in
    an HTTP header, and the message says where the bad character is without repeating the key.
    """
    key = (password or "").strip()
    if not key:
        raise exc.SeedreamAuthError(f"connection {conn_id!r} has no API key: put the kie.ai key in its password")
    for position, ch in enumerate(key, start=1):
        if not 0x21 <= ord(ch) <= 0x7E:
            what = "a space" if ch.isspace() else "a control character" if ord(ch) < 0x20 or ord(ch) == 0x7F \
                else "a non-ASCII character"
            raise invalid("password", f"the API key of connection {conn_id!r} has {what} at position {position} "
                                       f"of {len(key)}; kie.ai keys are printable ASCII: paste the key again")
    return key


# --------------------------------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------------------------
# Retries
# --------------------------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------------------------
# Polling
# --------------------------------------------------------------------------------------------------------------------


# The poll schedule lives in ``schedule`` (pure as well); re-exported so callers have one place to import from.
poll_delay = schedule.poll_delay
likely_done_at = schedule.likely_done_at


EventStatus = Literal["success", "failed", "timeout", "error"]
EVENT_SUCCESS: EventStatus = "success"
EVENT_FAILED: EventStatus = "failed"
EVENT_TIMEOUT: EventStatus = "timeout"
EVENT_ERROR: EventStatus = "error"
EVENT_STATUSES = frozenset({EVENT_SUCCESS, EVENT_FAILED, EVENT_TIMEOUT, EVENT_ERROR})


class TaskEvent(TypedDict):
    """The one shape every wait ends with, whether it ran in the triggerer, in poke mode or in the hook."""

    status: EventStatus
    task_id: str
    message: str
    task: dict[str, Any] | None
    error_type: str | None


def make_event(
    status: EventStatus, task_id: str, message: str, task: SeedreamTask | None = None, error: BaseException | None = None
) -> TaskEvent:
    return TaskEvent(
        status=status,
        task_id=task_id,
        message=message,
        task=task.to_dict() if task else None,
        error_type=type(error).__name__ if error is not None else None,
    )


def resolve_event(event: Any, expected_task_id: str | None = None) -> SeedreamTask:
    """Return the finished task an event reports, or raise the typed error it stands for.

    Events cross the triggerer/worker boundary, so they are checked, not trusted: a missing or unknown event fails.
    """
    if not isinstance(event, dict) or event.get("status") not in EVENT_STATUSES or not event.get("task_id"):
        raise exc.SeedreamResponseError(f"invalid trigger event: {short(event, 200)}")
    task_id = event["task_id"]
    if expected_task_id is not None and task_id != expected_task_id:
        raise exc.SeedreamResponseError(f"trigger event is for task {task_id}, expected {expected_task_id}")
    status = event["status"]
    message = event.get("message") or ""
    try:
        task = SeedreamTask.from_dict(event["task"]) if isinstance(event.get("task"), dict) else None
    except (TypeError, ValueError) as malformed:
        raise exc.SeedreamResponseError(f"trigger event for task {task_id} carries a malformed task: "
                                        f"{malformed}") from None
    if task is not None and (task.state not in KNOWN_STATES or not all(is_result_url(u) for u in task.result_urls)):
        raise exc.SeedreamResponseError(f"trigger event for task {task_id} carries a malformed task: "
                                        f"{short(event['task'], 200)}")
    if status == EVENT_SUCCESS and task is not None and task.succeeded:
        return task
    if status == EVENT_FAILED and task is not None:
        raise exc.SeedreamTaskFailedError(task)
    if status == EVENT_TIMEOUT:
        raise exc.SeedreamTimeoutError(message or f"timed out waiting for Seedream task {task_id}", task_id=task_id)
    message = message or f"waiting for Seedream task {task_id} failed"
    error_cls = getattr(exc, event.get("error_type") or "", None)
    error: exc.SeedreamError = exc.SeedreamError(message)
    if isinstance(error_cls, type) and issubclass(error_cls, exc.SeedreamError):
        try:
            error = error_cls(message)
        except Exception:  # a class whose constructor needs more than a message (failed task, timeout, transport)
            pass
    raise error


@dataclass(frozen=True)
class WaitPolicy:
    """How a wait behaves; plain data so the trigger can serialize it."""

    poll_interval: float = 5.0
    deadline: float = math.inf  # absolute, seconds since the epoch: survives a move to another triggerer
    not_found_grace: float = DEFAULT_NOT_FOUND_GRACE
    max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS


@dataclass(frozen=True)
class Step:
    """What to do after one status query: stop with ``event``, or query again after ``delay`` seconds.

    ``note`` is a line worth logging (a state change, a tolerated error), or ``None``.
    """

    event: TaskEvent | None
    delay: float = 0.0
    note: str | None = None


@dataclass
class Waiter:
    """The wait for one task, as a state machine fed with each query's outcome.

    The hook's blocking wait, the sensor's pokes and the trigger all drive this same object, so a rule about
    what ends a wait (deadline, tolerated errors, the not-yet-visible grace) is written once.
    """

    task_id: str
    policy: WaitPolicy
    started_at: float
    rng: Callable[[], float] = random.random
    last_state: str | None = None  # None until kie has answered with the task once
    last_running_at: float | None = None  # when kie last answered that the task was still running
    consecutive_errors: int = 0

    def _delay(self, now: float) -> float:
        return max(0.0, min(poll_delay(now - self.started_at, self.policy.poll_interval, self.rng),
                            self.policy.deadline - now))

    def _timeout(self, now: float) -> Step:
        waited = now - self.started_at
        return Step(make_event(
            EVENT_TIMEOUT, self.task_id,
            f"Seedream task {self.task_id} did not finish before the deadline (waited {waited:.0f} s, last state "
            f"{self.last_state or 'unknown'}); it may still be running on kie.ai",
        ))

    def observe(self, outcome: SeedreamTask | BaseException, now: float) -> Step:
        """Take one query's result (a task or the error it raised) and decide the next step."""
        waited = now - self.started_at
        if isinstance(outcome, SeedreamTask):
            self.consecutive_errors = 0
            note = None
            if outcome.state != self.last_state:
                note = f"Seedream task {self.task_id}: {self.last_state or 'submitted'} -> {outcome.state} " \
                       f"after {waited:.1f} s"
                self.last_state = outcome.state
            if outcome.state == STATE_SUCCESS:
                return Step(make_event(EVENT_SUCCESS, self.task_id, f"Seedream task {self.task_id} succeeded", outcome),
                            note=note)
            if outcome.state == STATE_FAIL:
                return Step(make_event(EVENT_FAILED, self.task_id,
                                       f"Seedream task {self.task_id} failed: failCode={outcome.fail_code or '-'} "
                                       f"failMsg={outcome.fail_msg or '-'}", outcome), note=note)
            self.last_running_at = now
            if now >= self.policy.deadline:
                return self._timeout(now)
            return Step(None, self._delay(now), note)

        error = outcome
        seen = self.last_state is not None
        if isinstance(error, exc.SeedreamNotFoundError) and not seen and waited < self.policy.not_found_grace:
            if now >= self.policy.deadline:
                return self._timeout(now)
            return Step(None, self._delay(now), f"Seedream task {self.task_id} is not visible yet ({error}); "
                                                f"waiting up to {self.policy.not_found_grace:.0f} s for it")
        if is_transient(error):
            self.consecutive_errors += 1
            if self.consecutive_errors <= self.policy.max_consecutive_errors:
                if now >= self.policy.deadline:
                    return self._timeout(now)
                delay = max(self._delay(now), min(retry_after_of(error) or 0.0, max(0.0, self.policy.deadline - now)))
                return Step(None, delay, f"transient error {self.consecutive_errors}/"
                                         f"{self.policy.max_consecutive_errors} while waiting for Seedream task "
                                         f"{self.task_id}: {error}; trying again in {delay:.1f} s")
            message = f"gave up on Seedream task {self.task_id} after {self.consecutive_errors} consecutive " \
                      f"transient errors; last: {error}"
        else:
            message = f"waiting for Seedream task {self.task_id} failed: {error}"
        return Step(make_event(EVENT_ERROR, self.task_id, message, error=error))


def describe_urls(urls: Iterable[str]) -> str:
    return ", ".join(urls)
