"""SeedreamTaskTrigger: serialization round trip and real runs against the emulator, in an event loop."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from support import use_connection

from airflow_provider_seedream import waitstate
from airflow_provider_seedream.hooks.seedream import SeedreamHook
from airflow_provider_seedream.triggers.seedream import SeedreamTaskTrigger


def submit(emulator, prompt="p") -> str:
    return SeedreamHook().create_edit_task(prompt, [emulator.sample_url()])


def roundtrip(trigger: SeedreamTaskTrigger) -> SeedreamTaskTrigger:
    classpath, kwargs = trigger.serialize()
    json.dumps(kwargs)  # plain data only
    module, name = classpath.rsplit(".", 1)
    cls = getattr(__import__(module, fromlist=[name]), name)
    return cls(**kwargs)


async def first_event(trigger: SeedreamTaskTrigger) -> dict:
    events = [event async for event in roundtrip(trigger).run()]
    assert len(events) == 1  # exactly one event
    return events[0].payload


def test_serialize_holds_plain_data_and_no_key(api_key):
    trigger = SeedreamTaskTrigger("t1", "my_conn", poll_interval=2, deadline=123.0, started_at=100.0)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_seedream.triggers.seedream.SeedreamTaskTrigger"
    assert kwargs == {
        "seedream_task_id": "t1",
        "seedream_conn_id": "my_conn",
        "poll_interval": 2.0,
        "deadline": 123.0,
        "started_at": 100.0,
        "max_consecutive_errors": 5,
        "not_found_grace": 30.0,
        "min_event_delay": 0.0,
        "end_from_trigger": False,
        "returns": "result_urls",
    }
    assert api_key not in repr(trigger) and api_key not in json.dumps(kwargs)


async def test_success_event_carries_result_urls(emulator):
    task_id = submit(emulator)
    event = await first_event(SeedreamTaskTrigger(task_id, poll_interval=0.1, deadline=time.time() + 30))
    assert event["status"] == "success" and event["task_id"] == task_id
    assert len(event["task"]["result_urls"]) == 1
    json.dumps(event)


async def test_failure_event_carries_kie_message(emulator):
    task_id = submit(emulator, "[emulator: outcome=fail, fail_code=501, fail_msg=Content policy violation]")
    event = await first_event(SeedreamTaskTrigger(task_id, poll_interval=0.1, deadline=time.time() + 30))
    assert event["status"] == "failed"
    assert "failCode=501 failMsg=Content policy violation" in event["message"]


async def test_deadline_yields_timeout(emulator):
    task_id = submit(emulator, "[emulator: outcome=never]")
    event = await first_event(SeedreamTaskTrigger(task_id, poll_interval=0.1, deadline=time.time() + 0.8))
    assert event["status"] == "timeout" and task_id in event["message"]


async def test_transient_faults_are_tolerated(emulator):
    task_id = submit(emulator)
    emulator.faults("recordInfo", {"kind": "http", "status": 429, "retry_after": 1}, {"kind": "body", "code": 429},
                    {"kind": "body", "code": 455}, {"kind": "reset"}, {"kind": "http", "status": 502})
    event = await first_event(SeedreamTaskTrigger(task_id, poll_interval=0.1, deadline=time.time() + 30))
    assert event["status"] == "success"
    assert emulator.count("createTask") == 1


async def test_read_timeout_is_tolerated(emulator, monkeypatch, api_key):
    task_id = submit(emulator)
    # The connection's extra ``timeout`` reaches the shared async client: a 2 s silence is a timeout at 0.5 s.
    use_connection(monkeypatch, api_key, emulator.url, timeout=0.5)
    emulator.faults("recordInfo", {"kind": "delay", "seconds": 2})
    event = await first_event(SeedreamTaskTrigger(task_id, poll_interval=0.1, deadline=time.time() + 30))
    assert event["status"] == "success"


async def test_too_many_transient_errors_end_in_error(emulator):
    task_id = submit(emulator)
    emulator.faults("recordInfo", *[{"kind": "http", "status": 500}] * 4)
    trigger = SeedreamTaskTrigger(task_id, poll_interval=0.05, deadline=time.time() + 30, max_consecutive_errors=3)
    event = await first_event(trigger)
    assert event["status"] == "error" and "4 consecutive transient errors" in event["message"]
    assert event["error_type"] == "SeedreamServerError"


async def test_fatal_error_ends_at_once(emulator):
    task_id = submit(emulator)
    emulator.configure(api_keys=["another-key"])
    event = await first_event(SeedreamTaskTrigger(task_id, poll_interval=0.1, deadline=time.time() + 30))
    assert event["status"] == "error" and event["error_type"] == "SeedreamAuthError"
    assert emulator.count("recordInfo") == 1


async def test_missing_connection_is_an_error_event(monkeypatch):
    event = await first_event(SeedreamTaskTrigger("t1", "no_such_conn", poll_interval=0.1))
    assert event["status"] == "error" and "no_such_conn" in event["message"]


async def test_cancellation_passes_through_and_releases_the_client(emulator):
    from airflow_provider_seedream import aio

    task_id = submit(emulator, "[emulator: outcome=never]")
    trigger = SeedreamTaskTrigger(task_id, poll_interval=0.1, deadline=time.time() + 30)
    gen = trigger.run()
    runner = asyncio.ensure_future(gen.__anext__())
    deadline = time.time() + 10
    while emulator.count("recordInfo") < 2 and time.time() < deadline:
        await asyncio.sleep(0.05)
    assert aio.shared_entries()  # the wait holds a lease
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    await gen.aclose()
    assert aio.shared_entries() == {}


async def test_many_triggers_share_one_client(emulator):
    from airflow_provider_seedream import aio

    ids = [submit(emulator) for _ in range(5)]
    triggers = [SeedreamTaskTrigger(t, poll_interval=0.1, deadline=time.time() + 30) for t in ids]
    gens = [t.run() for t in triggers]
    tasks = [asyncio.ensure_future(g.__anext__()) for g in gens]
    await asyncio.sleep(0.3)
    entries = aio.shared_entries()
    assert len(entries) == 1  # one client and one budget for the key
    assert list(entries.values())[0][0] >= 5  # every waiting trigger holds a lease on it
    events = await asyncio.gather(*tasks)
    assert {e.payload["status"] for e in events} == {"success"}
    for g in gens:
        await g.aclose()
    assert aio.shared_entries() == {}


async def test_event_is_held_back_until_min_event_delay(emulator):
    """A deferral's trigger must not fire before the deferring worker has surely exited (apache/airflow#72716)."""
    task_id = submit(emulator, "[emulator: seconds=0.2]")
    started = time.time()
    trigger = SeedreamTaskTrigger(task_id, poll_interval=0.1, started_at=started, deadline=started + 30,
                                  min_event_delay=1.5)
    event = await first_event(trigger)
    assert event["status"] == "success"
    assert time.time() - started >= 1.5
    polls = emulator.count("recordInfo")
    assert polls < 10  # it waited for the hold, it did not keep polling through it


