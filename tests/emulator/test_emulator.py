"""The emulator honours its contract: kie's wire format and quirks, scenarios, faults, limits, files, control API.

Every test talks to a real server over loopback HTTP with ``requests`` / ``http.client`` / raw sockets, never
through the provider's client code, so these tests pin down the emulator on its own terms.
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import io
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image

from seedream_emulator import EmulatorConfig, EmulatorServer
from seedream_emulator.images import encode_png_rgb
from seedream_emulator.multipart import MultipartError, parse_multipart
from seedream_emulator.scenario import Scenario
from seedream_emulator.state import ImageSpec, Task, state_at

CREATE = "/api/v1/jobs/createTask"
RECORD = "/api/v1/jobs/recordInfo"
CREDIT = "/api/v1/chat/credit"
DOWNLOAD_URL = "/api/v1/common/download-url"
STREAM_UPLOAD = "/api/file-stream-upload"
BASE64_UPLOAD = "/api/file-base64-upload"
URL_UPLOAD = "/api/file-url-upload"
KEY = "test-key"
REPO_ROOT = Path(__file__).resolve().parents[2]

#: Fast settings shared by the module's server; each test starts from these (rate limits off unless tested).
#: ``null_window_seconds`` and ``record_info_message_key`` keep their defaults (no window, ``msg``), as users get them.
BASELINE = EmulatorConfig(task_seconds=0.3, rate_limits=False, callback_timeout=2.0)


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(BASELINE) as emu:
        yield emu


@pytest.fixture
def emu(server: EmulatorServer) -> EmulatorServer:
    server.state.update_config(dataclasses.asdict(BASELINE))
    server.state.reset()
    return server


@pytest.fixture
def api(emu: EmulatorServer) -> Iterator[Api]:
    with Api(emu.url) as client:
        yield client


class Api:
    """Tiny test-side client: raw HTTP calls plus a deadline-bounded poll (no fixed sleeps)."""

    def __init__(self, url: str, key: str | None = KEY) -> None:
        self.url = url
        self.session = requests.Session()
        if key is not None:
            self.session.headers["Authorization"] = f"Bearer {key}"

    def __enter__(self) -> Api:  # noqa: PYI034 - a final test helper, never subclassed
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    def _full(self, path: str) -> str:
        return path if path.startswith("http") else self.url + path

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET a path on the emulator, or an absolute URL it handed out."""
        return self.session.get(self._full(path), timeout=kwargs.pop("timeout", 10), **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(self._full(path), timeout=kwargs.pop("timeout", 10), **kwargs)

    def create(self, prompt: str = "Turn the sneaker red", **overrides: Any) -> requests.Response:
        return self.post(CREATE, json=task_body(self.url, prompt, **overrides))

    def create_id(self, prompt: str = "Turn the sneaker red", **overrides: Any) -> str:
        reply = self.create(prompt, **overrides).json()
        assert reply["code"] == 200, reply
        return str(reply["data"]["taskId"])

    def record(self, task_id: str) -> dict[str, Any]:
        return dict(self.get(RECORD, params={"taskId": task_id}).json())

    def wait_state(self, task_id: str, states: tuple[str, ...], timeout: float = 8.0) -> dict[str, Any]:
        """Poll recordInfo until the state is one of ``states``; return ``data``."""
        found: dict[str, Any] = {}

        def reached() -> bool:
            reply = self.record(task_id)
            found.update(reply.get("data") or {})
            return reply["code"] == 200 and reply["data"]["state"] in states

        wait_until(reached, timeout)
        return found


def task_body(url: str, prompt: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "seedream/4.5-edit",
        "input": {
            "prompt": prompt,
            "image_urls": [f"{url}/samples/sneaker-1x1.png"],
            "aspect_ratio": "1:1",
            "quality": "basic",
        },
    }
    callback = overrides.pop("callBackUrl", None)
    if callback is not None:
        body["callBackUrl"] = callback
    body["input"].update(overrides)
    return body


def wait_until(predicate: Callable[[], bool], timeout: float = 8.0, interval: float = 0.02) -> None:
    """Poll ``predicate`` until true or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


def stats(emu: EmulatorServer) -> dict[str, Any]:
    return dict(requests.get(f"{emu.url}/_emulator/stats", timeout=10).json())


def png_bytes(width: int = 8, height: int = 8) -> bytes:
    return encode_png_rgb(width, height, lambda y: bytes((y * 10) % 256 for _ in range(width * 3)))


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# --------------------------------------------------------------------------- pure state machine


def _task(
    duration: float = 10.0, end: float | None = 10.0, outcome: str = "success", polls: int | None = None, seen: int = 0
) -> Task:
    return Task(
        task_id="t",
        body={},
        param="{}",
        scenario=Scenario(outcome=outcome, polls=polls),
        outcome=outcome,
        fail_code="500",
        fail_msg="x",
        created=0.0,
        duration=duration,
        end=end,
        image=ImageSpec(1, 1, 1, "png"),
        credits=6.5,
        callback_url=None,
        polls=seen,
    )


@pytest.mark.parametrize(
    ("task", "now", "expected"),
    [
        (_task(), 0.0, "waiting"),
        (_task(), 1.49, "waiting"),
        (_task(), 1.5, "queuing"),
        (_task(), 2.99, "queuing"),
        (_task(), 3.0, "generating"),
        (_task(), 9.99, "generating"),
        (_task(), 10.0, "success"),
        (_task(outcome="fail"), 10.0, "fail"),
        (_task(outcome="never", end=None), 1e9, "generating"),
        (_task(outcome="unknown_state", end=None), 0.0, "paused"),
        (_task(end=None, polls=4, seen=0), 5.0, "waiting"),
        (_task(end=None, polls=4, seen=1), 5.0, "queuing"),
        (_task(end=None, polls=4, seen=2), 5.0, "generating"),
    ],
)
def test_state_follows_wall_clock_split_15_15_70(task: Task, now: float, expected: str) -> None:
    assert state_at(task, now) == expected


def test_multipart_parser_handles_quoting_and_binary() -> None:
    payload = b"\x00\r\n--not-the-boundary\r\n\xff"
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a \\"b\\".png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + payload + b"\r\n--XyZ\r\n"
        b"Content-Disposition: form-data; name=uploadPath\r\n\r\nimages/x\r\n--XyZ--\r\n"
    )
    parts = parse_multipart(body, 'multipart/form-data; boundary="XyZ"')
    assert parts["file"].data == payload
    assert parts["file"].filename == 'a "b".png'
    assert parts["uploadPath"].text == "images/x"
    with pytest.raises(MultipartError):
        parse_multipart(body[:-8], "multipart/form-data; boundary=XyZ")
    with pytest.raises(MultipartError):
        parse_multipart(body, "application/json")


# --------------------------------------------------------------------------- createTask + recordInfo


def test_task_lifecycle_and_record_shape(api: Api) -> None:
    prompt = "Turn the sneaker red [emulator: seconds=1.5]"
    reply = api.create(prompt, callBackUrl="http://127.0.0.1:9/hook")
    assert reply.status_code == 200
    created = reply.json()
    assert created["code"] == 200 and created["msg"] == "success"
    task_id = created["data"]["taskId"]
    assert len(task_id) == 32 and int(task_id, 16) >= 0

    # No null window by default: a task is known from its first query on, like the live API (published clients
    # query at once). Not done yet: failCode/failMsg/costTime/completeTime are null, as in live answers.
    fresh = api.get(RECORD, params={"taskId": task_id}).json()
    assert set(fresh) == {"code", "msg", "data"} and (fresh["code"], fresh["msg"]) == (200, "success")
    assert fresh["data"]["state"] in ("waiting", "queuing")
    assert fresh["data"]["failCode"] is None and fresh["data"]["failMsg"] is None
    assert fresh["data"]["costTime"] is None and fresh["data"]["completeTime"] is None
    assert fresh["data"]["resultJson"] == ""

    order = ["waiting", "queuing", "generating", "success"]
    seen: list[str] = [fresh["data"]["state"]]

    def finished() -> bool:
        reply = api.record(task_id)
        if reply["code"] == 200:
            seen.append(reply["data"]["state"])
            if reply["data"]["state"] != "success":
                assert reply["data"]["costTime"] is None and reply["data"]["failCode"] is None
        return seen[-1] == "success"

    wait_until(finished, timeout=6, interval=0.01)
    assert [order.index(s) for s in seen] == sorted(order.index(s) for s in seen), seen
    assert {"generating", "success"} <= set(seen)

    reply = api.get(RECORD, params={"taskId": task_id}).json()
    assert reply["code"] == 200 and reply["msg"] == "success" and "message" not in reply
    data = reply["data"]
    # Live answers carry no updateTime and no creditsConsumed.
    assert list(data) == [
        "taskId", "model", "state", "param", "resultJson", "failCode", "failMsg", "costTime", "completeTime",
        "createTime",
    ]
    assert data["model"] == "seedream/4.5-edit" and data["taskId"] == task_id
    # param: a compact JSON string of the request whose "input" is itself a JSON string (live answers).
    body = task_body(api.url, prompt, callBackUrl="http://127.0.0.1:9/hook")
    assert isinstance(data["param"], str) and data["param"].startswith('{"input":"{')
    param = json.loads(data["param"])
    assert list(param) == ["input", "model", "callBackUrl"]
    assert isinstance(param["input"], str) and json.loads(param["input"]) == body["input"]
    assert param["model"] == "seedream/4.5-edit" and param["callBackUrl"] == body["callBackUrl"]
    assert isinstance(data["resultJson"], str) and data["resultJson"].startswith('{"resultUrls":["')
    urls = json.loads(data["resultJson"])["resultUrls"]
    assert urls == [f"{api.url}/results/{task_id}/0.png"]
    assert data["failCode"] is None and data["failMsg"] is None
    assert data["createTime"] <= data["completeTime"]
    assert 1400 <= data["completeTime"] - data["createTime"] <= 1600
    # costTime in seconds (1.5 s task), not milliseconds.
    assert isinstance(data["costTime"], int) and data["costTime"] in (1, 2)


def test_record_info_errors(api: Api) -> None:
    assert api.get(RECORD).json() == {"code": 400, "msg": "taskId parameter is required", "data": None}
    assert api.get(RECORD, params={"taskId": ""}).json()["code"] == 400
    assert api.record("0" * 32) == {"code": 422, "msg": "recordInfo is null", "data": None}


def test_record_info_message_key_option_switches_to_message(api: Api, emu: EmulatorServer) -> None:
    task_id = api.create_id("x [emulator: seconds=0.1]")
    reply = requests.post(f"{emu.url}/_emulator/config", json={"record_info_message_key": "message"}, timeout=5)
    assert reply.status_code == 200 and reply.json()["config"]["record_info_message_key"] == "message"
    answer = api.wait_state(task_id, ("success",))
    assert answer["taskId"] == task_id
    done = api.get(RECORD, params={"taskId": task_id}).json()
    assert set(done) == {"code", "message", "data"} and done["message"] == "success"
    assert api.get(RECORD).json() == {"code": 400, "message": "taskId parameter is required", "data": None}
    assert api.record("0" * 32) == {"code": 422, "message": "recordInfo is null", "data": None}
    with Api(emu.url, key=None) as anonymous:
        assert anonymous.get(RECORD, params={"taskId": task_id}).json() == {
            "code": 401, "message": "You do not have access permissions"
        }
    emu.state.add_faults("recordInfo", [{"kind": "body", "code": 455}])
    assert set(api.get(RECORD, params={"taskId": task_id}).json()) == {"code", "message", "data"}
    # Only recordInfo changes: the other endpoints keep "msg".
    assert set(api.get(CREDIT).json()) == {"code", "msg", "data"}
    assert set(api.create().json()) == {"code", "msg", "data"}

    requests.post(f"{emu.url}/_emulator/config", json={"record_info_message_key": "msg"}, timeout=5)
    assert set(api.get(RECORD, params={"taskId": task_id}).json()) == {"code", "msg", "data"}
    bad = requests.post(f"{emu.url}/_emulator/config", json={"record_info_message_key": "text"}, timeout=5)
    assert bad.status_code == 400 and "record_info_message_key" in bad.json()["error"]
    assert emu.state.config.record_info_message_key == "msg"


def test_null_window_is_off_by_default_and_set_by_directive_or_config(api: Api, emu: EmulatorServer) -> None:
    assert EmulatorConfig().null_window_seconds == 0
    assert requests.get(f"{emu.url}/_emulator/config", timeout=5).json()["config"]["null_window_seconds"] == 0
    plain = api.create_id("plain [emulator: seconds=5]")
    assert api.record(plain)["code"] == 200

    started = time.monotonic()
    windowed = api.create_id("x [emulator: null_window=0.5, seconds=5]")
    assert api.record(windowed) == {"code": 422, "msg": "recordInfo is null", "data": None}
    wait_until(lambda: api.record(windowed)["code"] == 200, timeout=5)
    assert time.monotonic() - started >= 0.5
    assert api.record(windowed)["data"]["state"] in ("waiting", "queuing")

    # The config field gives every task a window (tests/conftest.py relies on this); a directive overrides it.
    requests.post(f"{emu.url}/_emulator/config", json={"null_window_seconds": 0.5}, timeout=5).raise_for_status()
    configured = api.create_id("plain again [emulator: seconds=5]")
    opted_out = api.create_id("x [emulator: null_window=0, seconds=5]")
    assert api.record(configured)["code"] == 422
    assert api.record(opted_out)["code"] == 200
    wait_until(lambda: api.record(configured)["code"] == 200, timeout=5)

    bad = api.create("x [emulator: null_window=soon]").json()
    assert bad["code"] == 422 and "null_window" in bad["msg"]


def _long_prompt(n: int) -> str:
    return "x" * n


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.update(model="seedream/4.0-edit"), "model"),
        (lambda b: b.pop("model"), "model"),
        (lambda b: b.update(callBackUrl="not a url"), "callBackUrl"),
        (lambda b: b.pop("input"), "input"),
        (lambda b: b.update(input="prompt"), "input"),
        (lambda b: b["input"].pop("prompt"), "input.prompt"),
        (lambda b: b["input"].update(prompt=42), "input.prompt"),
        (lambda b: b["input"].update(prompt=""), "input.prompt"),
        (lambda b: b["input"].update(prompt=_long_prompt(3001)), "input.prompt"),
        (lambda b: b["input"].pop("image_urls"), "input.image_urls"),
        (lambda b: b["input"].update(image_urls=[]), "input.image_urls"),
        (lambda b: b["input"].update(image_urls="http://x/a.png"), "input.image_urls"),
        (lambda b: b["input"].update(image_urls=["http://x/a.png"] * 15), "input.image_urls"),
        (lambda b: b["input"].update(image_urls=["ftp://x/a.png"]), "input.image_urls[0]"),
        (lambda b: b["input"].update(image_urls=["http://x/a.png", 7]), "input.image_urls[1]"),
        (lambda b: b["input"].update(aspect_ratio="5:4"), "input.aspect_ratio"),
        (lambda b: b["input"].pop("aspect_ratio"), "input.aspect_ratio"),
        (lambda b: b["input"].update(quality="ultra"), "input.quality"),
        (lambda b: b["input"].pop("quality"), "input.quality"),
        (lambda b: b["input"].update(nsfw_checker="yes"), "input.nsfw_checker"),
        (lambda b: b["input"].update(prompt="x [emulator: outcom=fail]"), "emulator directive"),
        (lambda b: b["input"].update(prompt="x [emulator: outcome=explode]"), "outcome"),
    ],
)
def test_create_task_validation_is_422_inside_http_200(
    api: Api, mutate: Callable[[dict[str, Any]], Any], field: str
) -> None:
    body = task_body(api.url, "ok")
    mutate(body)
    reply = api.post(CREATE, json=body)
    assert reply.status_code == 200
    payload = reply.json()
    assert payload["code"] == 422 and payload["data"] is None
    assert field in payload["msg"]


def test_create_task_limits_are_inclusive_and_non_json_is_rejected(api: Api, emu: EmulatorServer) -> None:
    ok = api.create(_long_prompt(3000), image_urls=[f"{api.url}/samples/mug-4x3.png"] * 14, nsfw_checker=True)
    assert ok.json()["code"] == 200
    reply = api.post(CREATE, data=b"{not json", headers={"Content-Type": "application/json"})
    assert reply.status_code == 200 and reply.json()["code"] == 422
    assert len(stats(emu)["created_task_ids"]) == 1


def test_auth_failures_are_401_in_body(emu: EmulatorServer) -> None:
    expected = {"code": 401, "msg": "You do not have access permissions"}
    with Api(emu.url, key=None) as anonymous:
        reply = anonymous.create()
        assert reply.status_code == 200 and reply.json() == expected
        assert anonymous.get(CREDIT).json() == expected
        assert anonymous.get(RECORD, params={"taskId": "x"}).json() == expected
        assert anonymous.get(CREDIT, headers={"Authorization": "Basic abc"}).json() == expected
        assert anonymous.get(CREDIT, headers={"Authorization": "Bearer "}).json() == expected
    emu.state.update_config({"api_keys": ["right-key"]})
    with Api(emu.url, key="wrong-key") as wrong, Api(emu.url, key="right-key") as right:
        assert wrong.get(CREDIT).json() == expected
        assert right.get(CREDIT).json()["code"] == 200
    snapshot = stats(emu)
    assert snapshot["auth_keys_seen_count"] == 2
    text = json.dumps(snapshot) + json.dumps(requests.get(f"{emu.url}/_emulator/config", timeout=5).json())
    assert "right-key" not in text and "wrong-key" not in text
    assert snapshot["created_task_ids"] == []


# --------------------------------------------------------------------------- credits


def test_credit_balance_keeps_its_fractions(api: Api, emu: EmulatorServer) -> None:
    # Live answers report fractional balances (72.62) despite the docs' "integer".
    requests.post(f"{emu.url}/_emulator/credits", json={"balance": 72.62}, timeout=5).raise_for_status()
    reply = api.get(CREDIT)
    assert json.loads(reply.text) == {"code": 200, "msg": "success", "data": 72.62}
    emu.state.update_config({"credits_per_task": 0.37})
    api.create_id()
    api.create_id()
    charged = api.get(CREDIT)
    assert '"data": 71.88' in charged.text and charged.json()["data"] == 71.88


def test_credits_are_fractional_charged_at_creation_and_refunded_on_failure(api: Api, emu: EmulatorServer) -> None:
    assert api.get(CREDIT).json() == {"code": 200, "msg": "success", "data": 1000.0}
    api.create_id()
    balance = api.get(CREDIT).json()["data"]
    assert balance == 993.5 and isinstance(balance, float)
    failed = api.create_id("x [emulator: outcome=fail, seconds=0.2]")
    assert api.get(CREDIT).json()["data"] == 987.0
    api.wait_state(failed, ("fail",))
    assert stats(emu)["tasks"][failed]["creditsConsumed"] == 0
    assert api.get(CREDIT).json()["data"] == 993.5

    requests.post(f"{emu.url}/_emulator/credits", json={"balance": 6.0}, timeout=5).raise_for_status()
    reply = api.create().json()
    assert reply["code"] == 402 and reply["msg"] == "Credits insufficient"
    assert len(stats(emu)["created_task_ids"]) == 2


# --------------------------------------------------------------------------- outcomes


def test_outcome_fail_reports_code_and_message(api: Api) -> None:
    task_id = api.create_id("x [emulator: outcome=fail, fail_code=501, fail_msg=Content violates policy]")
    data = api.wait_state(task_id, ("fail", "success"))
    assert data["state"] == "fail"
    assert data["failCode"] == "501" and data["failMsg"] == "Content violates policy"
    assert data["resultJson"] == "" and data["completeTime"] is not None
    assert isinstance(data["costTime"], int) and "creditsConsumed" not in data and "updateTime" not in data


def test_outcome_fail_defaults(api: Api) -> None:
    data = api.wait_state(api.create_id("x [emulator: outcome=fail]"), ("fail",))
    assert (data["failCode"], data["failMsg"]) == ("500", "Internal server error, please try again later")


def test_outcome_empty_and_bad_result_json(api: Api) -> None:
    empty = api.wait_state(api.create_id("x [emulator: outcome=empty]"), ("success",))
    assert json.loads(empty["resultJson"]) == {"resultUrls": []}
    broken = api.wait_state(api.create_id("x [emulator: outcome=bad_result_json]"), ("success",))
    assert isinstance(broken["resultJson"], str) and broken["resultJson"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken["resultJson"])


def test_outcomes_that_never_finish(api: Api, emu: EmulatorServer) -> None:
    never = api.create_id("x [emulator: outcome=never, seconds=0.2]")
    paused = api.create_id("x [emulator: outcome=unknown_state, seconds=0.2]")
    slow = api.create_id("x [emulator: outcome=slow, seconds=0.2]")
    api.wait_state(never, ("generating",))
    assert api.wait_state(paused, ("paused",))["completeTime"] is None
    wait_until(lambda: time.time() - stats(emu)["tasks"][never]["created"] > 0.5)
    assert api.record(never)["data"]["state"] == "generating"
    assert api.record(slow)["data"]["state"] in ("waiting", "queuing", "generating")  # 2 s: ten times 0.2 s
    tasks = stats(emu)["tasks"]
    assert tasks[slow]["seconds"] == pytest.approx(2.0)
    assert tasks[never]["completed"] is None and tasks[paused]["state"] == "paused"


def test_outcome_after_n_polls(api: Api) -> None:
    task_id = api.create_id("x [emulator: polls=3, seconds=0]")
    wait_until(lambda: api.record(task_id)["code"] == 200)  # poll 1 (after the null window)
    assert api.record(task_id)["data"]["state"] == "generating"  # poll 2
    assert api.record(task_id)["data"]["state"] == "success"  # poll 3


def test_default_scenario_applies_without_directive(api: Api, emu: EmulatorServer) -> None:
    reply = requests.post(
        f"{emu.url}/_emulator/config", json={"default_scenario": {"outcome": "fail", "fail_code": "400"}}, timeout=5
    )
    assert reply.json()["ok"] is True
    assert api.wait_state(api.create_id("plain"), ("fail",))["failCode"] == "400"
    assert api.wait_state(api.create_id("x [emulator: outcome=success]"), ("success", "fail"))["state"] == "success"


def test_unreachable_own_input_fails_with_422(api: Api) -> None:
    missing = f"{api.url}/samples/does-not-exist.png"
    data = api.wait_state(api.create_id(image_urls=[missing]), ("fail", "success"))
    assert data["state"] == "fail" and data["failCode"] == "422"
    assert "Failed to download image" in data["failMsg"] and missing in data["failMsg"]
    foreign = api.wait_state(api.create_id(image_urls=["https://example.invalid/a.png"]), ("fail", "success"))
    assert foreign["state"] == "success"


def test_task_seconds_distribution_is_seeded_and_clamped(api: Api, emu: EmulatorServer) -> None:
    dist = {"kind": "lognormal", "median": 20, "sigma": 0.5, "min": 5, "max": 120}
    emu.state.update_config({"task_seconds_dist": dist, "seed": 7, "time_scale": 0.001})
    first = [api.create_id(f"p{i}") for i in range(5)]
    emu.state.update_config({"seed": 7})
    second = [api.create_id(f"p{i}") for i in range(5)]
    tasks = stats(emu)["tasks"]
    durations = [tasks[t]["seconds"] for t in first]
    assert durations == [tasks[t]["seconds"] for t in second]
    assert all(0.005 <= d <= 0.12 for d in durations) and len(set(durations)) > 1


# --------------------------------------------------------------------------- result images


@pytest.mark.parametrize(
    ("ratio", "quality", "size"),
    [
        ("1:1", "basic", (512, 512)),
        ("16:9", "basic", (512, 288)),
        ("9:16", "high", (576, 1024)),
        ("21:9", "high", (1024, 439)),
        ("3:4", "basic", (384, 512)),
    ],
)
def test_result_image_has_aspect_ratio_and_quality_class(
    api: Api, ratio: str, quality: str, size: tuple[int, int]
) -> None:
    data = api.wait_state(api.create_id(aspect_ratio=ratio, quality=quality), ("success",))
    reply = api.get(json.loads(data["resultJson"])["resultUrls"][0])
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "image/png"
    assert reply.headers["X-Emulator-Scaled"] == "4"
    image = decode(reply.content)
    assert image.format == "PNG" and image.size == size


@pytest.mark.parametrize(
    ("fmt", "mime", "pil_format", "ext"),
    [
        ("jpeg", "image/jpeg", "JPEG", "jpg"),
        ("webp", "image/webp", "WEBP", "webp"),
    ],
)
def test_result_format_directive(api: Api, fmt: str, mime: str, pil_format: str, ext: str) -> None:
    data = api.wait_state(api.create_id(f"x [emulator: format={fmt}]", aspect_ratio="4:3"), ("success",))
    url = json.loads(data["resultJson"])["resultUrls"][0]
    assert url.endswith(f"/0.{ext}")
    reply = api.get(url)
    assert reply.headers["Content-Type"] == mime
    image = decode(reply.content)
    assert image.format == pil_format and image.size == (512, 384)


def test_full_size_4k_png_is_several_megabytes(api: Api, emu: EmulatorServer) -> None:
    emu.state.update_config({"full_size": True})
    data = api.wait_state(api.create_id(quality="high"), ("success",))
    reply = api.get(json.loads(data["resultJson"])["resultUrls"][0], timeout=30)
    assert reply.headers["X-Emulator-Scaled"] == "1"
    assert len(reply.content) > 4 * 1024 * 1024 == 4 * 1024 * 1024
    assert int(reply.headers["Content-Length"]) == len(reply.content)
    assert decode(reply.content).size == (4096, 4096)


def test_head_on_result_sends_length_without_body(api: Api) -> None:
    data = api.wait_state(api.create_id(), ("success",))
    path = urlsplit(json.loads(data["resultJson"])["resultUrls"][0]).path
    connection = http.client.HTTPConnection(urlsplit(api.url).netloc, timeout=5)
    connection.request("HEAD", path)
    head = connection.getresponse()
    length = int(head.getheader("Content-Length", "0"))
    assert head.status == 200 and length > 1000 and head.read() == b""
    connection.request("GET", path)  # the same keep-alive connection still works after HEAD
    assert len(connection.getresponse().read()) == length
    connection.close()


def test_result_urls_expire_and_download_url_remints(api: Api, emu: EmulatorServer) -> None:
    data = api.wait_state(api.create_id("x [emulator: expire_after=0]"), ("success",))
    url = json.loads(data["resultJson"])["resultUrls"][0]
    expired = api.get(url)
    assert expired.status_code == 403 and b"AccessDenied" in expired.content

    minted = api.post(DOWNLOAD_URL, json={"url": url}).json()
    assert minted["code"] == 200 and minted["msg"] == "success" and minted["data"] != url
    fresh = api.get(minted["data"])
    assert fresh.status_code == 200 and decode(fresh.content).size == (512, 512)

    emu.state.update_config({"download_url_ttl": 0.3})
    short = api.post(DOWNLOAD_URL, json={"url": url}).json()["data"]
    wait_until(lambda: api.get(short).status_code == 403)

    other = api.wait_state(api.create_id(), ("success",))
    other_url = json.loads(other["resultJson"])["resultUrls"][0]
    assert api.get(other_url).status_code == 200
    emu.state.update_config({"result_ttl": 0.0})
    assert api.get(other_url).status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"url": "https://tempfile.aiquickdraw.com/x.png"},
        {"url": "/results/nope/0.png"},
        {},
        "not an object",
    ],
)
def test_download_url_rejects_foreign_urls(api: Api, body: Any) -> None:
    reply = api.post(DOWNLOAD_URL, json=body).json()
    assert reply["code"] == 422 and reply["data"] is None


def test_unknown_result_is_404(api: Api) -> None:
    assert api.get("/results/0123/0.png").status_code == 404
    assert api.get("/dl/nope/0.png").status_code == 404


# --------------------------------------------------------------------------- the Seedream family
#
# The tests' own statement of each model, written from kie-api.md section 1 (the family table), not from the
# emulator's ``models`` module: if the two drift apart, these tests fail.

#: Every Seedream model the emulator serves.
FAMILY_MODELS = (
    "seedream/4.5-edit",
    "seedream/4.5-text-to-image",
    "seedream/5-lite-image-to-image",
    "seedream/5-lite-text-to-image",
    "bytedance/seedream-v4-edit",
    "bytedance/seedream-v4-text-to-image",
    "bytedance/seedream",
)
EDIT_MODELS = ("seedream/4.5-edit", "seedream/5-lite-image-to-image", "bytedance/seedream-v4-edit")
#: Models with ``aspect_ratio`` + ``quality`` (both required), and their long side per quality (true size).
QUALITY_LONG_SIDES = {
    "seedream/4.5-edit": {"basic": 2048, "high": 4096},
    "seedream/4.5-text-to-image": {"basic": 2048, "high": 4096},
    "seedream/5-lite-image-to-image": {"basic": 2048, "high": 4096},
    "seedream/5-lite-text-to-image": {"basic": 2048, "high": 3072},  # its page: high = 3K
}
ASPECT_RATIO_VALUES = ("1:1", "4:3", "3:4", "16:9", "9:16", "2:3", "3:2", "21:9")
#: Seedream 4.0 ``image_size`` -> shape (w, h); the long side comes from ``image_resolution``.
V4_IMAGE_SIZES = {
    "square": (1, 1), "square_hd": (1, 1), "portrait_4_3": (3, 4), "portrait_3_2": (2, 3), "portrait_16_9": (9, 16),
    "landscape_4_3": (4, 3), "landscape_3_2": (3, 2), "landscape_16_9": (16, 9), "landscape_21_9": (21, 9),
}
V4_RESOLUTIONS = {"1K": 1024, "2K": 2048, "4K": 4096}
#: Seedream 3.0 ``image_size`` -> (shape, long side): square 1K, square_hd 2K, the others 2K (assumed).
V3_IMAGE_SIZES = {
    "square": ((1, 1), 1024), "square_hd": ((1, 1), 2048), "portrait_4_3": ((3, 4), 2048),
    "portrait_16_9": ((9, 16), 2048), "landscape_4_3": ((4, 3), 2048), "landscape_16_9": ((16, 9), 2048),
}
#: Credits per result image: 6.5 for 4.5 (kie-api.md), 5.5 for 5-lite (kie pricing snapshot), 6.5 assumed otherwise.
PRICES = {
    "seedream/4.5-edit": 6.5, "seedream/4.5-text-to-image": 6.5,
    "seedream/5-lite-image-to-image": 5.5, "seedream/5-lite-text-to-image": 5.5,
    "bytedance/seedream-v4-edit": 6.5, "bytedance/seedream-v4-text-to-image": 6.5, "bytedance/seedream": 6.5,
}
#: Results are served at a quarter of their true size unless ``full_size`` is set.
SCALED = 4


def family_input(url: str, model: str, prompt: str = "a red sneaker on a white table") -> dict[str, Any]:
    """The least input ``model`` accepts: prompt, image_urls on edit models, aspect_ratio + quality where required."""
    data: dict[str, Any] = {"prompt": prompt}
    if model in EDIT_MODELS:
        data["image_urls"] = [f"{url}/samples/sneaker-1x1.png"]
    if model in QUALITY_LONG_SIDES:
        data.update(aspect_ratio="1:1", quality="basic")
    return data


def family_create(
    api: Api, model: str, prompt: str = "a red sneaker on a white table", **fields: Any
) -> dict[str, Any]:
    """POST a createTask for ``model`` with the least input plus ``fields`` (``None`` removes a field)."""
    data = family_input(api.url, model, prompt)
    data.update(fields)
    data = {key: value for key, value in data.items() if value is not None}
    reply = api.post(CREATE, json={"model": model, "input": data})
    assert reply.status_code == 200
    return dict(reply.json())


def assert_shape(size: tuple[int, int], shape: tuple[int, int], long_side: int) -> None:
    """Check that ``size`` has the long side ``long_side`` and the aspect ratio ``shape`` (short side +-1 px)."""
    width, height = size
    a, b = shape
    assert max(width, height) == long_side, (size, shape, long_side)
    short = long_side * min(a, b) / max(a, b)
    assert abs(min(width, height) - short) <= 1, (size, shape, long_side)
    assert (width >= height) == (a >= b), (size, shape)


def result_images(api: Api, task_id: str) -> tuple[dict[str, Any], list[str], list[requests.Response]]:
    """Wait for success; return recordInfo ``data``, the result URLs and each URL's downloaded response."""
    data = api.wait_state(task_id, ("success", "fail"))
    assert data["state"] == "success", data
    urls = json.loads(data["resultJson"])["resultUrls"]
    return data, urls, [api.get(url) for url in urls]


@pytest.mark.parametrize(
    ("model", "fields", "shape", "long_side"),
    [
        ("seedream/4.5-edit", {"aspect_ratio": "16:9", "quality": "high"}, (16, 9), 4096),
        ("seedream/4.5-text-to-image", {"aspect_ratio": "3:4"}, (3, 4), 2048),
        ("seedream/5-lite-image-to-image", {"aspect_ratio": "21:9", "quality": "high"}, (21, 9), 4096),
        ("seedream/5-lite-text-to-image", {"aspect_ratio": "2:3", "quality": "high"}, (2, 3), 3072),
        ("bytedance/seedream-v4-edit", {"image_size": "landscape_3_2", "image_resolution": "2K"}, (3, 2), 2048),
        ("bytedance/seedream-v4-text-to-image", {}, (1, 1), 1024),  # defaults: square_hd, 1K, one image
        ("bytedance/seedream", {}, (1, 1), 2048),  # default: square_hd
    ],
)
def test_each_family_model_end_to_end(
    api: Api, emu: EmulatorServer, model: str, fields: dict[str, Any], shape: tuple[int, int], long_side: int
) -> None:
    prompt = "a red sneaker on a white table"
    created = family_create(api, model, prompt, **fields)
    assert created["code"] == 200 and created["msg"] == "success"
    task_id = created["data"]["taskId"]
    data, urls, downloads = result_images(api, task_id)
    # recordInfo names the model submitted, and param echoes the request as sent (no defaults filled in).
    assert data["model"] == model
    param = json.loads(data["param"])
    assert param["model"] == model
    assert json.loads(param["input"]) == dict(family_input(api.url, model, prompt), **fields)
    assert len(urls) == 1 and urls[0] == f"{api.url}/results/{task_id}/0.png"
    assert downloads[0].status_code == 200 and downloads[0].headers["X-Emulator-Scaled"] == str(SCALED)
    assert_shape(decode(downloads[0].content).size, shape, long_side // SCALED)
    task = stats(emu)["tasks"][task_id]
    assert task["model"] == model and task["images"] == 1 and task["creditsConsumed"] == PRICES[model]


def _enum_cases() -> list[tuple[str, dict[str, Any], tuple[int, int], int]]:
    cases = []
    for model, long_sides in QUALITY_LONG_SIDES.items():
        for ratio in ASPECT_RATIO_VALUES:
            a, b = (int(part) for part in ratio.split(":"))
            cases.append((model, {"aspect_ratio": ratio}, (a, b), long_sides["basic"]))
        for quality, long_side in long_sides.items():
            cases.append((model, {"quality": quality}, (1, 1), long_side))
    for model in ("bytedance/seedream-v4-edit", "bytedance/seedream-v4-text-to-image"):
        for size, shape in V4_IMAGE_SIZES.items():
            cases.append((model, {"image_size": size}, shape, 1024))
        for resolution, long_side in V4_RESOLUTIONS.items():
            cases.append((model, {"image_resolution": resolution}, (1, 1), long_side))
    for size, (shape, long_side) in V3_IMAGE_SIZES.items():
        cases.append(("bytedance/seedream", {"image_size": size}, shape, long_side))
    return cases


@pytest.mark.parametrize(
    ("model", "fields", "shape", "long_side"),
    _enum_cases(),
    ids=lambda value: "-".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else None,
)
def test_every_enum_value_is_accepted_and_shapes_the_result(
    api: Api, model: str, fields: dict[str, Any], shape: tuple[int, int], long_side: int
) -> None:
    created = family_create(api, model, "a mug [emulator: seconds=0]", **fields)
    assert created["code"] == 200, created
    _, urls, downloads = result_images(api, created["data"]["taskId"])
    assert len(urls) == 1 and downloads[0].status_code == 200
    assert_shape(decode(downloads[0].content).size, shape, long_side // SCALED)


def _urls(count: int) -> list[str]:
    return [f"https://example.com/in/{index}.png" for index in range(count)]


@pytest.mark.parametrize(
    ("model", "fields", "refused"),
    [
        # prompt length: 1..3000 on 4.5, 3..3000 on 5-lite, 1..5000 on 4.0 and 3.0.
        ("seedream/4.5-edit", {"prompt": "ab"}, None),
        ("seedream/4.5-text-to-image", {"prompt": "a"}, None),
        ("seedream/5-lite-image-to-image", {"prompt": "ab"}, "input.prompt"),
        ("seedream/5-lite-text-to-image", {"prompt": "ab"}, "input.prompt"),
        ("seedream/5-lite-text-to-image", {"prompt": "abc"}, None),
        ("bytedance/seedream-v4-text-to-image", {"prompt": "a"}, None),
        ("bytedance/seedream", {"prompt": "a"}, None),
        ("seedream/4.5-edit", {"prompt": "x" * 3000}, None),
        ("seedream/4.5-text-to-image", {"prompt": "x" * 3001}, "input.prompt"),
        ("seedream/5-lite-image-to-image", {"prompt": "x" * 3000}, None),
        ("seedream/5-lite-text-to-image", {"prompt": "x" * 3001}, "input.prompt"),
        ("bytedance/seedream-v4-edit", {"prompt": "x" * 5000}, None),
        ("bytedance/seedream-v4-text-to-image", {"prompt": "x" * 5001}, "input.prompt"),
        ("bytedance/seedream", {"prompt": "x" * 5000}, None),
        ("bytedance/seedream", {"prompt": "x" * 5001}, "input.prompt"),
        ("bytedance/seedream", {"prompt": "   "}, "input.prompt"),
        # image_urls: 1..14 on 4.5 and 5-lite edits, 1..10 on 4.0 edit.
        ("seedream/4.5-edit", {"image_urls": _urls(14)}, None),
        ("seedream/4.5-edit", {"image_urls": _urls(15)}, "input.image_urls"),
        ("seedream/5-lite-image-to-image", {"image_urls": _urls(14)}, None),
        ("seedream/5-lite-image-to-image", {"image_urls": _urls(15)}, "input.image_urls"),
        ("seedream/5-lite-image-to-image", {"image_urls": []}, "input.image_urls"),
        ("bytedance/seedream-v4-edit", {"image_urls": _urls(10)}, None),
        ("bytedance/seedream-v4-edit", {"image_urls": _urls(11)}, "input.image_urls"),
        ("bytedance/seedream-v4-edit", {"image_urls": []}, "input.image_urls"),
        ("bytedance/seedream-v4-edit", {"image_urls": ["ftp://example.com/a.png"]}, "input.image_urls[0]"),
        # max_images: 1..6 on 4.0.
        ("bytedance/seedream-v4-text-to-image", {"max_images": 1}, None),
        ("bytedance/seedream-v4-text-to-image", {"max_images": 6}, None),
        ("bytedance/seedream-v4-text-to-image", {"max_images": 0}, "input.max_images"),
        ("bytedance/seedream-v4-edit", {"max_images": 7}, "input.max_images"),
        # guidance_scale: 1..10 on 3.0, a number.
        ("bytedance/seedream", {"guidance_scale": 1}, None),
        ("bytedance/seedream", {"guidance_scale": 10}, None),
        ("bytedance/seedream", {"guidance_scale": 2.5}, None),
        ("bytedance/seedream", {"guidance_scale": 0.99}, "input.guidance_scale"),
        ("bytedance/seedream", {"guidance_scale": 10.01}, "input.guidance_scale"),
        # seed: any integer (the 4.0 doc example sends a negative one).
        ("bytedance/seedream-v4-text-to-image", {"seed": -88165251}, None),
        ("bytedance/seedream-v4-edit", {"seed": 2**40}, None),
        ("bytedance/seedream", {"seed": 0}, None),
        # nsfw_checker: a boolean where the model has it.
        ("seedream/5-lite-text-to-image", {"nsfw_checker": True}, None),
        ("bytedance/seedream-v4-edit", {"nsfw_checker": False}, None),
        # Required fields: prompt everywhere, image_urls on edits, aspect_ratio and quality on 4.5 and 5-lite.
        ("bytedance/seedream", {"prompt": None}, "input.prompt"),
        ("bytedance/seedream-v4-edit", {"image_urls": None}, "input.image_urls"),
        ("seedream/4.5-text-to-image", {"aspect_ratio": None}, "input.aspect_ratio"),
        ("seedream/5-lite-text-to-image", {"quality": None}, "input.quality"),
        ("seedream/5-lite-image-to-image", {"aspect_ratio": None}, "input.aspect_ratio"),
    ],
)
def test_family_limits_on_both_sides(
    api: Api, emu: EmulatorServer, model: str, fields: dict[str, Any], refused: str | None
) -> None:
    reply = family_create(api, model, **fields)
    if refused is None:
        assert reply["code"] == 200, reply
        assert len(stats(emu)["created_task_ids"]) == 1
        return
    assert reply["code"] == 422 and reply["data"] is None, reply
    assert refused in reply["msg"] and model in reply["msg"]
    assert stats(emu)["created_task_ids"] == []


@pytest.mark.parametrize(
    ("model", "fields", "field"),
    [
        ("bytedance/seedream-v4-text-to-image", {"max_images": True}, "input.max_images"),
        ("bytedance/seedream-v4-text-to-image", {"max_images": "3"}, "input.max_images"),
        ("bytedance/seedream-v4-edit", {"max_images": 3.0}, "input.max_images"),
        ("bytedance/seedream-v4-edit", {"max_images": 2.5}, "input.max_images"),
        ("bytedance/seedream-v4-text-to-image", {"seed": "42"}, "input.seed"),
        ("bytedance/seedream-v4-text-to-image", {"seed": 4.2}, "input.seed"),
        ("bytedance/seedream", {"seed": False}, "input.seed"),
        ("bytedance/seedream", {"guidance_scale": "2.5"}, "input.guidance_scale"),
        ("bytedance/seedream", {"guidance_scale": True}, "input.guidance_scale"),
        ("seedream/5-lite-image-to-image", {"nsfw_checker": "yes"}, "input.nsfw_checker"),
        ("seedream/4.5-text-to-image", {"nsfw_checker": 1}, "input.nsfw_checker"),
        ("seedream/5-lite-text-to-image", {"prompt": 123}, "input.prompt"),
        ("seedream/5-lite-text-to-image", {"quality": "ultra"}, "input.quality"),
        ("seedream/5-lite-image-to-image", {"aspect_ratio": "5:4"}, "input.aspect_ratio"),
        ("bytedance/seedream-v4-edit", {"image_size": "square_HD"}, "input.image_size"),
        ("bytedance/seedream-v4-edit", {"image_resolution": "1k"}, "input.image_resolution"),
        ("bytedance/seedream-v4-text-to-image", {"image_resolution": "8K"}, "input.image_resolution"),
        # A value of the same field on another model: 21:9 and 3:2 shapes exist on 4.0, not on 3.0.
        ("bytedance/seedream", {"image_size": "landscape_21_9"}, "input.image_size"),
        ("bytedance/seedream", {"image_size": "portrait_3_2"}, "input.image_size"),
    ],
)
def test_family_wrong_types_and_values_are_422(
    api: Api, model: str, fields: dict[str, Any], field: str
) -> None:
    # JSON keeps what Python sends: true stays a boolean, 3.0 a number with a fraction part, "3" a string.
    reply = family_create(api, model, **fields)
    assert reply["code"] == 422 and field in reply["msg"] and model in reply["msg"], reply


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        ("seedream/4.5-text-to-image", {"image_urls": _urls(1)}),
        ("seedream/5-lite-text-to-image", {"image_urls": _urls(1)}),
        ("bytedance/seedream-v4-text-to-image", {"image_urls": _urls(1)}),
        ("bytedance/seedream", {"image_urls": _urls(1)}),
        ("seedream/4.5-edit", {"max_images": 2}),
        ("seedream/4.5-edit", {"image_size": "square"}),
        ("seedream/4.5-edit", {"seed": 1}),
        ("seedream/5-lite-image-to-image", {"image_resolution": "2K"}),
        ("seedream/5-lite-text-to-image", {"guidance_scale": 2.5}),
        ("bytedance/seedream-v4-edit", {"aspect_ratio": "1:1"}),
        ("bytedance/seedream-v4-text-to-image", {"quality": "high"}),
        ("bytedance/seedream-v4-text-to-image", {"guidance_scale": 2.5}),
        ("bytedance/seedream", {"nsfw_checker": True}),
        ("bytedance/seedream", {"max_images": 2}),
        ("bytedance/seedream", {"image_resolution": "1K"}),
        ("seedream/4.5-edit", {"negative_prompt": "blurry"}),  # on no Seedream model on kie
    ],
)
def test_a_field_the_model_lacks_is_422_naming_field_and_model(
    api: Api, emu: EmulatorServer, model: str, fields: dict[str, Any]
) -> None:
    (field,) = fields
    reply = family_create(api, model, **fields)
    assert reply["code"] == 422 and reply["data"] is None
    assert f"input.{field} is not a field of model {model}" in reply["msg"]
    assert stats(emu)["created_task_ids"] == []


@pytest.mark.parametrize("model", ["seedream/5-pro-text-to-image", "seedream/4.0-edit", "SEEDREAM/4.5-EDIT", 42, ["x"],
                                   None])
def test_a_model_outside_the_family_is_not_served(api: Api, model: Any) -> None:
    reply = api.post(CREATE, json={"model": model, "input": {"prompt": "p"}})
    assert reply.status_code == 200
    assert reply.json()["code"] == 422 and f"model {model!r} is not served" in reply.json()["msg"]


@pytest.mark.parametrize("model", ["bytedance/seedream-v4-edit", "bytedance/seedream-v4-text-to-image"])
def test_max_images_makes_that_many_distinct_downloadable_images(
    api: Api, emu: EmulatorServer, model: str
) -> None:
    created = family_create(api, model, "three views of a lamp", max_images=3, image_size="portrait_16_9")
    task_id = created["data"]["taskId"]
    _, urls, downloads = result_images(api, task_id)
    assert urls == [f"{api.url}/results/{task_id}/{index}.png" for index in range(3)]
    assert [reply.status_code for reply in downloads] == [200, 200, 200]
    assert len({reply.content for reply in downloads}) == 3  # three pictures, not one picture three times
    for reply in downloads:
        assert_shape(decode(reply.content).size, (9, 16), 1024 // SCALED)
    assert api.get(f"{api.url}/results/{task_id}/3.png").status_code == 404
    # Each image can be re-linked with download-url and copied by the URL upload, like a one-image result.
    link = api.post(DOWNLOAD_URL, json={"url": urls[2]}).json()["data"]
    assert api.get(link).content == downloads[2].content
    copy = api.post(URL_UPLOAD, json={"fileUrl": urls[1], "uploadPath": "copies"}).json()["data"]
    assert api.get(copy["downloadUrl"]).content == downloads[1].content
    # Charged per image: three images of 6.5 credits.
    assert stats(emu)["tasks"][task_id]["creditsConsumed"] == 19.5
    assert api.get(CREDIT).json()["data"] == 1000.0 - 19.5


def test_family_prices_are_per_model_and_per_image(api: Api, emu: EmulatorServer) -> None:
    balance = 1000.0
    for model in FAMILY_MODELS:
        assert family_create(api, model)["code"] == 200
        balance -= PRICES[model]
        assert api.get(CREDIT).json()["data"] == pytest.approx(balance), model
    assert family_create(api, "bytedance/seedream-v4-text-to-image", max_images=6)["code"] == 200
    assert api.get(CREDIT).json()["data"] == pytest.approx(balance - 39.0)

    # 402 when the balance covers one image but not all of them; nothing is created or charged.
    requests.post(f"{emu.url}/_emulator/credits", json={"balance": 10.0}, timeout=5).raise_for_status()
    refused = family_create(api, "bytedance/seedream-v4-edit", max_images=2)
    assert refused["code"] == 402 and refused["msg"] == "Credits insufficient"
    assert api.get(CREDIT).json()["data"] == 10.0
    # A failed task is refunded in full once it fails (here: on its first poll).
    failed = family_create(api, "bytedance/seedream", "x [emulator: outcome=fail, polls=1]")
    assert api.get(CREDIT).json()["data"] == 3.5
    assert api.record(failed["data"]["taskId"])["data"]["state"] == "fail"
    assert api.get(CREDIT).json()["data"] == 10.0

    # credits_per_task sets one price per image for every model; null goes back to each model's own.
    emu.state.update_config({"credits_per_task": 0.25})
    assert family_create(api, "bytedance/seedream-v4-edit", max_images=4)["code"] == 200
    assert family_create(api, "seedream/5-lite-text-to-image")["code"] == 200
    assert api.get(CREDIT).json()["data"] == 8.75
    reply = requests.post(f"{emu.url}/_emulator/config", json={"credits_per_task": None}, timeout=5)
    assert reply.json()["config"]["credits_per_task"] is None
    assert family_create(api, "seedream/5-lite-text-to-image")["code"] == 200
    assert api.get(CREDIT).json()["data"] == 3.25


def test_full_size_serves_each_models_true_size(api: Api, emu: EmulatorServer) -> None:
    emu.state.update_config({"full_size": True})
    for model, fields, size in (
        ("bytedance/seedream-v4-text-to-image", {"image_size": "landscape_16_9", "max_images": 2}, (1024, 576)),
        ("bytedance/seedream", {"image_size": "square"}, (1024, 1024)),
    ):
        created = family_create(api, model, "a lamp [emulator: seconds=0]", **fields)
        _, urls, downloads = result_images(api, created["data"]["taskId"])
        assert len(urls) == fields.get("max_images", 1)
        for reply in downloads:
            assert reply.headers["X-Emulator-Scaled"] == "1" and decode(reply.content).size == size, model


# --------------------------------------------------------------------------- samples and uploads


def test_samples_are_real_images_of_listed_size(api: Api) -> None:
    listing = api.get("/samples/").json()
    assert len(listing["samples"]) >= 4 and listing["urls"] == [s["url"] for s in listing["samples"]]
    assert {s["mimeType"] for s in listing["samples"]} == {"image/png", "image/jpeg", "image/webp"}
    for sample in listing["samples"]:
        reply = api.get(sample["url"])
        assert reply.headers["Content-Type"] == sample["mimeType"]
        assert decode(reply.content).size == (sample["width"], sample["height"])
    assert api.get("/samples/nope.png").status_code == 404


def test_stream_upload_round_trip_and_use_as_input(api: Api) -> None:
    data = png_bytes()
    reply = api.post(
        STREAM_UPLOAD,
        files={"file": ("ignored.png", data, "image/png")},
        data={"uploadPath": "images/tests", "fileName": "in.png"},
    )
    payload = reply.json()
    assert payload["success"] is True and payload["code"] == 200 and payload["msg"] == "File uploaded successfully"
    record = payload["data"]
    assert set(record) == {"fileName", "filePath", "downloadUrl", "fileSize", "mimeType", "uploadedAt"}
    assert (record["fileName"], record["filePath"]) == ("in.png", "images/tests/in.png")
    assert (record["fileSize"], record["mimeType"]) == (len(data), "image/png")
    served = api.get(record["downloadUrl"])
    assert served.content == data and served.headers["Content-Type"] == "image/png"
    task = api.wait_state(api.create_id(image_urls=[record["downloadUrl"]]), ("success", "fail"))
    assert task["state"] == "success"


def test_base64_upload_raw_and_data_url(api: Api) -> None:
    data = png_bytes(4, 3)
    raw = api.post(BASE64_UPLOAD, json={"base64Data": base64.b64encode(data).decode(), "uploadPath": "b64"}).json()
    assert raw["code"] == 200 and raw["data"]["fileName"].endswith(".png")  # random name when omitted
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    named = api.post(BASE64_UPLOAD, json={"base64Data": url, "uploadPath": "b64", "fileName": "d.png"}).json()
    assert named["data"]["filePath"] == "b64/d.png"
    assert api.get(named["data"]["downloadUrl"]).content == data


def test_url_upload_copies_the_emulators_own_files(api: Api) -> None:
    sample_url = f"{api.url}/samples/sneaker-1x1.png"
    sample = api.get(sample_url).content
    reply = api.post(URL_UPLOAD, json={"fileUrl": sample_url, "uploadPath": "images/from-url"})
    assert reply.status_code == 200
    payload = reply.json()
    assert payload["success"] is True and payload["code"] == 200 and payload["msg"] == "File uploaded successfully"
    record = payload["data"]
    assert set(record) == {"fileName", "filePath", "downloadUrl", "fileSize", "mimeType", "uploadedAt"}
    # Without fileName, kie takes the name from the URL.
    assert (record["fileName"], record["filePath"]) == ("sneaker-1x1.png", "images/from-url/sneaker-1x1.png")
    assert (record["fileSize"], record["mimeType"]) == (len(sample), "image/png")
    copied = api.get(record["downloadUrl"])
    assert copied.content == sample and copied.headers["Content-Type"] == "image/png"

    # An uploaded file, by URL again, under a name of our own.
    again = api.post(URL_UPLOAD, json={"fileUrl": record["downloadUrl"], "uploadPath": "copies",
                                       "fileName": "again.png"}).json()
    assert again["code"] == 200 and again["data"]["filePath"] == "copies/again.png"
    assert api.get(again["data"]["downloadUrl"]).content == sample

    # A result image, and a download-url link to it.
    done = api.wait_state(api.create_id(aspect_ratio="16:9"), ("success",))
    result_url = json.loads(done["resultJson"])["resultUrls"][0]
    result = api.get(result_url).content
    from_result = api.post(URL_UPLOAD, json={"fileUrl": result_url, "uploadPath": "results"}).json()
    assert from_result["code"] == 200 and from_result["data"]["fileName"] == "0.png"
    assert api.get(from_result["data"]["downloadUrl"]).content == result
    link = api.post(DOWNLOAD_URL, json={"url": result_url}).json()["data"]
    from_link = api.post(URL_UPLOAD, json={"fileUrl": link, "uploadPath": "links", "fileName": "l.png"}).json()
    assert from_link["code"] == 200 and api.get(from_link["data"]["downloadUrl"]).content == result

    # The copy is a valid Seedream input.
    task = api.wait_state(api.create_id(image_urls=[record["downloadUrl"]]), ("success", "fail"))
    assert task["state"] == "success"


def test_url_upload_rejections_are_400_in_body(api: Api, emu: EmulatorServer) -> None:
    def upload(body: Any) -> dict[str, Any]:
        reply = api.post(URL_UPLOAD, json=body)
        assert reply.status_code == 200
        return dict(reply.json())

    foreign = upload({"fileUrl": "https://example.com/images/sample.jpg", "uploadPath": "x"})
    assert foreign["success"] is False and foreign["code"] == 400 and foreign["data"] is None
    assert foreign["msg"].startswith("Failed to download file from https://example.com/images/sample.jpg")
    missing = upload({"fileUrl": f"{api.url}/samples/nope.png", "uploadPath": "x"})
    assert missing["code"] == 400 and "404" in missing["msg"]
    expired = api.wait_state(api.create_id("x [emulator: expire_after=0]"), ("success",))
    gone = upload({"fileUrl": json.loads(expired["resultJson"])["resultUrls"][0], "uploadPath": "x"})
    assert gone["code"] == 400 and "403" in gone["msg"]
    assert "fileUrl is required" in upload({"uploadPath": "x"})["msg"]
    assert "http(s)" in upload({"fileUrl": "ftp://example.com/a.png", "uploadPath": "x"})["msg"]
    assert "uploadPath" in upload({"fileUrl": f"{api.url}/samples/sneaker-1x1.png"})["msg"]
    assert upload("not an object")["code"] == 400
    not_json = api.post(URL_UPLOAD, data=b"{nope", headers={"Content-Type": "application/json"}).json()
    assert not_json["success"] is False and not_json["code"] == 400
    with Api(emu.url, key=None) as anonymous:
        assert anonymous.post(URL_UPLOAD, json={"fileUrl": "x"}).json() == {
            "success": False, "code": 401, "msg": "You do not have access permissions"
        }
    snapshot = stats(emu)
    assert snapshot["uploads"] == 0 and snapshot["requests"]["upload"] == 9


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ("too_big", "maximum"),
        ("not_image", "unsupported file type"),
        ("no_path", "uploadPath"),
        ("bad_base64", "base64"),
        ("no_file", "file is required"),
    ],
)
def test_upload_rejections_are_400_in_body(api: Api, kind: str, fragment: str) -> None:
    if kind == "too_big":
        big = png_bytes() + b"\0" * (10 * 1024 * 1024)
        reply = api.post(STREAM_UPLOAD, files={"file": ("big.png", big)}, data={"uploadPath": "x"})
    elif kind == "not_image":
        reply = api.post(STREAM_UPLOAD, files={"file": ("a.txt", b"hello")}, data={"uploadPath": "x"})
    elif kind == "no_path":
        reply = api.post(BASE64_UPLOAD, json={"base64Data": base64.b64encode(png_bytes()).decode()})
    elif kind == "bad_base64":
        reply = api.post(BASE64_UPLOAD, json={"base64Data": "!!!not base64!!!", "uploadPath": "x"})
    else:
        reply = api.post(STREAM_UPLOAD, files={"other": ("a.png", png_bytes())}, data={"uploadPath": "x"})
    assert reply.status_code == 200
    payload = reply.json()
    assert payload["success"] is False and payload["code"] == 400 and fragment in payload["msg"]


