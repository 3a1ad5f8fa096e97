"""The connection: where kie is and how to reach it, read strictly from an Airflow connection.

Pure: ``settings_from_connection`` turns a connection's fields into ``ConnectionSettings`` (base URLs read by one strict
parser, the key checked without ever being quoted, the extras with their bounds), or raises naming the field.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream import limits
from airflow_provider_seedream.redaction import Redactor
from airflow_provider_seedream.request import has_space_or_control, invalid, short

DEFAULT_BASE_URL = "https://api.kie.ai"


DEFAULT_UPLOAD_BASE_URL = "https://kieai.redpandaai.co"


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
