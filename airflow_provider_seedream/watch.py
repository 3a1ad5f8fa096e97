"""Many kie tasks watched from one worker process: one status query at a time, in the order they fall due, paced.

The blocking form of the batch's wait (``SeedreamHook.wait_for_tasks``) runs a ``TaskWatch`` until every task ended;
the batch operator also runs one in the pauses of its own submits (``run_for``), so that the edits submitted first
are seen done, and stored, while the later ones still wait for their place in kie's 20 per 10 s.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any, Protocol

from airflow_provider_seedream import waitstate, wire


class Observer(Protocol):
    """What a watch needs of the hook: one status query fed to a waiter (``SeedreamHook.observe``), and its log."""

    @property
    def log(self) -> Any: ...

    def observe(self, waiter: waitstate.Waiter, log: Any) -> waitstate.Step: ...


class TaskWatch:
    """Query kie about many tasks, each on its own poll schedule, never faster than ``rate`` queries per second.

    :param hook: sends the queries (``SeedreamHook.observe``: one query, no retries of its own).
    :param poll_interval: the base pause between queries of one task.
    :param rate: queries per second at most, for all the tasks together.
    :param deadline: absolute end of every task's wait, seconds since the epoch (a task still running then ends
        with a timeout event).
    :param on_end: called with a task's id and event as soon as that task's wait ends.
    :param sleep: how to pause (injected in tests).
    """

    def __init__(self, hook: Observer, *, poll_interval: float, rate: float, deadline: float = math.inf,
                 on_end: Callable[[str, waitstate.TaskEvent], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be a positive number of queries per second, got {rate!r}")
        self.hook = hook
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.gap = 1.0 / rate
        self.on_end = on_end
        self.sleep = sleep
        self.waiters: dict[str, waitstate.Waiter] = {}
        self.due: dict[str, float] = {}
        self.events: dict[str, waitstate.TaskEvent] = {}
        self._last_sent = -math.inf  # monotonic

    def add(self, task_id: str, *, started_at: float | None = None, first_query_at: float | None = None) -> None:
        """Watch ``task_id`` from now on.

        :param started_at: when its wait began (its submit), seconds since the epoch: the poll schedule and the
            not-yet-visible grace count from there. Default: now.
        :param first_query_at: when to ask about it first (default: as soon as the pace allows).
        """
        now = time.time()
        self.waiters[task_id] = waitstate.Waiter.start(
            wire.check_task_id(task_id), poll_interval=self.poll_interval, deadline=self.deadline,
            started_at=now if started_at is None else started_at)
        self.due[task_id] = now if first_query_at is None else first_query_at

    def retune(self, *, deadline: float, rate: float) -> None:
        """Set a new deadline for every task still watched, and a new pace for the queries from now on."""
        if not rate > 0:
            raise ValueError(f"rate must be a positive number of queries per second, got {rate!r}")
        self.deadline = deadline
        self.gap = 1.0 / rate
        for task_id in self.due:
            waiter = self.waiters[task_id]
            waiter.policy = dataclasses.replace(waiter.policy, deadline=deadline)

    @property
    def pending(self) -> list[str]:
        """The tasks still watched, in the order they were added."""
        return list(self.due)

    def run(self, until: float = math.inf, *, wait_out: bool = True) -> None:
        """Query the tasks as they fall due until every one has ended, or until the moment ``until`` (seconds since
        the epoch), whichever comes first; with tasks left, return at ``until`` and not before (unless ``wait_out``
        is false).

        A query is only started when it is due before ``until``; it may end a little after (one round trip).

        :param wait_out: when nothing (more) is due before ``until``, sleep until then (the default: the caller
            needs the pause anyway) or return at once.
        """
        while self.due:
            task_id = min(self.due, key=self.due.__getitem__)
            now = time.time()
            pause = max(0.0, self.due[task_id] - now, self._last_sent + self.gap - time.monotonic())
            if now + pause >= until:
                break
            if pause > 0:
                self.sleep(pause)
            self._last_sent = time.monotonic()
            step = self.hook.observe(self.waiters[task_id], self.hook.log)
            if step.event is None:
                self.due[task_id] = time.time() + step.delay
                continue
            self.events[task_id] = step.event
            del self.due[task_id]
            if self.on_end is not None:
                self.on_end(task_id, step.event)
        rest = until - time.time()
        # Nothing (more) is due before ``until``: the caller still waits for it, unless told not to.
        if wait_out and math.isfinite(rest) and rest > 0:
            self.sleep(rest)

    def run_for(self, seconds: float) -> None:
        """Watch for ``seconds`` (a pause someone else needs, like the wait for a free createTask slot)."""
        self.run(until=time.time() + max(0.0, seconds))
