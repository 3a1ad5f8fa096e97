"""SeedreamHook against the emulator over real loopback HTTP."""

from __future__ import annotations

import pytest
from support import use_connection

from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream.hooks.seedream import SeedreamHook


def hook(**kwargs) -> SeedreamHook:
    return SeedreamHook(retry_base=0.05, **kwargs)


def test_create_get_and_wait(emulator):
    h = hook()
    task_id = h.create_edit_task("make the sky purple", [emulator.sample_url()], aspect_ratio="16:9", quality="basic")
    assert task_id
    seen = []
    task = h.wait_for_task(task_id, poll_interval=0.1, timeout=30, on_update=lambda t: seen.append(t.state))
    assert task.succeeded and len(task.result_urls) == 1
    assert seen[-1] == "success" and set(seen) <= {"waiting", "queuing", "generating", "success"}
    assert h.get_task(task_id).result_urls == task.result_urls
    assert emulator.count("createTask") == 1


def test_get_credits_is_fractional_and_test_connection_is_free(emulator):
    h = hook()
    before = h.get_credits()
    ok, message = h.test_connection()
    assert ok and "credit balance" in message and emulator.url in message
    assert emulator.count("createTask") == 0
    h.create_edit_task("p", [emulator.sample_url()])
    assert h.get_credits() == pytest.approx(before - 6.5)


def test_bad_key_is_an_auth_error(emulator, monkeypatch):
    emulator.configure(api_keys=["the-only-key"])
    with pytest.raises(exc.SeedreamAuthError, match="401"):
        hook().get_credits()
    ok, message = hook().test_connection()
    assert not ok and "SeedreamAuthError" in message
    assert "canary" not in message


def test_invalid_input_sends_nothing(emulator):
    with pytest.raises(exc.SeedreamValidationError, match="aspect_ratio"):
        hook().create_edit_task("p", [emulator.sample_url()], aspect_ratio="5:4")
    assert emulator.stats()["requests"].get("createTask", 0) == 0


def test_failed_task_carries_kie_code_and_message(emulator):
    h = hook()
    task_id = h.create_edit_task("[emulator: outcome=fail, fail_code=422, fail_msg=Image could not be read]",
                                 [emulator.sample_url()])
    with pytest.raises(exc.SeedreamTaskFailedError, match="failCode=422 failMsg=Image could not be read") as err:
        h.wait_for_task(task_id, poll_interval=0.1, timeout=30)
    assert err.value.task.task_id == task_id


def test_wait_times_out_naming_the_task(emulator):
    h = hook()
    task_id = h.create_edit_task("[emulator: outcome=never]", [emulator.sample_url()])
    with pytest.raises(exc.SeedreamTimeoutError, match=task_id) as err:
        h.wait_for_task(task_id, poll_interval=0.1, timeout=1.0)
    assert err.value.task_id == task_id


def test_unknown_task_is_not_found_after_grace(emulator):
    with pytest.raises(exc.SeedreamNotFoundError):
        hook().get_task("0123456789abcdef0123456789abcdef")


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "http", "status": 429, "retry_after": 1},
        {"kind": "body", "code": 429},
        {"kind": "body", "code": 455},
        {"kind": "http", "status": 455},
    ],
)
def test_refused_submit_is_resubmitted_once_accepted(emulator, fault, logs):
    h = hook()
    task_id = h.create_edit_task("p", [emulator.sample_url()])
    assert task_id
    stats = emulator.stats()
    assert stats["requests"]["createTask"] == 1  # baseline: one accepted
    emulator.faults("createTask", fault)
    second = h.create_edit_task("p", [emulator.sample_url()])
    assert second != task_id
    stats = emulator.stats()
    assert stats["requests"]["createTask"] == 3  # the refused one, then the accepted resubmit
    assert len(stats["created_task_ids"]) == 2
    assert "not accepted" in logs.text()


@pytest.mark.parametrize(
    "fault, reason",
    [
        ({"kind": "accept_then_reset"}, "RemoteDisconnected|ConnectionError|ChunkedEncodingError"),
        ({"kind": "http", "status": 500}, "500"),
        ({"kind": "body", "code": 500}, "500"),
        ({"kind": "http", "status": 502}, "502"),
        ({"kind": "delay", "seconds": 3}, "ReadTimeout"),
    ],
)
def test_maybe_accepted_submit_is_never_resubmitted(emulator, fault, reason, logs):
    emulator.faults("createTask", fault)
    with pytest.raises(exc.SeedreamSubmitUncertainError, match="not resubmitted") as err:
        hook(timeout=1.0).create_edit_task("p", [emulator.sample_url()])
    assert emulator.count("createTask") == 1
    assert "NOT resubmitting" in logs.text()
    assert err.value.__cause__ is not None