def test_upload_requires_key_and_accepts_chunked_bodies(api: Api, emu: EmulatorServer) -> None:
    with Api(emu.url, key=None) as anonymous:
        assert anonymous.post(BASE64_UPLOAD, json={}).json()["code"] == 401
    encoded = json.dumps({"base64Data": base64.b64encode(png_bytes()).decode(), "uploadPath": "c"}).encode()
    chunks = iter([encoded[:10], encoded[10:]])  # a generator body makes requests send Transfer-Encoding: chunked
    reply = api.post(BASE64_UPLOAD, data=chunks, headers={"Content-Type": "application/json"})
    assert reply.json()["code"] == 200


# --------------------------------------------------------------------------- callbacks


class _Receiver:
    """A loopback callback receiver that records each POST's JSON body and headers."""

    def __init__(self) -> None:
        self.received: queue.Queue[tuple[dict[str, Any], dict[str, str]]] = queue.Queue()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.put((json.loads(body), dict(self.headers)))
                reply = b'{"code": 200, "msg": "success"}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/callback"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    rec = _Receiver()
    yield rec
    rec.close()


def test_callbacks_on_success_and_failure(api: Api, emu: EmulatorServer, receiver: _Receiver) -> None:
    emu.state.update_config({"webhook_hmac_key": "secret"})
    ok = api.create_id(callBackUrl=receiver.url)
    body, headers = receiver.received.get(timeout=5)
    assert body["code"] == 200 and body["msg"] == "Playground task completed successfully."
    assert body["data"]["taskId"] == ok and body["data"]["state"] == "success"
    assert json.loads(body["data"]["resultJson"])["resultUrls"]
    # Callbacks keep the newest callback schema's updateTime and creditsConsumed, which recordInfo answers lack.
    assert body["data"]["creditsConsumed"] == 6.5 and body["data"]["updateTime"] == body["data"]["completeTime"]
    assert body["data"]["failCode"] is None and isinstance(body["data"]["costTime"], int)
    assert set(api.record(ok)["data"]) == set(body["data"]) - {"updateTime", "creditsConsumed"}
    assert "X-Webhook-Signature" in headers and headers["X-Webhook-Timestamp"].isdigit()

    failed = api.create_id("x [emulator: outcome=fail]", callBackUrl=receiver.url)
    body, _ = receiver.received.get(timeout=5)
    assert body["code"] == 501 and body["msg"] == "Playground task failed."
    assert body["data"]["taskId"] == failed and body["data"]["creditsConsumed"] == 0
    assert body["data"]["failCode"] == "500"

    api.create_id(callBackUrl="https://example.com/hook")
    wait_until(lambda: len(stats(emu)["callbacks"]) == 3)
    records = {record["url"]: record for record in stats(emu)["callbacks"]}
    assert records[receiver.url]["sent"] is True and records[receiver.url]["status"] == 200
    assert records["https://example.com/hook"]["sent"] is False


