"""Transient faults that tests queue per endpoint; each matching request consumes the next one.

Faults model the transport and the gateway in front of kie, so they apply before the API key check and the rate
limiter: a flaky load balancer answers 502 whether or not your key is good.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: Endpoint names used for counters, faults and stats.
ENDPOINTS: tuple[str, ...] = (
    "createTask",
    "recordInfo",
    "credit",
    "download-url",
    "upload",
    "results",
    "samples",
    "files",
)

#: Fault kinds and what they do:
#: ``http`` - a real HTTP error status (optional ``retry_after`` header), JSON body with the same code;
#: ``body`` - HTTP 200 with ``code`` in the body (429, 455, 500, 505, ...);
#: ``reset`` - close the socket with SO_LINGER 0, so the client sees a connection reset;
#: ``delay`` - sleep ``seconds`` (not scaled: it targets the client's real read timeout), then answer normally;
#: ``not_json`` - HTTP 200 with an HTML body; ``missing_data`` - ``{"code": 200, "msg": "success"}`` without data;
#: ``accept_then_reset`` - createTask only: create and charge the task, then reset instead of answering;
#: ``echo_key`` - HTTP 200 with ``code`` (default 500) in the body and a ``msg`` that repeats the request's
#: ``Authorization`` header, as a careless gateway or error page does: a client must never pass it on.
FAULT_KINDS: tuple[str, ...] = ("http", "body", "reset", "delay", "not_json", "missing_data", "accept_then_reset",
                                "echo_key")


def validate_fault(endpoint: str, fault: Any) -> dict[str, Any]:
    """Check one fault spec and return a normalized copy; raise ``ValueError`` saying what is wrong."""
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; one of {', '.join(ENDPOINTS)}")
    if not isinstance(fault, Mapping):
        raise TypeError(f"a fault must be an object, got {fault!r}")
    kind = fault.get("kind")
    if kind not in FAULT_KINDS:
        raise ValueError(f"fault kind {kind!r} is not one of {', '.join(FAULT_KINDS)}")
    spec = dict(fault)
    if kind == "http":
        spec["status"] = _int_in_range(fault, "status", 400, 599)
        if fault.get("retry_after") is not None:
            spec["retry_after"] = _non_negative(fault, "retry_after")
    elif kind == "body":
        spec["code"] = _int_in_range(fault, "code", 100, 999)
    elif kind == "echo_key":
        spec["code"] = _int_in_range({"code": 500, **fault}, "code", 100, 999)
    elif kind == "delay":
        spec["seconds"] = _non_negative(fault, "seconds")
    elif kind == "accept_then_reset" and endpoint != "createTask":
        raise ValueError("fault kind 'accept_then_reset' only applies to createTask")
    return spec


def _int_in_range(fault: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = fault.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"fault {fault.get('kind')!r} needs {key!r} as an integer in {low}..{high}, got {value!r}")
    return value


def _non_negative(fault: Mapping[str, Any], key: str) -> float:
    value = fault.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"fault {fault.get('kind')!r} needs {key!r} as a number >= 0, got {value!r}")
    return float(value)
