"""Delivery of kie's completion callbacks (best effort, loopback only).

kie POSTs the recordInfo ``data`` object to ``callBackUrl`` when a task ends (success or fail). The emulator only
sends to loopback hosts: it must never reach the network, and a test receiver always listens locally.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback_host(host: str | None) -> bool:
    """Tell whether ``host`` names this machine without a DNS lookup (names or loopback IP literals)."""
    if not host:
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """Tell whether an http(s) URL points to a loopback host."""
    try:
        return is_loopback_host(urlsplit(url).hostname)
    except ValueError:
        return False


@dataclass(frozen=True)
class CallbackJob:
    """One callback to deliver: where, what, and for which task (``generation`` ties it to a state reset)."""

    url: str
    payload: dict[str, Any]
    task_id: str
    generation: int


def signature_headers(task_id: str, hmac_key: str, now: float | None = None) -> dict[str, str]:
    """Return kie's webhook signature headers: Base64(HMAC-SHA256(key, taskId + "." + timestamp))."""
    timestamp = str(int(time.time() if now is None else now))
    digest = hmac.new(hmac_key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return {"X-Webhook-Timestamp": timestamp, "X-Webhook-Signature": base64.b64encode(digest).decode()}


def post_callback(job: CallbackJob, timeout: float, hmac_key: str | None) -> dict[str, Any]:
    """POST the callback body and return a record of what happened (for ``/_emulator/stats``)."""
    record: dict[str, Any] = {"taskId": job.task_id, "url": job.url, "code": job.payload["code"], "sent": False}
    if not is_loopback_url(job.url):
        record["error"] = "not sent: callBackUrl is not a loopback host"
        return record
    headers = {"Content-Type": "application/json"}
    if hmac_key:
        headers.update(signature_headers(job.task_id, hmac_key))
    request = urllib.request.Request(job.url, data=json.dumps(job.payload).encode(), headers=headers, method="POST")
    record["sent"] = True
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # loopback only, checked above
            record["status"] = response.status
    except urllib.error.HTTPError as exc:
        record["status"] = exc.code
    except (OSError, ValueError) as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
    return record
