"""The API key stays where it belongs: in the Authorization header of requests to kie (or the loopback emulator).

Checked at the socket level, not by mocking our code: a guard wraps ``socket.getaddrinfo`` and ``socket.connect``
for the whole process and records every destination, refusing the ones a test forbids. Then the key is looked for
in everything the provider hands to Airflow: trigger serialization, rendered fields, XCom, task state, events,
exception messages and logs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream.hooks.seedream import SeedreamHook
from airflow_provider_seedream.operators.seedream import STATE_KEY, SeedreamEditOperator
from airflow_provider_seedream.sensors.seedream import SeedreamTaskSensor
from airflow_provider_seedream.triggers.seedream import SeedreamTaskTrigger
from airflow_provider_seedream.version_compat import TaskDeferred
from support import DictStateStore, RecordingTI, RunningTI, run_trigger, run_trigger_in_triggerer, use_connection

URL = "https://example.com/photo.png"
# A name that is not loopback; the guard resolves it to a local capture server so we can see what would be sent.
LEAK_HOST = "seedream-leak-check.invalid"


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class SocketGuard:
    """Record every name lookup and connection the process makes; refuse non-loopback ones (except LEAK_HOST)."""

    def __init__(self, monkeypatch, capture_port: int | None = None) -> None:
        self.lookups: list[str] = []
        self.connects: list[tuple[str, int]] = []
        self.capture_port = capture_port
        real_getaddrinfo = socket.getaddrinfo
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        guard = self

        def getaddrinfo(host, port, *args, **kwargs):
            name = host.decode() if isinstance(host, bytes) else str(host)
            guard.lookups.append(name)
            if name == LEAK_HOST and guard.capture_port:
                return real_getaddrinfo("127.0.0.1", guard.capture_port, *args, **kwargs)
            if not _is_loopback(name):
                raise socket.gaierror(socket.EAI_NONAME, f"blocked by the test's socket guard: {name}")
            return real_getaddrinfo(host, port, *args, **kwargs)

        def check(address) -> None:
            if isinstance(address, tuple):
                guard.connects.append((str(address[0]), int(address[1])))
                if not _is_loopback(str(address[0])):
                    raise ConnectionRefusedError(f"blocked by the test's socket guard: {address}")

        def connect(sock, address):
            check(address)
            return real_connect(sock, address)

        def connect_ex(sock, address):
            check(address)
            return real_connect_ex(sock, address)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)

    def foreign(self) -> list[str]:
        return [name for name in self.lookups if not _is_loopback(name)] + \
               [host for host, _ in self.connects if not _is_loopback(host)]


@pytest.fixture
def guard(monkeypatch) -> SocketGuard:
    return SocketGuard(monkeypatch)


def chain_text(error: BaseException | None) -> str:
    """str and repr of an exception and everything chained to it."""
    parts = []
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        parts += [str(error), repr(error), repr(getattr(error, "args", ()))]
        error = error.__cause__ or error.__context__
    return "\n".join(parts)


# ------------------------------------------------------------------------------------- no key over plain http
PLAIN_HTTP_HOSTS = [
    "http://example.com",
    "http://api.kie.ai",
    "HTTP://API.KIE.AI",
    "http://10.0.0.5:8089",
    "http://192.168.1.20",
    "http://0.0.0.0:8089",
    "http://localhost.example.com",
    "http://127.0.0.1.nip.io:8089",
    "http://[fe80::1]:8089",
    "http://[::ffff:10.0.0.1]",
]


@pytest.mark.parametrize("host", PLAIN_HTTP_HOSTS)
def test_the_hook_refuses_plain_http_to_a_foreign_host_before_any_socket(monkeypatch, guard, api_key, logs, host):
    use_connection(monkeypatch, api_key, host)
    calls = {
        "credit": lambda h: h.get_credits(),
        "createTask": lambda h: h.create_edit_task("make it blue", [URL]),
        "recordInfo": lambda h: h.get_task("abc123"),
        "wait": lambda h: h.wait_for_task("abc123", poll_interval=0.1, timeout=1),
        "download-url": lambda h: h.get_download_url("https://tempfile.aiquickdraw.com/r/0.png"),
    }
    for name, call in calls.items():
        with pytest.raises(exc.SeedreamValidationError, match="host: plain http is only allowed to a loopback") as e:
            call(SeedreamHook())
        assert api_key not in chain_text(e.value), name
    ok, message = SeedreamHook().test_connection()
    assert not ok and "plain http" in message and api_key not in message
    assert guard.lookups == [] and guard.connects == []
    assert api_key not in logs.text()


@pytest.mark.parametrize("host", ["http://example.com", "http://10.0.0.5:8089"])
def test_the_trigger_and_the_operator_refuse_it_too(monkeypatch, guard, api_key, logs, host):
    use_connection(monkeypatch, api_key, host)
    event = run_trigger(SeedreamTaskTrigger("abc123", poll_interval=0.1, deadline=time.time() + 5))
    assert event["status"] == "error" and "plain http is only allowed" in event["message"]
    assert api_key not in json.dumps(event)
    op = SeedreamEditOperator(task_id="edit", prompt="make it blue", image_urls=[URL], wait_for_completion=True)
    with pytest.raises(exc.SeedreamValidationError, match="^host: "):
        op.execute({"ti": RecordingTI()})
    assert guard.lookups == [] and guard.connects == []
    assert api_key not in logs.text()


def test_a_plain_http_upload_host_is_refused_as_well(monkeypatch, guard, api_key):
    use_connection(monkeypatch, api_key, "https://api.kie.ai", upload_base_url="http://uploads.example.com")
    with pytest.raises(exc.SeedreamValidationError, match="^extra.upload_base_url: plain http"):
        SeedreamHook().get_credits()
    assert guard.lookups == [] and guard.connects == []


class _Capture(BaseHTTPRequestHandler):
    """Answers anything with 200 and keeps the raw request (line, headers, body) it got."""

    received: list[bytes] = []

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        type(self).received.append(self.requestline.encode() + b"\r\n" + bytes(self.headers) + body)
        payload = b'{"code": 200, "msg": "success", "data": 1.5}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _serve

    def log_message(self, *args) -> None:
        pass


def _redirector(status: int, target_port: int) -> type[BaseHTTPRequestHandler]:
    class Redirect(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            self.send_response(status)
            self.send_header("Location", f"http://{LEAK_HOST}:{target_port}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _serve

        def log_message(self, *args) -> None:
            pass

    return Redirect


@pytest.fixture
def servers():
    started = []

    def start(handler) -> int:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server.server_address[1]

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_a_foreign_plain_http_host_does_not_carry_the_key(monkeypatch, servers, api_key, status):
    """The loopback base URL answers with a redirect to a foreign http host: what reaches that host has no key."""
    _Capture.received = []
    capture_port = servers(_Capture)
    guard = SocketGuard(monkeypatch, capture_port=capture_port)
    use_connection(monkeypatch, api_key, f"http://127.0.0.1:{servers(_redirector(status, capture_port))}")
    hook = SeedreamHook(max_retries=0)
    for call in (hook.get_credits, lambda: hook.create_edit_task("make it blue", [URL])):
        try:
            call()
        except exc.SeedreamError as error:
            assert api_key not in chain_text(error)
    sent_abroad = b"".join(_Capture.received)
    assert api_key.encode() not in sent_abroad, "the key followed a redirect to a plain-http foreign host"
    assert b"Bearer" not in sent_abroad
    # The async client does not follow redirects at all.
    _Capture.received = []
    lookups_before = len(guard.lookups)

    async def poll() -> None:
        await hook.aget_task("abc123")

    with pytest.raises(exc.SeedreamError) as raised:
        asyncio.run(poll())
    assert api_key not in chain_text(raised.value)
    assert _Capture.received == [] and LEAK_HOST not in guard.lookups[lookups_before:]


def test_the_guard_sees_what_it_must(monkeypatch, api_key):
    """Control: the same guard does see a plain http request to a foreign name, so the tests above are not vacuous."""
    guard = SocketGuard(monkeypatch)
    import requests

    with pytest.raises(requests.ConnectionError):
        requests.get("http://seedream-control.example.com/", timeout=2)
    assert "seedream-control.example.com" in guard.foreign()


# ------------------------------------------------------------------------------ nowhere Airflow keeps things
def test_the_key_is_in_no_trigger_rendered_field_xcom_state_or_event(emulator, api_key, logs, monkeypatch):
    key = api_key
    url = emulator.sample_url()

    # Edit with a deferrable wait: what Airflow would store for the deferral, the task state and the XComs.
    op = SeedreamEditOperator(task_id="edit", prompt="{{ params.p }}", image_urls=["{{ params.u }}"],
                              wait_for_completion=True, deferrable=True, poll_interval=0.1, timeout=30)
    store, ti = DictStateStore(), RecordingTI()
    context = {"ti": ti, "params": {"p": "make it blue", "u": url}, "task_state_store": store}
    op.render_template_fields(context)
    rendered = {name: getattr(op, name) for name in op.template_fields}
    assert key not in json.dumps(rendered, default=str)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    trigger = deferred.value.trigger
    classpath, kwargs = trigger.serialize()
    assert set(kwargs) == {"seedream_task_id", "seedream_conn_id", "poll_interval", "deadline", "started_at",
                           "max_consecutive_errors", "not_found_grace", "min_event_delay", "end_from_trigger",
                           "returns"}
    assert key not in json.dumps(kwargs) and key not in repr(trigger) and key not in str(deferred.value.kwargs)
    try:  # Airflow 3.2+ serializes trigger kwargs with airflow.sdk.serde
        from airflow.sdk.serde import serialize
    except ImportError:
        serialize = None
    if serialize is not None:
        assert key not in json.dumps(serialize(kwargs), default=str)
    event, comms = run_trigger_in_triggerer(trigger, monkeypatch, RunningTI("edit"))  # ends the task there
    assert comms.xcoms and key not in json.dumps(comms.xcoms) and key not in repr(event)
    op.execute_complete(context, event.payload)  # what dag.test() does with it: resume, read the task again
    assert key not in json.dumps(ti.xcoms) and key not in json.dumps(store.data, default=str)
    assert set(store.data) == {STATE_KEY}

    # The sensor, poke mode and deferred.
    task_id = ti.xcoms["seedream_task_id"]
    sensor = SeedreamTaskSensor(task_id="wait", seedream_task_id="{{ ti_id }}", poke_interval=0.1, timeout=30)
    sensor_ti = RecordingTI()
    sensor.render_template_fields({"ti": sensor_ti, "ti_id": task_id})
    assert sensor.execute({"ti": sensor_ti})  # already finished: no deferral
    assert key not in json.dumps(sensor_ti.xcoms)
    assert key not in logs.text()


@pytest.mark.parametrize(
    "setup, call, error",
    [
        pytest.param(lambda emu: emu.configure(api_keys=["another-key"]), lambda h, u: h.get_credits(),
                     exc.SeedreamAuthError, id="wrong-key-401"),
        pytest.param(lambda emu: emu.faults("createTask", {"kind": "accept_then_reset"}),
                     lambda h, u: h.create_edit_task("p", [u]), exc.SeedreamSubmitUncertainError,
                     id="submit-uncertain"),
        pytest.param(lambda emu: emu.faults("recordInfo", *[{"kind": "http", "status": 502}] * 5),
                     lambda h, u: h.get_task("abc123"), exc.SeedreamServerError, id="5xx-after-retries"),
        pytest.param(lambda emu: None,
                     lambda h, u: h.wait_for_task(h.create_edit_task("[emulator: outcome=fail, seconds=0.2]", [u]),
                                                  poll_interval=0.1, timeout=30),
                     exc.SeedreamTaskFailedError, id="task-failed"),
        pytest.param(lambda emu: None,
                     lambda h, u: h.wait_for_task(h.create_edit_task("[emulator: outcome=never]", [u]),
                                                  poll_interval=0.1, timeout=0.5),
                     exc.SeedreamTimeoutError, id="timeout"),
        pytest.param(lambda emu: emu.faults("recordInfo", {"kind": "not_json"}),
                     lambda h, u: h.get_task("abc123"), exc.SeedreamResponseError, id="not-json"),
    ],
)
def test_error_messages_never_carry_the_key(emulator, api_key, logs, setup, call, error):
    url = emulator.sample_url()
    setup(emulator)
    hook = SeedreamHook(max_retries=4, retry_base=0.01)
    with pytest.raises(error) as raised:
        call(hook, url)
    assert api_key not in chain_text(raised.value)
    assert api_key not in repr(hook.settings) and api_key not in str(hook.settings)
    assert api_key not in logs.text()


def test_connection_refused_messages_never_carry_the_key(monkeypatch, api_key, logs):
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    use_connection(monkeypatch, api_key, f"http://127.0.0.1:{port}")
    hook = SeedreamHook(max_retries=1, retry_base=0.01, submit_timeout=0.2)
    for call in (hook.get_credits, lambda: hook.create_edit_task("p", [URL]), lambda: hook.get_task("abc")):
        with pytest.raises(exc.SeedreamTransportError) as raised:
            call()
        assert api_key not in chain_text(raised.value)
    assert api_key not in logs.text()


def test_a_redirect_never_resends_a_create_task_elsewhere(monkeypatch, servers, api_key):
    _Capture.received = []
    capture_port = servers(_Capture)
    SocketGuard(monkeypatch, capture_port=capture_port)
    use_connection(monkeypatch, api_key, f"http://127.0.0.1:{servers(_redirector(307, capture_port))}")
    with pytest.raises(exc.SeedreamError):
        SeedreamHook(max_retries=0).create_edit_task("make it blue", [URL])
    assert _Capture.received == [], "the createTask followed the redirect to another host"
