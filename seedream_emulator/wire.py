"""Transport-neutral request/reply values and kie's JSON envelope.

The handlers produce ``Reply`` values and never touch sockets, so the HTTP layer stays a thin adapter and the
envelope rules live in one place:

- kie answers most errors inside HTTP 200 with ``{"code": <int>, "msg": <str>, "data": ...}`` (newer official
  schemas: "the HTTP status is 200 even when the request fails").
- recordInfo uses ``msg`` like every other endpoint (live answers; kie's OpenAPI schema); the older Get Task
  Details prose writes ``message``, which ``EmulatorConfig.record_info_message_key`` can switch back on.
- The File Upload API adds ``"success": true|false`` (File Upload API per-method pages).
- Rejections by the gateway (rate limits, injected HTTP faults) use a real HTTP status and ``msg``
  (Getting Started page: "429 is returned").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

JSON_TYPE = "application/json"
_MISSING: Any = object()


@dataclass(frozen=True)
class Request:
    """What a handler needs from an HTTP request."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str] | Message
    body: bytes
    client_host: str

    def header(self, name: str, default: str = "") -> str:
        """Return a header value (case-insensitive when ``headers`` is an ``email.message.Message``)."""
        value = self.headers.get(name)
        return default if value is None else str(value)


@dataclass
class Reply:
    """What the HTTP layer should send: status, body, headers; or ``reset`` to drop the connection instead.

    ``code`` is the code to count in the stats: the body code of a kie envelope, else the HTTP status.
    """

    status: int = 200
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    code: int | None = None
    reset: bool = False

    @property
    def counted_code(self) -> int:
        return self.status if self.code is None else self.code


def json_reply(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None, code: int | None = None
) -> Reply:
    """Serialize ``payload`` as a JSON reply."""
    if code is None and isinstance(payload, dict) and isinstance(payload.get("code"), int):
        code = payload["code"]
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Reply(status=status, body=body, content_type=JSON_TYPE, headers=dict(headers or {}), code=code)


def envelope(
    endpoint: str,
    code: int,
    msg: str,
    data: Any = _MISSING,
    status: int = 200,
    headers: dict[str, str] | None = None,
    record_info_key: str = "msg",
) -> Reply:
    """Build kie's envelope for ``endpoint`` (``success`` for uploads; ``record_info_key`` for recordInfo)."""
    payload: dict[str, Any] = {}
    if endpoint == "upload":
        payload["success"] = code == 200
    payload["code"] = code
    payload[record_info_key if endpoint == "recordInfo" else "msg"] = msg
    if data is not _MISSING:
        payload["data"] = data
    return json_reply(payload, status=status, headers=headers, code=code)


def gateway_error(status: int, msg: str, headers: dict[str, str] | None = None) -> Reply:
    """A rejection with a real HTTP status, as the platform's gateway sends it (always ``msg``)."""
    return json_reply({"code": status, "msg": msg}, status=status, headers=headers, code=status)


def xml_error(status: int, code: str, message: str) -> Reply:
    """An object-storage style error (what a dead tempfile link answers), not a kie envelope."""
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>\n'
    ).encode()
    return Reply(status=status, body=body, content_type="application/xml", code=status)


#: Default messages for body codes (Seedream 4.5 edit doc, response ``code`` enum).
CODE_MESSAGES: dict[int, str] = {
    200: "success",
    400: "Bad request",
    401: "You do not have access permissions",
    402: "Credits insufficient",
    404: "Not found",
    422: "Validation error",
    429: "Rate limited: the request limit for this resource has been exceeded",
    433: "Sub-key usage over limit",
    455: "Service unavailable: the system is under maintenance",
    500: "Internal server error, please try again later",
    501: "Generation failed",
    505: "Feature disabled",
}