# --------------------------------------------------------------------------- faults


def _add_faults(emu: EmulatorServer, endpoint: str, *faults: dict[str, Any]) -> None:
    reply = requests.post(f"{emu.url}/_emulator/faults", json={"endpoint": endpoint, "faults": list(faults)}, timeout=5)
    assert reply.status_code == 200, reply.text


def test_fault_http_status_with_retry_after(api: Api, emu: EmulatorServer) -> None:
    _add_faults(emu, "credit", {"kind": "http", "status": 429, "retry_after": 1}, {"kind": "http", "status": 503})
    first = api.get(CREDIT)
    assert first.status_code == 429 and first.headers["Retry-After"] == "1" and first.json()["code"] == 429
    second = api.get(CREDIT)
    assert second.status_code == 503 and second.json()["code"] == 503 and "Retry-After" not in second.headers
    assert api.get(CREDIT).json()["code"] == 200
    assert stats(emu)["rate_limited"]["credit"] == 1


@pytest.mark.parametrize("code", [429, 455, 500, 505])
def test_fault_code_in_body(api: Api, emu: EmulatorServer, code: int) -> None:
    emu.state.add_faults("recordInfo", [{"kind": "body", "code": code}])
    reply = api.get(RECORD, params={"taskId": "x"})
    assert reply.status_code == 200
    assert reply.json()["code"] == code and reply.json()["data"] is None and reply.json()["msg"]


