"""TaskWatch against the emulator: due order, the pace, returning at ``until``, retuned deadlines."""

from __future__ import annotations

import time

import pytest

from airflow_provider_seedream import request, uploads, waitstate
from airflow_provider_seedream.hooks.seedream import SeedreamHook
from airflow_provider_seedream.watch import TaskWatch


def submit(hook: SeedreamHook, emulator, prompt: str) -> str:
    return hook.submit_task(uploads.prepare(request.TaskRequest(prompt=prompt,
                                                                image_urls=[emulator.sample_url()])).task)


class Stamped:
    """The hook, with the moment each status query started noted (the watch's only seam is this protocol)."""

    def __init__(self, hook: SeedreamHook) -> None:
        self.hook = hook
        self.starts: list[tuple[float, str]] = []

    @property
    def log(self):
        return self.hook.log

    def observe(self, waiter: waitstate.Waiter, log) -> waitstate.Step:
        self.starts.append((time.monotonic(), waiter.task_id))
        return self.hook.observe(waiter, log)


def test_the_watch_runs_until_every_task_ended_and_reports_each_once(emulator):
    hook = SeedreamHook()
    ids = [submit(hook, emulator, f"[emulator: seconds={s}]") for s in (0.6, 0.2)]
    ended: list[tuple[str, str]] = []
    watch = TaskWatch(hook, poll_interval=0.1, rate=20, on_end=lambda task_id, event: ended.append(
        (task_id, event["status"])))
    for task_id in ids:
        watch.add(task_id)
    watch.run()
    assert watch.pending == []
    assert sorted(ended) == sorted((task_id, "success") for task_id in ids)
    assert ended[0][0] == ids[1]  # the shorter task is seen first
    assert set(watch.events) == set(ids)


def test_queries_never_come_faster_than_the_rate_for_all_tasks_together(emulator):
    hook = SeedreamHook()
    ids = [submit(hook, emulator, "[emulator: seconds=1.0]") for _ in range(3)]
    stamped = Stamped(hook)
    watch = TaskWatch(stamped, poll_interval=0.05, rate=10)
    for task_id in ids:
        watch.add(task_id)
    watch.run()
    gaps = [later - earlier for (earlier, _), (later, _) in zip(stamped.starts, stamped.starts[1:])]
    assert len(stamped.starts) >= 6 and min(gaps) >= 0.1 - 1e-3


def test_run_until_returns_at_that_moment_with_the_unfinished_tasks_still_watched(emulator):
    hook = SeedreamHook()
    task_id = submit(hook, emulator, "[emulator: seconds=30]")
    watch = TaskWatch(hook, poll_interval=0.1, rate=20)
    watch.add(task_id)
    until = time.time() + 0.5
    watch.run(until=until)
    assert time.time() >= until
    assert watch.pending == [task_id] and watch.events == {}
    assert emulator.count("recordInfo") >= 2


def test_a_task_is_not_asked_about_before_its_first_query_is_due(emulator):
    hook = SeedreamHook()
    task_id = submit(hook, emulator, "[emulator: seconds=0.1]")
    watch = TaskWatch(hook, poll_interval=0.1, rate=20)
    watch.add(task_id, first_query_at=time.time() + 60)
    watch.run_for(0.3)
    assert emulator.count("recordInfo") == 0 and watch.pending == [task_id]


def test_with_nothing_to_watch_run_for_still_waits_out_the_pause(emulator):
    slept: list[float] = []
    watch = TaskWatch(SeedreamHook(), poll_interval=1, rate=1, sleep=slept.append)
    watch.run_for(2.0)
    assert len(slept) == 1 and 1.9 < slept[0] <= 2.0


def test_without_wait_out_run_returns_as_soon_as_nothing_more_is_due_before_until(emulator):
    hook = SeedreamHook()
    task_id = submit(hook, emulator, "[emulator: seconds=30]")
    slept: list[float] = []
    watch = TaskWatch(hook, poll_interval=5, rate=20, sleep=slept.append)
    watch.add(task_id)
    watch.run(until=time.time() + 2.0, wait_out=False)  # asked once; the next query is due after ``until``
    assert slept == [] and watch.pending == [task_id] and emulator.count("recordInfo") == 1


def test_a_retuned_deadline_ends_the_waits_still_running_with_a_timeout(emulator):
    hook = SeedreamHook()
    task_id = submit(hook, emulator, "[emulator: seconds=30]")
    watch = TaskWatch(hook, poll_interval=0.1, rate=20)
    watch.add(task_id)
    watch.run_for(0.2)
    watch.retune(deadline=time.time() + 0.3, rate=20)
    watch.run()
    assert watch.events[task_id]["status"] == waitstate.EVENT_TIMEOUT
    assert task_id in watch.events[task_id]["message"]


def test_the_rate_must_be_positive():
    with pytest.raises(ValueError, match="rate must be a positive"):
        TaskWatch(SeedreamHook(), poll_interval=1, rate=0)