async def test_each_query_ranks_by_the_last_still_running_answer_and_the_typical_run(emulator, monkeypatch, api_key):
    # Record what the trigger asks the budget's ranking (the real function still computes it). The task stays
    # "generating" until its 4th answered poll; a 500 comes between the first and the second: an error is no "still running".
    use_connection(monkeypatch, api_key, emulator.url, typical_run_seconds=45)
    task_id = submit(emulator, "[emulator: polls=4]")
    await asyncio.sleep(0.4)  # past the "recordInfo is null" window
    calls: list[tuple[float, float | None, float]] = []
    real = waitstate.likely_done_at

    def spy(started: float, last_running: float | None, typical: float) -> float:
        calls.append((started, last_running, typical))
        return real(started, last_running, typical)

    monkeypatch.setattr(waitstate, "likely_done_at", spy)
    emulator.faults("recordInfo", {"kind": "delay", "seconds": 0}, {"kind": "http", "status": 500})
    started = time.time()
    event = await first_event(SeedreamTaskTrigger(task_id, poll_interval=0.1, started_at=started,
                                                  deadline=started + 30))
    assert event["status"] == "success"
    assert [typical for _, _, typical in calls] == [45.0] * len(calls)
    assert {s for s, _, _ in calls} == {started}
    seen = [last for _, last, _ in calls]
    # Polls: generating, 500, generating, generating, success: five queries, ranked with what was known before each.
    assert len(seen) == 5
    assert seen[0] is None
    assert seen[1] is not None and seen[2] == seen[1]  # the 500 changed nothing
    assert seen[1] < seen[3] < seen[4] < time.time()