def test_faults_are_consumed_in_order_per_endpoint(api: Api, emu: EmulatorServer) -> None:
    emu.state.add_faults("credit", [{"kind": "body", "code": 500}, {"kind": "body", "code": 455}])
    assert api.get(RECORD, params={"taskId": "x"}).json()["code"] == 422  # other endpoint untouched
    assert [api.get(CREDIT).json()["code"] for _ in range(3)] == [500, 455, 200]
    assert stats(emu)["faults_served"]["credit"] == {"body": 2}


def test_fault_reset_is_a_tcp_reset(emu: EmulatorServer) -> None:
    emu.state.add_faults("credit", [{"kind": "reset"}, {"kind": "reset"}])
    with socket.create_connection(("127.0.0.1", emu.port), timeout=5) as sock:
        sock.sendall(f"GET {CREDIT} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\r\n".encode())
        with pytest.raises(ConnectionResetError):
            if sock.recv(1024) == b"":
                pytest.fail("connection closed cleanly instead of being reset")
    with Api(emu.url) as client, pytest.raises(requests.exceptions.ConnectionError):
        client.get(CREDIT)


def test_fault_delay_times_out_short_clients(api: Api, emu: EmulatorServer) -> None:
    emu.state.add_faults("recordInfo", [{"kind": "delay", "seconds": 1.0}, {"kind": "delay", "seconds": 0.2}])
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.get(RECORD, params={"taskId": "x"}, timeout=0.3)
    assert time.monotonic() - started < 0.9
    with Api(emu.url) as fresh:
        started = time.monotonic()
        assert fresh.get(RECORD, params={"taskId": "x"}).json()["code"] == 422
        assert time.monotonic() - started >= 0.2


