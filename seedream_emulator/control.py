"""The emulator's own control API under ``/_emulator/`` (no API key; loopback clients only).

These routes are not part of kie: tests and benchmarks use them to read counters, queue faults, change settings
at run time and reset between tests. They answer plain JSON (``{"ok": true, ...}``), never a kie envelope, and
errors as real HTTP 400/404/405, so they cannot be mistaken for emulated API behaviour.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from seedream_emulator.callbacks import is_loopback_host
from seedream_emulator.state import EmulatorState
from seedream_emulator.wire import Reply, Request, json_reply

ControlHandler = Callable[[EmulatorState, Any], Reply]


def handle_control(state: EmulatorState, request: Request) -> Reply:
    """Serve one ``/_emulator/...`` request."""
    if not is_loopback_host(request.client_host):
        return json_reply({"ok": False, "error": "control API is loopback only"}, status=403)
    routes = _ROUTES.get(request.path)
    if routes is None:
        return json_reply(
            {"ok": False, "error": f"unknown control route {request.path}", "routes": sorted(_ROUTES)}, status=404
        )
    method = "GET" if request.method == "HEAD" else request.method
    handler = routes.get(method)
    if handler is None:
        return json_reply(
            {"ok": False, "error": "method not allowed"}, status=405, headers={"Allow": ", ".join(sorted(routes))}
        )
    payload: Any = None
    if method == "POST" and request.body.strip():
        try:
            payload = json.loads(request.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _bad(f"body is not JSON: {exc}")
    try:
        return handler(state, payload)
    except (TypeError, ValueError) as exc:
        return _bad(str(exc))


def _bad(message: str) -> Reply:
    return json_reply({"ok": False, "error": message}, status=400)


def _health(state: EmulatorState, _: Any) -> Reply:
    return json_reply({"ok": True, "url": state.base_url})


def _stats(state: EmulatorState, _: Any) -> Reply:
    return json_reply(state.stats())


def _reset(state: EmulatorState, _: Any) -> Reply:
    state.reset()
    return json_reply({"ok": True})


def _get_config(state: EmulatorState, _: Any) -> Reply:
    return json_reply({"ok": True, "config": state.config.public_dict()})


def _set_config(state: EmulatorState, payload: Any) -> Reply:
    if not isinstance(payload, dict):
        return _bad('body must be an object of config fields, e.g. {"task_seconds": 1}')
    config = state.update_config(payload)
    return json_reply({"ok": True, "config": config.public_dict()})


def _add_faults(state: EmulatorState, payload: Any) -> Reply:
    if not isinstance(payload, dict) or not isinstance(payload.get("faults"), list):
        return _bad('body must be {"endpoint": "<name>", "faults": [{"kind": ...}, ...]}')
    pending = state.add_faults(str(payload.get("endpoint")), payload["faults"])
    return json_reply({"ok": True, "pending": pending})


def _list_faults(state: EmulatorState, _: Any) -> Reply:
    return json_reply({"ok": True, "pending": state.pending_faults()})


def _set_credits(state: EmulatorState, payload: Any) -> Reply:
    balance = payload.get("balance") if isinstance(payload, dict) else None
    if isinstance(balance, bool) or not isinstance(balance, (int, float)):
        return _bad('body must be {"balance": <number>}')
    state.set_balance(float(balance))
    return json_reply({"ok": True, "balance": float(balance)})


_ROUTES: dict[str, dict[str, ControlHandler]] = {
    "/_emulator/health": {"GET": _health},
    "/_emulator/stats": {"GET": _stats},
    "/_emulator/reset": {"POST": _reset},
    "/_emulator/config": {"GET": _get_config, "POST": _set_config},
    "/_emulator/faults": {"GET": _list_faults, "POST": _add_faults},
    "/_emulator/credits": {"POST": _set_credits},
}
