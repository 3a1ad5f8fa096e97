"""SeedreamEditOperator and SeedreamTaskSensor against the emulator: submit, defer, run the trigger, resume."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from airflow.triggers.base import TaskSuccessEvent

from airflow_provider_seedream.version_compat import AirflowSkipException, TaskDeferred

from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream import waiting
from airflow_provider_seedream.operators.seedream import STATE_KEY, SeedreamEditOperator
from airflow_provider_seedream.sensors.seedream import SeedreamTaskSensor
from airflow_provider_seedream.triggers.seedream import SeedreamTaskTrigger
from support import DictStateStore, RunningTI, context, run_trigger, run_trigger_in_triggerer

try:
    from airflow.sdk.exceptions import AirflowRescheduleException
except ImportError:  # Airflow 3.1
    from airflow.exceptions import AirflowRescheduleException  # type: ignore[no-redef]


def edit_op(emulator, **kwargs) -> SeedreamEditOperator:
    kwargs.setdefault("prompt", "put it on a beach")
    kwargs.setdefault("image_urls", [emulator.sample_url()])
    return SeedreamEditOperator(task_id="edit", poll_interval=0.1, **kwargs)


# --------------------------------------------------------------------------------------------------------------- edit
def test_submit_pushes_task_id_and_returns_it(emulator):
    ctx = context()
    task_id = edit_op(emulator).execute(ctx)
    assert task_id and ctx["ti"].xcoms == {"seedream_task_id": task_id}
    assert emulator.count("createTask") == 1 and emulator.count("recordInfo") == 0


def test_templated_fields_render_before_validation(emulator):
    op = edit_op(emulator, prompt="{{ params.p }}", image_urls="{{ params.urls }}", aspect_ratio="{{ params.ar }}")
    assert set(op.template_fields) >= {"prompt", "image_urls", "aspect_ratio", "quality", "callback_url"}
    ctx = context()
    ctx["params"] = {"p": "make it red", "urls": [emulator.sample_url()], "ar": "9:16"}
    op.render_template_fields(ctx)
    assert op.prompt == "make it red" and op.aspect_ratio == "9:16"
    op.execute(ctx)
    task = emulator.stats()["tasks"]
    assert len(task) == 1


def test_templated_garbage_is_refused_before_any_request(emulator):
    op = edit_op(emulator, aspect_ratio="{{ params.ar }}")
    ctx = context()
    ctx["params"] = {"ar": "9x16"}
    op.render_template_fields(ctx)
    with pytest.raises(exc.SeedreamValidationError, match="aspect_ratio: must be one of 1:1, 4:3, .* for "
                                                          "seedream/4.5-edit; got '9x16'"):
        op.execute(ctx)
    assert emulator.stats()["requests"].get("createTask", 0) == 0


@pytest.mark.parametrize("kwargs, field", [({"poll_interval": 0}, "poll_interval"), ({"timeout": -5}, "timeout")])
def test_bad_wait_settings_fail_at_construction(emulator, kwargs, field):
    with pytest.raises(exc.SeedreamValidationError, match=field):
        SeedreamEditOperator(task_id="x", prompt="p", image_urls=["https://e.com/a.png"], **kwargs)


def test_deferrable_wait_defers_then_completes(emulator, monkeypatch):
    op = edit_op(emulator, wait_for_completion=True, deferrable=True, timeout=60)
    ctx = context()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)
    trigger = deferred.value.trigger
    assert isinstance(trigger, SeedreamTaskTrigger)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == timedelta(seconds=180)
    assert trigger.min_event_delay == waiting.EVENT_HOLDBACK_SECONDS  # apache/airflow#72716
    task_id = ctx["ti"].xcoms["seedream_task_id"]  # pushed before deferring
    assert trigger.seedream_task_id == task_id
    # Nothing is left for a worker (no output_path, no outlets): the trigger ends the task with its XComs.
    assert trigger.end_from_trigger is True
    event, comms = run_trigger_in_triggerer(trigger, monkeypatch, RunningTI("edit", map_index=3))
    assert isinstance(event, TaskSuccessEvent), event
    assert not event.xcoms  # pushed through the triggerer's channel instead (Airflow would encode these twice)
    assert comms.where == {("test", "edit", "manual__1", 3)}
    assert comms.xcoms["return_value"] == task_id and len(comms.xcoms["result_urls"]) == 1
    assert comms.xcoms["seedream_task"]["task_id"] == task_id and comms.xcoms["seedream_task"]["state"] == "success"
    assert comms.xcoms["_link_SeedreamResultImageLink"] == comms.xcoms["result_urls"][0]
    assert emulator.count("createTask") == 1
    # Where nothing can push XComs (dag.test() runs triggers inline), the task resumes and re-reads the task once.
    resumed = run_trigger(trigger)
    ctx["ti"] = RunningTI("edit")
    ctx["ti"].xcoms["seedream_task_id"] = task_id
    assert op.execute_complete(ctx, "success") == task_id and ctx["ti"].xcoms["result_urls"] == resumed["task"][
        "result_urls"]


def test_a_deferred_operator_that_stores_results_resumes_on_a_worker(emulator, tmp_path):
    op = edit_op(emulator, wait_for_completion=True, deferrable=True, timeout=60, output_path=str(tmp_path))
    ctx = {"ti": RunningTI("edit")}
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)
    assert deferred.value.trigger.end_from_trigger is False
    assert op.execute_complete(ctx, run_trigger(deferred.value.trigger)) == ctx["ti"].xcoms["seedream_task_id"]
    assert len(ctx["ti"].xcoms["stored_images"]) == 1


class _OwnCompletion(SeedreamTaskSensor):
    def execute_complete(self, context, event=None):
        return ["handled by the subclass"]


def test_a_subclass_with_its_own_execute_complete_resumes_on_a_worker(emulator):
    task_id = submit(emulator, "[emulator: seconds=1.5]")
    s = _OwnCompletion(task_id="wait", seedream_task_id=task_id, poke_interval=0.1, timeout=30)
    with pytest.raises(TaskDeferred) as deferred:
        s.execute(context())
    assert deferred.value.trigger.end_from_trigger is False


def test_a_failed_task_resumes_on_a_worker_even_when_the_trigger_could_end_it(emulator):
    task_id = submit(emulator, "[emulator: outcome=fail, fail_code=422, fail_msg=Prompt rejected, seconds=1]")
    s = sensor(task_id)
    with pytest.raises(TaskDeferred) as deferred:
        s.execute(context())
    assert deferred.value.trigger.end_from_trigger is True
    with pytest.raises(exc.SeedreamTaskFailedError, match="Prompt rejected"):
        s.execute_complete(context(), run_trigger(deferred.value.trigger))


def test_blocking_wait_pushes_result_urls(emulator):
    ctx = context()
    task_id = edit_op(emulator, wait_for_completion=True, deferrable=False).execute(ctx)
    assert ctx["ti"].xcoms["result_urls"] and ctx["ti"].xcoms["seedream_task"]["task_id"] == task_id


def test_remote_failure_fails_without_retry(emulator):
    op = edit_op(emulator, prompt="[emulator: outcome=fail, fail_code=500, fail_msg=Internal error]",
                 wait_for_completion=True, deferrable=False)
    with pytest.raises(exc.SeedreamTaskFailedError, match="failCode=500 failMsg=Internal error"):
        op.execute(context())


def test_retry_reattaches_to_a_running_task(emulator, logs):
    store = DictStateStore()
    op = edit_op(emulator, prompt="[emulator: seconds=3]")
    first = op.execute(context(store))
    assert store.data[STATE_KEY]["task_id"] == first
    second = edit_op(emulator, prompt="[emulator: seconds=3]").execute(context(store))  # the next try
    assert second == first
    assert emulator.count("createTask") == 1
    assert "Re-attaching to Seedream task" in logs.text()


def test_retry_reattaches_to_a_succeeded_task_and_returns_its_results(emulator):
    store = DictStateStore()
    first = edit_op(emulator).execute(context(store))
    SeedreamEditOperator  # noqa: B018
    from airflow_provider_seedream.hooks.seedream import SeedreamHook

    SeedreamHook().wait_for_task(first, poll_interval=0.1, timeout=30)
    ctx = context(store)
    again = edit_op(emulator, wait_for_completion=True, deferrable=True).execute(ctx)
    assert again == first and ctx["ti"].xcoms["result_urls"]
    assert emulator.count("createTask") == 1


def test_retry_after_remote_failure_or_changed_input_submits_anew(emulator):
    store = DictStateStore()
    failed = edit_op(emulator, prompt="[emulator: outcome=fail, seconds=0.1]").execute(context(store))
    from airflow_provider_seedream.hooks.seedream import SeedreamHook

    with pytest.raises(exc.SeedreamTaskFailedError):
        SeedreamHook().wait_for_task(failed, poll_interval=0.1, timeout=30)
    fresh = edit_op(emulator, prompt="[emulator: outcome=fail, seconds=0.1]").execute(context(store))
    assert fresh != failed
    changed = edit_op(emulator, prompt="a different prompt").execute(context(store))
    assert changed not in (failed, fresh)
    assert emulator.count("createTask") == 3


def test_without_task_state_store_it_warns_that_a_retry_pays_again(emulator, logs):
    edit_op(emulator).execute(context())
    assert "retry submits and pays for a second edit" in logs.text()


# ------------------------------------------------------------------------------------------------------------- sensor
def sensor(task_id, **kwargs) -> SeedreamTaskSensor:
    kwargs.setdefault("poke_interval", 0.1)
    kwargs.setdefault("timeout", 30)
    return SeedreamTaskSensor(task_id="wait", seedream_task_id=task_id, **kwargs)


def submit(emulator, prompt="p") -> str:
    return edit_op(emulator, prompt=prompt).execute(context())


def test_sensor_is_deferrable_by_default_and_returns_urls(emulator, monkeypatch):
    task_id = submit(emulator, "[emulator: seconds=1.5]")
    s = sensor(task_id)
    assert s.deferrable is True
    ctx = context()
    with pytest.raises(TaskDeferred) as deferred:
        s.execute(ctx)
    trigger = deferred.value.trigger
    assert trigger.poll_interval == 0.1 and trigger.deadline - trigger.started_at == pytest.approx(30)
    event, comms = run_trigger_in_triggerer(trigger, monkeypatch, RunningTI("wait"))
    assert isinstance(event, TaskSuccessEvent), event
    urls = comms.xcoms["return_value"]
    assert len(urls) == 1 and urls == comms.xcoms["result_urls"]


def test_sensor_does_not_defer_when_already_done(emulator):
    task_id = submit(emulator, "[emulator: seconds=0.1]")
    from airflow_provider_seedream.hooks.seedream import SeedreamHook

    SeedreamHook().wait_for_task(task_id, poll_interval=0.1, timeout=30)
    assert len(sensor(task_id).execute(context())) == 1


def test_sensor_deferred_failure_carries_kie_message(emulator):
    task_id = submit(emulator, "[emulator: outcome=fail, fail_code=422, fail_msg=Prompt rejected, seconds=1]")
    s = sensor(task_id)
    with pytest.raises(TaskDeferred) as deferred:
        s.execute(context())
    with pytest.raises(exc.SeedreamTaskFailedError, match="failCode=422 failMsg=Prompt rejected"):
        s.execute_complete(context(), run_trigger(deferred.value.trigger))


def test_sensor_poke_mode_returns_urls(emulator):
    task_id = submit(emulator)
    urls = sensor(task_id, deferrable=False, mode="poke").execute(context())
    assert len(urls) == 1


def test_sensor_poke_mode_failure(emulator):
    task_id = submit(emulator, "[emulator: outcome=fail, fail_code=500, fail_msg=Internal error, seconds=0.3]")
    with pytest.raises(exc.SeedreamTaskFailedError, match="failMsg=Internal error"):
        sensor(task_id, deferrable=False, mode="poke").execute(context())


def test_sensor_poke_mode_timeout_names_the_task(emulator):
    task_id = submit(emulator, "[emulator: outcome=never]")
    with pytest.raises(exc.SeedreamTimeoutError, match=task_id):
        sensor(task_id, deferrable=False, mode="poke", timeout=0.5).execute(context())


def test_sensor_deferred_timeout_names_the_task(emulator):
    task_id = submit(emulator, "[emulator: outcome=never]")
    s = sensor(task_id, timeout=0.6)
    with pytest.raises(TaskDeferred) as deferred:
        s.execute(context())
    with pytest.raises(exc.SeedreamTimeoutError, match=task_id):
        s.execute_complete(context(), run_trigger(deferred.value.trigger))


class ReschedulingTI(RunningTI):
    """A task instance whose sensor has been poking in reschedule mode since ``first`` (None: this is the first)."""

    def __init__(self, first: datetime | None) -> None:
        super().__init__()
        self.first = first

    def get_first_reschedule_date(self, context: dict) -> datetime | None:
        return self.first


@pytest.mark.parametrize(("poking_for", "outcome"), [(None, "rescheduled"), (5, "rescheduled"), (45, "failed")])
def test_reschedule_mode_dates_the_not_visible_grace_from_the_first_poke(emulator, poking_for, outcome):
    # kie answers "recordInfo is null" for an id it does not know. Each reschedule-mode poke is a new process with a
    # new waiter: the 30 s grace must count from the first poke, not restart, or a bogus id waits out the timeout.
    first = None if poking_for is None else datetime.now(timezone.utc) - timedelta(seconds=poking_for)
    s = sensor("0123456789abcdef0123456789abcdef", deferrable=False, mode="reschedule", timeout=600)
    if outcome == "rescheduled":
        with pytest.raises(AirflowRescheduleException):
            s.execute({"ti": ReschedulingTI(first)})
    else:
        with pytest.raises(exc.SeedreamNotFoundError, match="recordInfo is null"):
            s.execute({"ti": ReschedulingTI(first)})
    assert emulator.count("recordInfo") == 1


def test_sensor_soft_fail_skips_on_remote_failure(emulator):
    task_id = submit(emulator, "[emulator: outcome=fail, seconds=0.2]")
    with pytest.raises(AirflowSkipException):
        sensor(task_id, deferrable=False, mode="poke", soft_fail=True).execute(context())


@pytest.mark.parametrize("event", [None, {"status": "success"}, {"status": "bogus", "task_id": "x"}])
def test_sensor_rejects_invalid_events(emulator, event):
    with pytest.raises(exc.SeedreamError):
        sensor("x").execute_complete(context(), event)


@pytest.mark.parametrize("bad", ["", None, "has space"])
def test_sensor_refuses_bad_task_ids_before_any_request(emulator, bad):
    with pytest.raises(exc.SeedreamValidationError, match="seedream_task_id"):
        sensor(bad).execute(context())
    assert emulator.stats()["requests"].get("recordInfo", 0) == 0


def test_a_fresh_submit_defers_without_asking_from_the_worker_and_a_reattach_asks_once(emulator):
    """A task submitted a moment ago cannot have finished: the worker leaves every status query to the triggerer's
    shared budget. A task a previous try submitted may have: the retry checks it once before deferring."""
    store = DictStateStore()
    op = edit_op(emulator, prompt="[emulator: seconds=5]", wait_for_completion=True, deferrable=True)
    with pytest.raises(TaskDeferred):
        op.execute(context(store))
    assert emulator.count("createTask") == 1 and emulator.count("recordInfo") == 0
    with pytest.raises(TaskDeferred):
        edit_op(emulator, prompt="[emulator: seconds=5]", wait_for_completion=True, deferrable=True).execute(
            context(store))
    assert emulator.count("createTask") == 1 and emulator.count("recordInfo") == 1  # the re-attach check


def test_the_operator_tolerates_as_many_transient_errors_as_it_is_told(emulator):
    emulator.faults("recordInfo", {"kind": "http", "status": 500}, {"kind": "http", "status": 502})
    strict = edit_op(emulator, prompt="[emulator: seconds=0.5]", wait_for_completion=True, deferrable=False,
                     max_consecutive_errors=1)
    with pytest.raises(exc.SeedreamError, match="after 2 consecutive transient errors"):
        strict.execute(context())
    emulator.faults("recordInfo", {"kind": "http", "status": 500}, {"kind": "http", "status": 502})
    patient = edit_op(emulator, prompt="[emulator: seconds=0.5]", wait_for_completion=True, deferrable=True,
                      max_consecutive_errors=3)
    with pytest.raises(TaskDeferred) as deferred:
        patient.execute(context())
    assert deferred.value.trigger.max_consecutive_errors == 3
    assert edit_op(emulator, wait_for_completion=True, deferrable=False).execute(context())  # default 5