def test_fault_not_json_and_missing_data(api: Api, emu: EmulatorServer) -> None:
    emu.state.add_faults("createTask", [{"kind": "not_json"}, {"kind": "missing_data"}])
    html = api.create()
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        html.json()
    assert api.create().json() == {"code": 200, "msg": "success"}
    assert stats(emu)["created_task_ids"] == []


def test_fault_echo_key_repeats_the_authorization_header(api: Api, emu: EmulatorServer) -> None:
    emu.state.add_faults("credit", [{"kind": "echo_key"}, {"kind": "echo_key", "code": 401}])
    first = api.get(CREDIT)
    assert first.status_code == 200 and first.json()["code"] == 500
    assert f"Authorization: {api.session.headers['Authorization']}" in first.json()["msg"]
    assert api.get(CREDIT).json()["code"] == 401
    assert api.get(CREDIT).json()["code"] == 200  # one fault per request, then normal answers


def test_fault_accept_then_reset_creates_and_charges(api: Api, emu: EmulatorServer) -> None:
    emu.state.add_faults("createTask", [{"kind": "accept_then_reset"}])
    with pytest.raises(requests.exceptions.ConnectionError):
        api.create()
    assert len(stats(emu)["created_task_ids"]) == 1
    assert api.get(CREDIT).json()["data"] == 993.5


