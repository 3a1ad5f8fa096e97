"""Table tests of the wait state machine and the events it ends with."""

from __future__ import annotations

import json

import pytest

from airflow_provider_seedream import waitstate, wire
from airflow_provider_seedream import exceptions as exc
from test_wire import record  # a recordInfo record, as kie sends it


# --------------------------------------------------------------------------------------------------------------- waiter
def waiter(**policy):
    return waitstate.Waiter("t1", waitstate.WaitPolicy(**{"poll_interval": 1.0, **policy}), started_at=1000.0, rng=lambda: 0.5)


def task(state):
    return wire.parse_task(record(state, completeTime=None) if state != "success" else record())


def test_waiter_logs_state_changes_and_succeeds():
    w = waiter()
    s1 = w.observe(task("waiting"), 1000.5)
    assert s1.event is None and s1.delay == pytest.approx(1.0) and "submitted -> waiting" in s1.note
    assert w.observe(task("waiting"), 1001.5).note is None
    assert "waiting -> generating after 2.0 s" in w.observe(task("generating"), 1002.0).note
    done = w.observe(task("success"), 1003.0)
    assert done.event["status"] == "success"
    assert waitstate.resolve_event(done.event, "t1").result_urls == ("https://r.example/0.png",)
    json.dumps(done.event)  # events are plain JSON


def test_waiter_fails_with_kie_message():
    step = waiter().observe(wire.parse_task(record("fail", failCode="422", failMsg="image download failed")), 1001)
    with pytest.raises(exc.SeedreamTaskFailedError, match="failCode=422 failMsg=image download failed") as err:
        waitstate.resolve_event(step.event)
    assert err.value.task.fail_code == "422"


def test_waiter_deadline_names_the_task():
    w = waiter(deadline=1010.0)
    assert w.observe(task("generating"), 1009.5).delay == pytest.approx(0.5)  # never sleeps past the deadline
    step = w.observe(task("generating"), 1010.0)
    with pytest.raises(exc.SeedreamTimeoutError, match="t1 did not finish before the deadline") as err:
        waitstate.resolve_event(step.event)
    assert err.value.task_id == "t1"


def test_waiter_tolerates_not_found_only_during_grace_and_before_seen():
    w = waiter(not_found_grace=5)
    nf = exc.SeedreamNotFoundError("recordInfo is null")
    assert w.observe(nf, 1001).event is None
    assert w.observe(nf, 1006).event["status"] == "error"
    w2 = waiter(not_found_grace=60)
    w2.observe(task("generating"), 1001)
    assert w2.observe(nf, 1002).event["status"] == "error"  # a task we saw cannot vanish


def test_waiter_tolerates_a_few_transient_errors_then_gives_up():
    w = waiter(max_consecutive_errors=2)
    assert w.observe(exc.SeedreamRateLimitError("429", retry_after=4), 1001).delay == pytest.approx(4.0)
    assert w.observe(exc.SeedreamServerError("500"), 1002).event is None
    assert w.observe(task("generating"), 1003).event is None  # a good answer resets the count
    assert w.observe(exc.SeedreamServerError("500"), 1004).event is None
    assert w.observe(exc.SeedreamServerError("500"), 1005).event is None
    final = w.observe(exc.SeedreamServerError("500"), 1006)
    assert final.event["status"] == "error" and "3 consecutive transient errors" in final.event["message"]
    with pytest.raises(exc.SeedreamServerError):
        waitstate.resolve_event(final.event)


def test_waiter_stops_at_once_on_fatal_errors():
    step = waiter().observe(exc.SeedreamAuthError("kie.ai answered 401"), 1001)
    with pytest.raises(exc.SeedreamAuthError, match="401"):
        waitstate.resolve_event(step.event)


@pytest.mark.parametrize(
    "event",
    [None, {}, {"status": "weird", "task_id": "t1"}, {"status": "success", "task_id": ""}, "success",
     {"status": "success", "task_id": "t1", "task": None}],
)
def test_resolve_event_rejects_garbage(event):
    with pytest.raises(exc.SeedreamError):
        waitstate.resolve_event(event)


def test_resolve_event_checks_the_task_id():
    event = waitstate.make_event("success", "t2", "ok", wire.parse_task(record(taskId="t2")))
    with pytest.raises(exc.SeedreamResponseError, match="expected t1"):
        waitstate.resolve_event(event, "t1")