def test_connection_refused_submit_is_retried_then_reported(monkeypatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    use_connection(monkeypatch, "k", f"http://127.0.0.1:{port}")
    with pytest.raises(exc.SeedreamTransportError) as err:
        hook(submit_timeout=0.3).create_edit_task("p", ["https://example.com/a.png"])
    assert err.value.sent is False


@pytest.mark.parametrize(
    "fault, error",
    [
        ({"kind": "not_json"}, exc.SeedreamResponseError),
        ({"kind": "missing_data"}, exc.SeedreamResponseError),
    ],
)
def test_malformed_answers_are_typed(emulator, fault, error):
    h = hook()
    task_id = h.create_edit_task("p", [emulator.sample_url()])
    emulator.faults("recordInfo", fault)
    with pytest.raises(error):
        h.get_task(task_id)


@pytest.mark.parametrize("outcome, fragment", [("bad_result_json", "resultJson is not JSON"),
                                               ("empty", "no result URLs"), ("unknown_state", "unknown state")])
def test_malformed_tasks_fail_the_wait_clearly(emulator, outcome, fragment):
    h = hook()
    task_id = h.create_edit_task(f"[emulator: outcome={outcome}, seconds=0.2]", [emulator.sample_url()])
    with pytest.raises(exc.SeedreamResponseError, match=fragment):
        h.wait_for_task(task_id, poll_interval=0.1, timeout=20)


def test_reads_retry_transient_errors(emulator):
    emulator.configure(null_window_seconds=0)
    h = hook()
    task_id = h.create_edit_task("p", [emulator.sample_url()])
    emulator.faults("recordInfo", {"kind": "http", "status": 502}, {"kind": "reset"}, {"kind": "body", "code": 455})
    assert h.get_task(task_id).task_id == task_id
    assert emulator.count("recordInfo") == 4


def test_wait_survives_transient_faults(emulator):
    h = hook()
    task_id = h.create_edit_task("p", [emulator.sample_url()])
    emulator.faults("recordInfo", {"kind": "http", "status": 429, "retry_after": 1}, {"kind": "body", "code": 429},
                    {"kind": "reset"}, {"kind": "http", "status": 500})
    assert h.wait_for_task(task_id, poll_interval=0.1, timeout=30).succeeded
    assert emulator.count("createTask") == 1


def test_not_yet_visible_task_is_waited_for(emulator):
    emulator.configure(null_window_seconds=1.0)
    h = hook()
    task_id = h.create_edit_task("p", [emulator.sample_url()])
    with pytest.raises(exc.SeedreamNotFoundError, match="recordInfo is null"):
        h._get_task_once(task_id)
    assert h.wait_for_task(task_id, poll_interval=0.1, timeout=30).succeeded


def test_download_url_mints_a_fresh_link(emulator):
    h = hook()
    task_id = h.create_edit_task("p", [emulator.sample_url()])
    task = h.wait_for_task(task_id, poll_interval=0.1, timeout=30)
    fresh = h.get_download_url(task.result_urls[0])
    assert fresh.startswith(emulator.url) and fresh != task.result_urls[0]


def test_the_key_never_reaches_logs(emulator, logs, api_key):
    h = hook()
    task_id = h.create_edit_task("p", [emulator.sample_url()])
    h.wait_for_task(task_id, poll_interval=0.1, timeout=30)
    h.test_connection()
    assert api_key not in logs.text()
    assert api_key not in repr(h.settings)


def test_connection_timeout_extra_applies_to_sync_reads(emulator, monkeypatch, api_key):
    use_connection(monkeypatch, api_key, emulator.url, timeout=0.5)
    emulator.faults("credit", {"kind": "delay", "seconds": 2})
    with pytest.raises(exc.SeedreamTransportError, match="no whole answer from kie.ai within 0.5 s"):
        SeedreamHook(max_retries=0).get_credits()
    assert SeedreamHook(max_retries=0, timeout=5).get_credits() > 0  # the hook's own argument wins


@pytest.mark.parametrize("stack", ["sync", "async"])
def test_the_hooks_own_timeout_bounds_both_stacks(emulator, stack):
    """``SeedreamHook(timeout=...)`` is one setting for both stacks: the trigger's async query obeys it as the worker's
    sync query does (it used to read only the connection's extra, 30 s here)."""
    import asyncio
    import time

    task_id = SeedreamHook().create_edit_task("p", [emulator.sample_url()])
    emulator.faults("recordInfo", {"kind": "delay", "seconds": 3})
    hook = SeedreamHook(timeout=0.5, max_retries=0)
    started = time.monotonic()
    with pytest.raises(exc.SeedreamTransportError, match="recordInfo"):
        if stack == "sync":
            hook.get_task(task_id)
        else:
            asyncio.run(hook.aget_task(task_id))
    assert time.monotonic() - started < 2.5