def test_faults_on_results_upload_and_download_url(api: Api, emu: EmulatorServer) -> None:
    data = api.wait_state(api.create_id(), ("success",))
    url = json.loads(data["resultJson"])["resultUrls"][0]
    emu.state.add_faults("results", [{"kind": "http", "status": 500}])
    emu.state.add_faults("upload", [{"kind": "body", "code": 500}])
    emu.state.add_faults("download-url", [{"kind": "body", "code": 455}])
    assert api.get(url).status_code == 500
    assert api.get(url).status_code == 200
    upload = api.post(BASE64_UPLOAD, json={"base64Data": base64.b64encode(png_bytes()).decode(), "uploadPath": "f"})
    assert upload.json() == {"success": False, "code": 500, "msg": upload.json()["msg"], "data": None}
    assert api.post(DOWNLOAD_URL, json={"url": url}).json()["code"] == 455


@pytest.mark.parametrize(
    "payload",
    [
        {"endpoint": "nope", "faults": [{"kind": "reset"}]},
        {"endpoint": "credit", "faults": [{"kind": "explode"}]},
        {"endpoint": "credit", "faults": [{"kind": "http"}]},
        {"endpoint": "credit", "faults": [{"kind": "accept_then_reset"}]},
        {"endpoint": "credit"},
    ],
)
def test_invalid_faults_are_rejected(emu: EmulatorServer, payload: dict[str, Any]) -> None:
    reply = requests.post(f"{emu.url}/_emulator/faults", json=payload, timeout=5)
    assert reply.status_code == 400 and reply.json()["ok"] is False
    assert requests.get(f"{emu.url}/_emulator/faults", timeout=5).json()["pending"] == {}


