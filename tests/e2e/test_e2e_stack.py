"""The provider under real Airflow 3: API server, scheduler, DAG processor and triggerer as separate processes.

One stack and one emulator serve every scenario (``conftest.py``). Runs are triggered through the REST API and
awaited with deadlines; each scenario marks its prompts, so its createTask count comes from the emulator's own
records. The scenarios run in file order and the canary scan runs last, over everything the others left behind.
"""

from __future__ import annotations

import json
import re
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from seedream_stack import (
    E2E_FIGURES,
    E2E_READ_TIMEOUT,
    E2E_SCALE_BUDGET,
    AirflowStack,
    EmulatorProcess,
    RunResult,
    task_processes,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

RUN_TIMEOUT = 120.0
EXAMPLE = "example_seedream_edit"
# Trigger kwargs read from the metadata DB while triggers were live (they are deleted once they fire).
TRIGGER_SNAPSHOTS: list[dict[str, Any]] = []


class Scenario:
    """One scenario's view of the emulator: a marker for its prompts, and counter deltas since it began."""

    def __init__(self, name: str, kie: EmulatorProcess, stack: AirflowStack) -> None:
        self.name = name
        self.kie = kie
        self.stack = stack
        self.marker = f"{name}-{uuid.uuid4().hex[:8]}"
        self.before = kie.stats()
        self.started = time.monotonic()
        self.injected: list[dict[str, Any]] = []
        self.figures: dict[str, Any] = E2E_FIGURES["scenarios"].setdefault(name, {})

    def prompt(self, directive: str = "") -> str:
        text = f"Put the product on a white marble table (scenario {self.marker})"
        return f"{text} [emulator: {directive}]" if directive else text

    def task_ids(self) -> list[str]:
        """The kie tasks created with this scenario's prompts, oldest first."""
        stats = self.kie.stats()
        return [tid for tid in stats["created_task_ids"]
                if self.marker in ((stats["tasks"][tid].get("input") or {}).get("prompt") or "")]

    def delta(self, endpoint: str) -> int:
        return self.kie.stats()["requests"][endpoint] - self.before["requests"][endpoint]

    def inject(self, endpoint: str, faults: list[dict[str, Any]]) -> None:
        self.kie.faults(endpoint, faults)
        self.injected += [f for f in faults if not (f["kind"] == "delay" and f["seconds"] == 0)]

    def faults_served(self, endpoint: str = "recordInfo") -> int:
        now = self.kie.stats()["faults_served"].get(endpoint, {})
        was = self.before["faults_served"].get(endpoint, {})
        return sum(now.values()) - sum(was.values())

    def finish(self, **figures: Any) -> None:
        self.figures.update(createTask=self.delta("createTask"), recordInfo=self.delta("recordInfo"), **figures,
                            seconds=round(time.monotonic() - self.started, 1))


@pytest.fixture
def scenario(request, kie, stack) -> Scenario:
    name = request.node.name.removeprefix("test_")
    return Scenario(re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-"), kie, stack)


def ti_state(stack: AirflowStack, dag_id: str, run_id: str, task_id: str) -> str | None:
    return stack.task_instance(dag_id, run_id, task_id)["state"]


def snapshot_triggers(stack: AirflowStack) -> list[dict[str, Any]]:
    rows = [row for row in stack.trigger_rows() if row["classpath"].startswith("airflow_provider_seedream.")]
    TRIGGER_SNAPSHOTS.extend(row for row in rows if row not in TRIGGER_SNAPSHOTS)
    return rows


def log_events(text: str) -> list[str]:
    """The ``event`` of every JSON log line (Airflow 3 task and trigger logs are JSON lines)."""
    events = []
    for line in text.splitlines():
        try:
            events.append(str(json.loads(line).get("event", "")))
        except ValueError:
            events.append(line)
    return events


def trigger_logs(stack: AirflowStack, dag_id: str, run_id: str, task_id: str) -> list[Path]:
    return [p for p in stack.task_log_files(dag_id, run_id, task_id) if ".trigger." in p.name]


# ------------------------------------------------------------------------------------------------------ happy path
def test_example_dag_defers_to_the_triggerer_and_succeeds(stack, kie, scenario, e2e_root):
    """The example DAG, triggered through the REST API: edit, a sensor that really defers and stores the image under
    its output_path when it resumes, a report task that receives the stored URIs."""
    # The kie task ends on its 8th status query, so the trigger (0.5 s polls) fires seconds after the deferral,
    # however slow the machine: Airflow 3.3.2 can fail a task whose trigger fires before the scheduler has seen
    # the deferring worker exit (apache/airflow#72716), which is not what this test is about.
    run_id = stack.trigger(EXAMPLE, {"prompt": scenario.prompt("polls=8"), "aspect_ratio": "16:9"})

    def on_poll(tis: dict[str, dict[str, Any]]) -> None:
        if tis.get("wait", {}).get("state") == "deferred":
            snapshot_triggers(stack)

    result = stack.wait_for_run(EXAMPLE, run_id, RUN_TIMEOUT, on_poll=on_poll)
    assert result.state == "success", result
    (task_id,) = scenario.task_ids()

    # Deferral proof, three ways: the state the API showed, the trigger row, and the log the triggerer wrote.
    assert "deferred" in result.seen_states["wait"], result.seen_states
    # Storing is left for a worker: the sensor resumed after the trigger fired (one try, no retry needed).
    assert result.seen_states["wait"][-1] == "success" and result.seen_states["wait"].index("deferred") < \
        len(result.seen_states["wait"]) - 1, result.seen_states
    assert any(task_id in row["kwargs_json"] for row in TRIGGER_SNAPSHOTS), "no trigger row seen while deferred"
    (trigger_log,) = trigger_logs(stack, EXAMPLE, run_id, "wait")
    events = log_events(trigger_log.read_text())
    assert f"Waiting for Seedream task {task_id} (poll interval 0.5 s)" in events
    assert any(e.startswith(f"Seedream task {task_id}: ") and "-> success after" in e for e in events), events
    assert any("Trigger fired event" in e for e in events)
    assert result.tries == {"edit": 1, "wait": 1, "report": 1}

    # What the DAG produced: the result URL in XCom, the image on disk.
    urls = stack.get(f"/dags/{EXAMPLE}/dagRuns/{run_id}/taskInstances/wait/xcomEntries/return_value")["value"]
    assert urls == [f"{kie.url}/results/{task_id}/0.png"]
    stored = stack.get(f"/dags/{EXAMPLE}/dagRuns/{run_id}/taskInstances/report/xcomEntries/return_value")["value"]
    images = [Path(uri.removeprefix("file://")) for uri in stored]
    assert len(images) == 1 and images[0].parent.name == "wait" and images[0].name == "image-0.png", stored
    assert images[0].is_relative_to(e2e_root / "output" / EXAMPLE)
    from PIL import Image

    with Image.open(images[0]) as image:  # the run's conf reached kie: a 16:9 result
        assert image.width / image.height == pytest.approx(16 / 9, rel=0.02)
    assert scenario.delta("createTask") == 1
    scenario.finish(dag=EXAMPLE, run_seconds=round(result.seconds, 1),
                    wait_states="->".join(result.seen_states["wait"]))


# ---------------------------------------------------------------------------------------------- transient faults
SYNC_FAULTS = [{"kind": "reset"}]
PASS = {"kind": "delay", "seconds": 0}  # answers normally: resets the consecutive-error count between bursts
ASYNC_FAULTS = [
    {"kind": "http", "status": 429, "retry_after": 1},
    {"kind": "body", "code": 429},
    {"kind": "body", "code": 455},
    PASS,
    {"kind": "http", "status": 500},
    {"kind": "http", "status": 502},
    {"kind": "reset"},
    PASS,
    # A gateway error whose msg repeats the Authorization header: tolerated like any 500, and the key it echoes
    # must reach no log, event or table (the canary scan at the end proves it).
    {"kind": "echo_key"},
    # Longer than the connection's read timeout (extra "timeout", 5 s in this stack): the poll times out, and the
    # next one succeeds.
    {"kind": "delay", "seconds": E2E_READ_TIMEOUT + 1},
]


def test_transient_faults_while_waiting_are_survived_with_one_create_task(stack, kie, scenario):
    """429 + Retry-After, body 429, 455, 500, 502, a reset and a read timeout on recordInfo: the DAG succeeds."""
    # Queued up front, consumed in order: the first recordInfo is the sensor's one check before it defers
    # (requests, in the worker); all later ones are the trigger's polls (httpx, in the triggerer).
    scenario.inject("recordInfo", SYNC_FAULTS + ASYNC_FAULTS)
    # The kie task ends on its 4th answered poll (the two pass-throughs, the timed-out one, the next): it is still
    # generating through every fault, so only surviving all of them lets the DAG succeed.
    run_id = stack.trigger(EXAMPLE, {"prompt": scenario.prompt("polls=4")})
    result = stack.wait_for_run(EXAMPLE, run_id, RUN_TIMEOUT)
    assert "deferred" in result.seen_states["wait"], result.seen_states
    assert result.state == "success", result
    assert kie.stats()["faults_pending"].get("recordInfo", 0) == 0
    assert scenario.faults_served() == len(SYNC_FAULTS) + len(ASYNC_FAULTS)
    (task_id,) = scenario.task_ids()
    assert scenario.delta("createTask") == 1
    assert result.tries["wait"] == 1

    worker = log_events(stack.task_log(EXAMPLE, run_id, "wait"))
    assert any(e.startswith(f"transient error 1/5 while waiting for Seedream task {task_id}: recordInfo: no answer")
               for e in worker), worker
    (trigger_log,) = trigger_logs(stack, EXAMPLE, run_id, "wait")
    notes = [e for e in log_events(trigger_log.read_text()) if e.startswith("transient error")]
    assert len(notes) == len(ASYNC_FAULTS) - 2, notes  # every fault but the two pass-throughs
    for fragment in ("answered 429", "answered 455", "answered 500", "answered 502", "within 5 s",
                     "(Authorization: Bearer ***)"):
        assert any(fragment in note for note in notes), (fragment, notes)
    # Retry-After: 1 is honoured: the wait after the HTTP 429 is at least a second.
    after_429 = float(re.search(r"trying again in ([\d.]+) s", notes[0]).group(1))
    assert after_429 >= 1.0, notes[0]
    codes = {code: n - scenario.before["responses"].get("recordInfo", {}).get(code, 0)
             for code, n in kie.stats()["responses"]["recordInfo"].items()}
    survived = scenario.faults_served() - sum(f is PASS for f in ASYNC_FAULTS)
    assert survived == len(scenario.injected)
    scenario.finish(faults_injected=len(scenario.injected), faults_survived=survived,
                    kinds="reset(sync),429+Retry-After,body429,body455,500,502,reset,read-timeout",
                    recordInfo_codes=codes)


# ----------------------------------------------------------------------------------------------- triggerer crash
def test_triggerer_killed_while_deferred_then_restarted(stack, kie, scenario):
    """SIGKILL the triggerer while the sensor is deferred; the task finishes meanwhile; a new triggerer delivers."""
    # Long enough for the sensor to defer first; short enough to end while no triggerer is alive.
    run_id = stack.trigger(EXAMPLE, {"prompt": scenario.prompt("seconds=15")})

    def trigger_running() -> bool:
        if ti_state(stack, EXAMPLE, run_id, "wait") != "deferred":
            return False
        rows = snapshot_triggers(stack)
        logs = trigger_logs(stack, EXAMPLE, run_id, "wait")
        return bool(rows and rows[0]["triggerer_id"] and logs and "Waiting for Seedream task" in logs[0].read_text())

    wait_for(trigger_running, 60, "the trigger to run in the triggerer", on_timeout=stack.diagnostics)
    (task_id,) = scenario.task_ids()
    first_triggerer = stack.trigger_rows()[0]["triggerer_id"]
    killed = stack.kill_triggerer()

    # The remote task ends while no triggerer is alive; nothing may be lost or resubmitted meanwhile.
    wait_for(lambda: kie.stats()["tasks"][task_id]["state"] == "success", 30, "the kie task to finish")
    assert ti_state(stack, EXAMPLE, run_id, "wait") == "deferred"
    stack.start_component("triggerer")
    result = stack.wait_for_run(EXAMPLE, run_id, RUN_TIMEOUT)
    assert result.state == "success", result
    assert scenario.delta("createTask") == 1 and scenario.task_ids() == [task_id]
    assert result.tries["wait"] == 1

    logs = trigger_logs(stack, EXAMPLE, run_id, "wait")
    assert len(logs) == 2, logs  # one log per triggerer job that ran the trigger
    (killed_log,) = [p for p in logs if f".trigger.{first_triggerer}." in p.name]
    (restarted_log,) = [p for p in logs if p != killed_log]
    first, second = log_events(killed_log.read_text()), log_events(restarted_log.read_text())
    assert f"Waiting for Seedream task {task_id} (poll interval 0.5 s)" in first
    assert not any("-> success" in e for e in first), first  # the killed triggerer never saw the end
    assert any(e.startswith(f"Seedream task {task_id}: ") and "-> success" in e for e in second), second
    scenario.finish(killed_pids=len(killed), triggerer_starts=stack.components["triggerer"].starts,
                    run_seconds=round(result.seconds, 1))


# ------------------------------------------------------------------------------------------------- worker crash
@pytest.mark.parametrize(
    "victim, seconds",
    [
        # The task process dies (OOM killer, segfault): its supervisor reports the failure and the retry comes
        # within seconds, while the kie task is still generating.
        ("task-process", 8),
        # The whole worker dies (supervisor and task): only the missing heartbeat tells the scheduler, after
        # [scheduler] task_instance_heartbeat_timeout (10 s here); by then the kie task has succeeded.
        ("whole-worker", 4),
    ],
)
def test_worker_killed_after_create_task_reattaches_on_retry(stack, kie, scenario, victim, seconds):
    from airflow_provider_seedream.version_compat import AIRFLOW_V_3_3_PLUS

    dag_id = "e2e_seedream_reattach"
    run_id = stack.trigger(dag_id, {"prompt": scenario.prompt(f"seconds={seconds}")})

    def waiting_on_kie() -> dict[str, Any] | None:
        ti = stack.task_instance(dag_id, run_id, "edit")
        # A recordInfo after the createTask means the task id is already in task_state_store (set before waiting).
        if ti["state"] == "running" and len(scenario.task_ids()) == 1 and scenario.delta("recordInfo") >= 1:
            return ti
        return None

    ti = wait_for(waiting_on_kie, 60, "the operator to wait on its kie task", on_timeout=stack.diagnostics)
    (task_id,) = scenario.task_ids()
    def found() -> tuple[psutil.Process | None, psutil.Process | None] | None:
        runner, supervisor = procs = task_processes(ti["id"])
        return procs if runner and (supervisor or victim == "task-process") else None

    runner, supervisor = wait_for(found, 10, "the task's processes")
    victims = [runner] if victim == "task-process" else [supervisor, runner]
    for proc in victims:
        proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(victims, timeout=10)
    killed_at = time.monotonic()
    wait_for(lambda: ti_state(stack, dag_id, run_id, "edit") in ("up_for_retry", "queued", "scheduled")
             or stack.task_instance(dag_id, run_id, "edit")["try_number"] == 2, 60, "the retry",
             interval=0.1)
    retry_seen_after = time.monotonic() - killed_at

    result = stack.wait_for_run(dag_id, run_id, RUN_TIMEOUT)
    assert result.state == "success", result
    assert result.tries["edit"] == 2, result
    retry_log = log_events(stack.task_log_files(dag_id, run_id, "edit")[-1].read_text())
    if AIRFLOW_V_3_3_PLUS:
        assert scenario.delta("createTask") == 1 and scenario.task_ids() == [task_id]
        assert any(e.startswith(f"Re-attaching to Seedream task {task_id} submitted by a previous try") and
                   "not paying twice" in e for e in retry_log), retry_log
    else:  # no task_state_store: the retry pays again, and the first try said so
        assert scenario.delta("createTask") == 2
        assert "retry submits and pays for a second edit" in stack.task_log(dag_id, run_id, "edit")
    attach_state = next((m.group(1) for e in retry_log if (m := re.search(r"Re-attaching .*\(state (\w+)\)", e))),
                        None)
    scenario.finish(killed=f"{len(victims)} process(es)", failure_noticed_after_s=round(retry_seen_after, 1),
                    run_finished_after_kill_s=round(time.monotonic() - killed_at, 1),
                    tries=result.tries["edit"], reattached_in_state=attach_state)


# ------------------------------------------------------------------------------------------------ remote failure
def test_remote_failure_fails_the_task_with_kie_message_and_no_retry(stack, kie, scenario):
    dag_id = "e2e_seedream_wait"  # the sensor has retries=2
    prompt = scenario.prompt("outcome=fail, fail_code=422, fail_msg=Image rejected by the content filter, polls=8")
    run_id = stack.trigger(dag_id, {"prompt": prompt})
    result = stack.wait_for_run(dag_id, run_id, RUN_TIMEOUT)
    assert result.state == "failed" and result.task_states == {"edit": "success", "wait": "failed"}, result
    assert "deferred" in result.seen_states["wait"]
    assert result.tries["wait"] == 1 and "up_for_retry" not in result.seen_states["wait"], result
    (task_id,) = scenario.task_ids()
    log = stack.task_log(dag_id, run_id, "wait")
    expected = f"Seedream task {task_id} failed: failCode=422 failMsg=Image rejected by the content filter"
    assert expected in log and "SeedreamTaskFailedError" in log
    assert scenario.delta("createTask") == 1
    scenario.finish(tries=result.tries["wait"], retries_configured=2, error=expected)


# --------------------------------------------------------------------------------------------- malformed answers
MALFORMED_OUTCOMES = {
    "bad_result_json": "resultJson is not JSON",
    "empty": "succeeded but returned no result URLs",
    "unknown_state": "unknown state 'paused'",
}
MALFORMED_FAULTS = {
    "not_json": "with a body that is not a JSON object",
    "missing_data": "answered code 200 without 'data'",
}


def _assert_typed_failure(stack: AirflowStack, result: RunResult, fragment: str) -> str:
    assert result.state == "failed" and result.task_states["wait"] == "failed", result
    log = stack.task_log(result.dag_id, result.run_id, "wait")
    assert fragment in log, (fragment, log[-3000:])
    assert "SeedreamResponseError" in log
    assert "KeyError" not in log and "TypeError" not in log
    return fragment


def test_malformed_answers_fail_with_a_typed_error_not_a_hang(stack, kie, scenario):
    dag_id = "e2e_seedream_malformed"
    runs = {outcome: stack.trigger(dag_id, {"prompt": scenario.prompt(f"outcome={outcome}, polls=8")})
            for outcome in MALFORMED_OUTCOMES}
    results = {outcome: stack.wait_for_run(dag_id, run_id, 60) for outcome, run_id in runs.items()}
    for outcome, fragment in MALFORMED_OUTCOMES.items():
        _assert_typed_failure(stack, results[outcome], fragment)

    # Garbage answers from a proxy in front of kie: each of the two runs' first status query gets one.
    scenario.inject("recordInfo", [{"kind": kind} for kind in MALFORMED_FAULTS])
    fault_runs = [stack.trigger(dag_id, {"prompt": scenario.prompt("seconds=4")}) for _ in MALFORMED_FAULTS]
    fault_results = [stack.wait_for_run(dag_id, run_id, 60) for run_id in fault_runs]
    seen = set()
    for result in fault_results:
        log = stack.task_log(dag_id, result.run_id, "wait")
        (fragment,) = [f for f in MALFORMED_FAULTS.values() if f in log]
        seen.add(_assert_typed_failure(stack, result, fragment))
    assert seen == set(MALFORMED_FAULTS.values())
    assert scenario.faults_served() == len(MALFORMED_FAULTS)
    assert scenario.delta("createTask") == len(runs) + len(fault_runs) == len(scenario.task_ids())
    slowest = max(r.seconds for r in [*results.values(), *fault_results])
    scenario.finish(runs=len(runs) + len(fault_runs), createTask_per_run=1, faults_injected=len(scenario.injected),
                    slowest_run_s=round(slowest, 1), answers=",".join([*MALFORMED_OUTCOMES, *MALFORMED_FAULTS]))


# ------------------------------------------------------------------------------------------------------ deadline
def test_task_that_never_finishes_times_out_naming_the_kie_task(stack, kie, scenario):
    dag_id = "e2e_seedream_deadline"  # sensor timeout=5 s, retries=2
    run_id = stack.trigger(dag_id, {"prompt": scenario.prompt("outcome=never")})
    result = stack.wait_for_run(dag_id, run_id, RUN_TIMEOUT)
    assert result.state == "failed" and result.task_states["wait"] == "failed", result
    assert "deferred" in result.seen_states["wait"]
    assert result.tries["wait"] == 1 and "up_for_retry" not in result.seen_states["wait"], result
    (task_id,) = scenario.task_ids()
    log = stack.task_log(dag_id, run_id, "wait")
    assert f"Seedream task {task_id} did not finish before the deadline" in log
    assert "SeedreamTimeoutError" in log
    ti = stack.task_instance(dag_id, run_id, "wait")
    assert ti["duration"] < 60, ti  # the trigger's own 5 s deadline, not the deferral's 125 s backstop
    assert scenario.delta("createTask") == 1
    scenario.finish(sensor_timeout_s=5, task_duration_s=round(ti["duration"], 1))


# ------------------------------------------------------------------------------ many waits, one shared budget
FANOUT = "e2e_seedream_fanout"
FANOUT_COUNT = 16


def test_a_mapped_fan_out_keeps_the_poll_budget_in_the_real_triggerer(stack, kie, scenario):
    """16 mapped deferrable sensors wait in one real triggerer at once, on a connection with a budget of 2 queries/s.

    On their own clocks (0.5 s) they would ask 32 times a second; sharing the triggerer's one budget for the key,
    no second after they have all deferred holds more than the budget (one more allowed for arrival jitter at the
    emulator), kie (its limits switched on) refuses none of those queries, and every edit is found, once submitted.
    Before deferring, each sensor asks once from its worker; those checks are not budgeted across processes, and
    when eight workers start in the same second kie may refuse one of them, or one of the triggerer's first queries
    while its 1-second window still holds them: counted until that window has passed, and harmless (a 429 is
    transient: the sensor defers all the same, the triggerer's budget pauses for the Retry-After).
    """
    kie.configure(rate_limits=True)
    try:
        run_id = stack.trigger(FANOUT, {"prompt": scenario.prompt("seconds=30"), "count": FANOUT_COUNT})

        def all_deferred() -> float | None:
            waits = [ti for ti in stack.task_instances(FANOUT, run_id) if ti["task_id"] == "wait"]
            if len(waits) == FANOUT_COUNT and all(ti["state"] == "deferred" for ti in waits):
                return time.time()
            return None

        deferred_at = wait_for(all_deferred, 90, "every mapped sensor to be deferred at once", interval=0.2,
                               on_timeout=stack.diagnostics)
        time.sleep(1.0)  # kie's window: from here on it holds none of the workers' checks
        at_deferral = kie.stats()
        result = stack.wait_for_run(FANOUT, run_id, RUN_TIMEOUT)
        ended_at = time.time()
    finally:
        kie.configure(rate_limits=False)
    assert result.state == "success", result

    stats = kie.stats()
    per_second = {int(second): n for second, n in stats["per_second"]["recordInfo"].items()}
    # From the first whole second after the last sensor deferred: only the triggerer asks about these tasks now.
    window = [per_second.get(second, 0) for second in range(int(deferred_at) + 1, int(ended_at) + 1)]
    assert len(window) >= 10, window
    assert max(window) <= E2E_SCALE_BUDGET + 1, window
    assert sum(window) <= E2E_SCALE_BUDGET * len(window) + 1, window
    refused_while_deferred = stats["rate_limited"]["recordInfo"] - at_deferral["rate_limited"]["recordInfo"]
    refused_before = at_deferral["rate_limited"]["recordInfo"] - scenario.before["rate_limited"]["recordInfo"]
    assert refused_while_deferred == 0
    assert refused_before <= 2 * FANOUT_COUNT  # at most the workers' one check each and the triggers' first
    assert len(scenario.task_ids()) == FANOUT_COUNT == scenario.delta("createTask")
    # Nothing was left for a worker (no output_path, no outlets): the triggerer ended every sensor, with no resume on a
    # worker, so no apache/airflow#72716 race; each wait ran on a worker once (its check before deferring).
    wait_logs = [p for p in stack.task_log_files(FANOUT, run_id, "wait") if p.is_file()]
    trigger_text = "".join(p.read_text(errors="replace") for p in wait_logs if ".trigger." in p.name)
    worker_text = "".join(p.read_text(errors="replace") for p in wait_logs if ".trigger." not in p.name)
    assert trigger_text.count("Ended the Airflow task in the triggerer") == FANOUT_COUNT
    assert worker_text.count("DAG bundles loaded") == FANOUT_COUNT
    waits = [ti for ti in stack.task_instances(FANOUT, run_id) if ti["task_id"] == "wait"]
    assert sorted(ti["map_index"] for ti in waits) == list(range(FANOUT_COUNT))
    assert {ti["state"] for ti in waits} == {"success"}
    # The event loop was never blocked while these triggers ran (Airflow's own start-up may block it on a loaded
    # machine, with no trigger running: that is not ours to judge).
    assert blocked_while(stack.component_log("triggerer"), deferred_at, ended_at) == []
    scenario.finish(sensors_deferred_at_once=FANOUT_COUNT, budget_per_second=E2E_SCALE_BUDGET,
                    deferred_phase_seconds=len(window), most_queries_in_a_second=max(window),
                    queries_while_deferred=sum(window), refused_while_deferred=refused_while_deferred,
                    refused_before_window_cleared=refused_before)


# ---------------------------------------------------------------------------------------------- batch
BATCH = "e2e_seedream_batch"
BATCH_COUNT = 6


def test_a_batch_whose_worker_is_killed_mid_submit_finishes_on_retry_without_a_duplicate(stack, kie, scenario,
                                                                                       e2e_root):
    """A batch of 6 edits submits at 2 per 10 s (its connection's pace); the whole worker (supervisor and task
    process) is killed by SIGKILL after the third createTask, in the pause before the fourth. The retry re-attaches to
    the three accepted edits (task_state_store), submits the other three, waits for all six in one deferral and
    stores every image: six createTask in all, one kie task per edit."""
    from airflow_provider_seedream.version_compat import AIRFLOW_V_3_3_PLUS

    run_id = stack.trigger(BATCH, {"prompt": scenario.prompt("seconds=3"), "count": BATCH_COUNT})

    def three_submitted() -> dict[str, Any] | None:
        ti = stack.task_instance(BATCH, run_id, "batch")
        return ti if ti["state"] == "running" and len(scenario.task_ids()) >= 3 else None

    ti = wait_for(three_submitted, 90, "the batch to submit three edits", interval=0.1,
                  on_timeout=stack.diagnostics)
    time.sleep(1.0)  # the third id is recorded by now; the fourth leaves about 5 s after the third

    def found() -> tuple[psutil.Process, psutil.Process] | None:
        runner, supervisor = task_processes(ti["id"])
        return (runner, supervisor) if runner and supervisor else None

    victims = list(wait_for(found, 10, "the batch's processes"))
    submitted_before_kill = len(scenario.task_ids())
    for proc in victims:
        proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(victims, timeout=10)
    killed_at = time.monotonic()

    result = stack.wait_for_run(BATCH, run_id, 180)
    assert result.state == "success", result
    assert result.tries["batch"] == 2, result
    outcomes = stack.get(f"/dags/{BATCH}/dagRuns/{run_id}/taskInstances/batch/xcomEntries/return_value")["value"]
    if isinstance(outcomes, str):
        outcomes = json.loads(outcomes)
    assert [o["state"] for o in outcomes] == ["success"] * BATCH_COUNT
    created = scenario.task_ids()
    prompts = [kie.stats()["tasks"][tid]["input"]["prompt"] for tid in created]
    if AIRFLOW_V_3_3_PLUS:
        assert scenario.delta("createTask") == BATCH_COUNT == len(created), prompts
        assert len(set(prompts)) == BATCH_COUNT  # one kie task per edit: nothing paid twice
        assert [o["task_id"] for o in outcomes] == created  # input order is submit order
        worker_logs = [p for p in stack.task_log_files(BATCH, run_id, "batch") if ".trigger." not in p.name]
        retry_log = " ".join(log_events(worker_logs[-1].read_text()))
        assert f"{submitted_before_kill} accepted by a previous try" in retry_log, retry_log[-2000:]
    for index, outcome in enumerate(outcomes):
        (stored,) = outcome["stored_images"]
        assert stored.endswith(f"/batch/edit-{index}_image-0.png"), stored
        assert Path(stored.removeprefix("file://")).stat().st_size > 0
    scenario.finish(edits=BATCH_COUNT, submitted_before_kill=submitted_before_kill, tries=result.tries["batch"],
                    run_finished_after_kill_s=round(time.monotonic() - killed_at, 1))


# ---------------------------------------------------------------------------------------------- secret canary
def _count(haystack: bytes, needle: bytes) -> int:
    return haystack.count(needle)


def test_canary_key_is_nowhere_in_db_logs_or_xcom(stack, kie, api_key, e2e_root):
    """Runs last: every table of the metadata DB, every log file and every XCom, scanned for the canary key."""
    key = api_key.encode()
    control = scenario_task_id = kie.stats()["created_task_ids"][0]  # proves the scan reads the right places
    stats = kie.stats()
    # Positive control: the emulator accepts only the canary, so every request it served carried it.
    assert stats["auth_keys_seen_count"] == 1 and stats["auth_failures"] == 0
    assert stats["requests"]["createTask"] >= 1

    hits: dict[str, int] = {}
    control_hits = 0

    # 1. The database files, byte for byte (main file, WAL and shared memory).
    db_files = sorted(stack.home.glob("airflow.db*"))
    for path in db_files:
        data = path.read_bytes()
        hits[str(path.name)] = _count(data, key)
        control_hits += _count(data, control.encode())

    # 2. Every row of every table, as the DB returns it.
    tables = [name for (name,) in stack.query("SELECT name FROM sqlite_master WHERE type = 'table'")]
    rows = 0
    for table in tables:
        for row in stack.query(f'SELECT * FROM "{table}"'):
            rows += 1
            for value in row:
                blob = value if isinstance(value, bytes) else str(value).encode()
                if key in blob:
                    hits[f"table {table}"] = hits.get(f"table {table}", 0) + _count(blob, key)
    # Trigger kwargs are Fernet-encrypted and deleted once fired: the decrypted snapshots taken while live.
    assert TRIGGER_SNAPSHOTS, "no trigger row was captured while a sensor was deferred"
    for snapshot in TRIGGER_SNAPSHOTS:
        kwargs = json.loads(snapshot["kwargs_json"])
        hits["trigger kwargs"] = hits.get("trigger kwargs", 0) + _count(snapshot["kwargs_json"].encode(), key)
        assert "seedream_conn_id" in snapshot["kwargs_json"] and "password" not in snapshot["kwargs_json"], kwargs

    # 3. Every file the stack and the emulator wrote: task, trigger, DAG-processor and component logs, config.
    files = [p for p in stack.home.rglob("*") if p.is_file() and not p.name.startswith("airflow.db")]
    files += [e2e_root / "emulator.log"]
    log_files = 0
    for path in files:
        data = path.read_bytes()
        log_files += path.suffix == ".log" or ".log" in path.name
        if key in data:
            hits[str(path.relative_to(e2e_root))] = _count(data, key)
        control_hits += _count(data, control.encode())

    # 4. Every XCom of every run, through the REST API.
    xcoms = stack.get("/dags/~/dagRuns/~/taskInstances/~/xcomEntries", params={"limit": 1000})["xcom_entries"]
    for entry in xcoms:
        value = stack.get(f"/dags/{entry['dag_id']}/dagRuns/{entry['run_id']}/taskInstances/{entry['task_id']}"
                          f"/xcomEntries/{entry['key']}", params={"map_index": entry["map_index"]})
        if key in json.dumps(value).encode():
            hits[f"xcom {entry['dag_id']}/{entry['task_id']}/{entry['key']}"] = 1

    total = sum(hits.values())
    E2E_FIGURES["scenarios"]["canary"] = {
        "hits": total, "db_files": len(db_files), "tables": len(tables), "rows": rows,
        "trigger_kwargs_snapshots": len(TRIGGER_SNAPSHOTS), "files": len(files), "log_files": log_files,
        "xcoms": len(xcoms), "control_hits": control_hits,
    }
    assert control_hits > 0, f"the scan never saw kie task {scenario_task_id}: it is not reading what it should"
    assert total == 0, {k: v for k, v in hits.items() if v}


def blocked_while(log: str, start: float, end: float) -> list[str]:
    """The triggerer's "async thread was blocked" lines stamped between ``start`` and ``end`` (epoch seconds)."""
    from datetime import datetime

    found = []
    for line in log.splitlines():
        if "async thread was blocked" not in line:
            continue
        stamp = line.strip().split(" ", 1)[0]
        try:
            at = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            found.append(line)  # an unstamped line cannot be placed: count it
            continue
        if start <= at <= end:
            found.append(line)
    return found