# --------------------------------------------------------------------------- rate limits


def test_create_task_burst_is_limited_to_20_per_window(emu: EmulatorServer) -> None:
    emu.state.update_config({"rate_limits": True})

    def create(_: int) -> requests.Response:
        with Api(emu.url) as client:
            return client.create()

    with ThreadPoolExecutor(max_workers=25) as pool:
        replies = list(pool.map(create, range(25)))
    accepted = [r for r in replies if r.status_code == 200 and r.json()["code"] == 200]
    limited = [r for r in replies if r.status_code == 429]
    assert len(accepted) == 20 and len(limited) == 5
    for reply in limited:
        assert reply.json()["code"] == 429 and 1 <= int(reply.headers["Retry-After"]) <= 10
    with Api(emu.url, key="another-key") as other:
        assert other.create().json()["code"] == 200  # the limit is per API key
    snapshot = stats(emu)
    assert snapshot["rate_limited"]["createTask"] == 5 and len(snapshot["created_task_ids"]) == 21


def test_record_info_is_limited_to_10_per_second(emu: EmulatorServer) -> None:
    emu.state.update_config({"rate_limits": True})
    calls = []
    # A key of its own: the limit is per key, and the previous test's queries may still sit in this second's window.
    with Api(emu.url, key=f"rate-{uuid.uuid4().hex}") as api:
        for _ in range(15):
            started = time.monotonic()
            calls.append((started, api.get(RECORD, params={"taskId": "x"}).status_code))
    codes = [code for _, code in calls]
    assert codes[:10] == [200] * 10 and 429 in codes
    # On a loaded machine the loop may outlast the window; still, no second ever admits more than ten.
    for index, (started, code) in enumerate(calls):
        recent = [c for t, c in calls[: index + 1] if t > started - 0.9 and c == 200]
        assert code != 200 or len(recent) <= 10
    assert stats(emu)["rate_limited"]["recordInfo"] == codes.count(429)


def test_time_scale_shrinks_the_rate_window(api: Api, emu: EmulatorServer) -> None:
    emu.state.update_config({"rate_limits": True, "time_scale": 0.1})  # the 10 s window becomes 1 s
    codes = [api.create().status_code for _ in range(21)]
    assert codes[:20] == [200] * 20 and codes[20] == 429
    wait_until(lambda: api.create().status_code == 200, timeout=3)


# --------------------------------------------------------------------------- stats, control, transport


def test_stats_count_requests_per_endpoint_and_second(api: Api, emu: EmulatorServer) -> None:
    task_id = api.create_id()
    api.record(task_id)
    api.get(CREDIT)
    api.get("/samples/")
    snapshot = stats(emu)
    assert snapshot["requests"] == {
        "createTask": 1,
        "recordInfo": 1,
        "credit": 1,
        "download-url": 0,
        "upload": 0,
        "results": 0,
        "samples": 1,
        "files": 0,
    }
    assert snapshot["created_task_ids"] == [task_id]
    assert sum(snapshot["per_second"]["createTask"].values()) == 1
    assert all(abs(int(second) - time.time()) < 60 for second in snapshot["per_second"]["credit"])
    task = snapshot["tasks"][task_id]
    assert task["outcome"] == "success" and task["input"]["aspect_ratio"] == "1:1" and task["created"] > 0
    assert snapshot["responses"]["recordInfo"] == {"200": 1}
    requests.post(f"{emu.url}/_emulator/reset", timeout=5).raise_for_status()
    cleared = stats(emu)
    assert cleared["created_task_ids"] == [] and cleared["requests"]["createTask"] == 0


def test_config_endpoint_updates_and_rejects_unknown_fields(emu: EmulatorServer) -> None:
    reply = requests.post(f"{emu.url}/_emulator/config", json={"task_seconds": 1, "rate_limits": True}, timeout=5)
    assert reply.json()["config"]["task_seconds"] == 1.0 and emu.state.config.rate_limits is True
    bad = requests.post(f"{emu.url}/_emulator/config", json={"nope": 1}, timeout=5)
    assert bad.status_code == 400 and "nope" in bad.json()["error"]
    bad_value = requests.post(f"{emu.url}/_emulator/config", json={"time_scale": 0}, timeout=5)
    assert bad_value.status_code == 400
    assert requests.get(f"{emu.url}/_emulator/health", timeout=5).json()["ok"] is True


def test_wrong_method_and_unknown_path(api: Api) -> None:
    # A known path with the wrong method: 405 naming the allowed one.
    for method, path, allowed in (("GET", CREATE, "POST"), ("POST", CREDIT, "GET"), ("GET", URL_UPLOAD, "POST"),
                                  ("POST", "/samples/", "GET, HEAD"), ("DELETE", "/results/x/0.png", "GET, HEAD")):
        reply = api.session.request(method, api.url + path, timeout=5)
        assert reply.status_code == 405 and reply.headers["Allow"] == allowed, (method, path)
    # An unknown path: 404 whatever the method (it used to be 405 for anything but GET).
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
        for path in ("/api/v1/nothing", "/api/v1/jobs/createTaskX", "/api/file-upload", "/nothing"):
            reply = api.session.request(method, api.url + path, timeout=5)
            assert reply.status_code == 404, (method, path)
            assert reply.json() == {"code": 404, "msg": "Not Found"}


def test_keep_alive_and_many_concurrent_clients(emu: EmulatorServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    for _ in range(20):  # one socket, twenty requests: exact Content-Length makes keep-alive work
        connection.request("GET", CREDIT, headers={"Authorization": f"Bearer {KEY}"})
        assert json.loads(connection.getresponse().read())["code"] == 200
    connection.close()

    barrier = threading.Barrier(300)

    def call(_: int) -> int:
        with Api(emu.url) as client:
            barrier.wait(timeout=10)
            return int(client.get(CREDIT, timeout=20).json()["code"])

    with ThreadPoolExecutor(max_workers=300) as pool:
        assert list(pool.map(call, range(300))) == [200] * 300


def test_cli_prints_one_line_serves_and_exits_cleanly_on_sigterm() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    process = subprocess.Popen(
        [sys.executable, "-m", "seedream_emulator", "--port", "0", "--api-key", "cli-key"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        prefix = "seedream-emulator listening on "
        assert line.startswith(prefix), line
        url = line[len(prefix) :].strip()
        assert url.startswith("http://127.0.0.1:")
        reply = requests.get(url + CREDIT, headers={"Authorization": "Bearer cli-key"}, timeout=5)
        assert reply.json() == {"code": 200, "msg": "success", "data": 1000.0}
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
        assert process.returncode == 0, err
        assert out == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


_WITHOUT_PILLOW = """
import base64, json, sys, time, urllib.request
sys.modules["PIL"] = None  # make every "import PIL..." fail, as on a machine without Pillow
from seedream_emulator import EmulatorConfig, EmulatorServer

def call(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Authorization": "Bearer k",
                                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()

with EmulatorServer(EmulatorConfig(task_seconds=0.05, null_window_seconds=0)) as emu:
    samples = json.loads(call(emu.url + "/samples/"))["samples"]
    body = {"model": "seedream/4.5-edit", "input": {"prompt": "p", "image_urls": [samples[0]["url"]],
            "aspect_ratio": "16:9", "quality": "basic"}}
    jpeg = dict(body, input=dict(body["input"], prompt="p [emulator: format=jpeg]"))
    jpeg_code = json.loads(call(emu.url + "/api/v1/jobs/createTask", jpeg))["code"]
    task_id = json.loads(call(emu.url + "/api/v1/jobs/createTask", body))["data"]["taskId"]
    deadline = time.monotonic() + 5
    while True:
        data = json.loads(call(emu.url + "/api/v1/jobs/recordInfo?taskId=" + task_id))["data"]
        if data and data["state"] == "success" or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    png = call(json.loads(data["resultJson"])["resultUrls"][0])
    sample = call(samples[0]["url"])
print(json.dumps({"types": sorted({s["mimeType"] for s in samples}), "jpeg_code": jpeg_code,
                  "png": base64.b64encode(png).decode(), "sample": base64.b64encode(sample).decode(),
                  "pil_loaded": "PIL.Image" in sys.modules}))
"""


def test_png_results_and_samples_work_without_pillow() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PILLOW], capture_output=True, text=True, env=env, timeout=30, check=True
    )
    report = json.loads(done.stdout)
    assert report["types"] == ["image/png"] and report["jpeg_code"] == 422 and not report["pil_loaded"]
    result = decode(base64.b64decode(report["png"]))
    assert result.format == "PNG" and result.size == (512, 288)
    assert decode(base64.b64decode(report["sample"])).format == "PNG"


@pytest.mark.parametrize("prerender", [True, False])
def test_prerender_results_draws_a_result_when_its_success_is_first_reported(emu, api, monkeypatch, prerender):
    """With ``prerender_results`` the picture is drawn when recordInfo says success, so its download draws nothing
    (drawing is made to fail then, and the download still succeeds); without it, nothing is drawn before the
    download."""
    from seedream_emulator import images

    emu.state.update_config({"prerender_results": prerender})
    task_id = api.create_id("x [emulator: seconds=0.1]")
    data = api.wait_state(task_id, ("success",))
    (url,) = json.loads(data["resultJson"])["resultUrls"]
    (spec,) = emu.state.result_specs(task_id)
    key = ("result", spec.seed, spec.width, spec.height, spec.fmt)
    if prerender:
        wait_until(lambda: key in emu.state.images)

        def no_drawing(*args: Any) -> bytes:
            raise AssertionError("drawn at download time")

        monkeypatch.setattr(images, "render", no_drawing)
    else:
        time.sleep(0.3)  # what a background drawing would have needed; none may have started
        assert key not in emu.state.images
    reply = api.get(url)
    assert reply.status_code == 200 and reply.content[:4] == b"\x89PNG"
    assert key in emu.state.images
