"""Trigger that waits, in the triggerer's event loop, for a Seedream task to finish."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent

from airflow_provider_seedream import aio, connection, results, waitstate, wire
from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream.hooks.seedream import SeedreamHook


async def wait_one(hook: SeedreamHook, settings: connection.ConnectionSettings, waiter: waitstate.Waiter,
                   deadline: float | None, log: Any,
                   shorten: Callable[[float], float] | None = None) -> waitstate.TaskEvent:
    """Drive ``waiter`` with queries sent through the process's shared client and poll budget until it ends.

    The one wait loop of the triggerer: a single task's trigger runs it once, a batch's trigger once per task.

    :param shorten: turns the schedule's pause into the one taken (the batch spreads its spare budget with it).
    """
    while True:
        outcome: wire.SeedreamTask | BaseException
        try:
            # When the budget is scarce, the tasks most likely finished are asked about first.
            rank = waitstate.likely_done_at(waiter.started_at, waiter.last_running_at, settings.typical_run_seconds)
            outcome = await hook.aget_task(waiter.task_id, priority=rank - time.time(), deadline=deadline)
        except exc.SeedreamError as error:
            outcome = error
        step = waiter.observe(outcome, time.time())
        if step.note:
            log.info("%s", step.note)
        if step.event is not None:
            return step.event
        await asyncio.sleep(shorten(step.delay) if shorten is not None else step.delay)


class _WaitSettings(BaseTrigger):
    """The wait settings every Seedream trigger carries, serialized as plain data (never the key).

    The wait settings (``seedream_conn_id``, ``poll_interval``, ``deadline``, ``started_at``, ``max_consecutive_errors``,
    ``not_found_grace``, ``min_event_delay``) are described on ``_WaitSettings``.
    """

    def __init__(
        self,
        seedream_conn_id: str = SeedreamHook.default_conn_name,
        poll_interval: float = 5.0,
        deadline: float | None = None,
        started_at: float | None = None,
        max_consecutive_errors: int = waitstate.DEFAULT_MAX_CONSECUTIVE_ERRORS,
        not_found_grace: float = waitstate.DEFAULT_NOT_FOUND_GRACE,
        min_event_delay: float = 0.0,
    ) -> None:
        super().__init__()
        self.seedream_conn_id = seedream_conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = float(deadline) if deadline is not None else None
        self.started_at = float(started_at) if started_at is not None else time.time()
        self.max_consecutive_errors = int(max_consecutive_errors)
        self.not_found_grace = float(not_found_grace)
        self.min_event_delay = float(min_event_delay)

    def _settings(self) -> dict[str, Any]:
        return {
            "seedream_conn_id": self.seedream_conn_id,
            "poll_interval": self.poll_interval,
            "deadline": self.deadline,
            "started_at": self.started_at,
            "max_consecutive_errors": self.max_consecutive_errors,
            "not_found_grace": self.not_found_grace,
            "min_event_delay": self.min_event_delay,
        }

    def _classpath(self) -> str:
        return f"{type(self).__module__}.{type(self).__qualname__}"

    def _waiter(self, task_id: str, started_at: float | None = None) -> waitstate.Waiter:
        return waitstate.Waiter.start(task_id, poll_interval=self.poll_interval,
                                      deadline=self.deadline if self.deadline is not None else math.inf,
                                      started_at=self.started_at if started_at is None else started_at,
                                      max_consecutive_errors=self.max_consecutive_errors,
                                      not_found_grace=self.not_found_grace)

    async def _hold_back(self, what: str) -> None:
        """Sleep until ``min_event_delay`` after ``started_at`` before yielding an event that resumes a task."""
        hold = self.started_at + self.min_event_delay - time.time()
        if hold > 0:
            self.log.info("%s; reporting it in %.1f s, once the deferring worker has surely exited "
                          "(apache/airflow#72716)", what, hold)
            await asyncio.sleep(hold)


class SeedreamTaskTrigger(_WaitSettings):
    """Poll kie.ai for one task until it succeeds, fails or the deadline passes, then yield exactly one event.

    Everything runs on the event loop without blocking it: the connection is read with the async lookup, requests go
    through the process-wide shared ``httpx.AsyncClient`` and poll budget for the key. ``serialize()`` holds plain
    data only (connection id, task id, poll settings, an absolute deadline), never the key.

    :param seedream_task_id: the kie task id.
    :param seedream_conn_id: the Airflow connection to read the key and base URL from.
    :param poll_interval: the base pause between queries, in seconds.
    :param deadline: absolute end of the wait, seconds since the epoch (wall clock, so that the budget does not
        restart when the trigger moves to another triggerer).
    :param started_at: when the wait began, seconds since the epoch (drives the poll schedule and the grace period
        for a task that is not visible yet).
    :param max_consecutive_errors: transient errors in a row tolerated before giving up.
    :param not_found_grace: seconds after ``started_at`` during which "recordInfo is null" means "not visible yet".
    :param min_event_delay: the earliest moment, in seconds after ``started_at``, the event may be yielded. Operators
        and sensors set it when they defer: on Airflow 3.3.2 an event that arrives before the scheduler has seen the
        deferring worker exit can fail the resumed task (apache/airflow#72716), and that window lasts about one
        worker heartbeat (``[workers] min_heartbeat_interval``, 5 s by default).
    :param end_from_trigger: end the Airflow task here when the kie task succeeds (``TaskSuccessEvent`` with the
        XComs a worker would push), instead of resuming it on a worker: for waits with nothing left to do on a
        worker (no ``output_path``, no outlets). No resume means no race with apache/airflow#72716 and one task run
        instead of two. Any other outcome still resumes on a worker, where it becomes a typed error and retries apply.
    :param returns: what the ended task returns: ``"result_urls"`` (the sensor) or ``"task_id"`` (the operator).
    """

    def __init__(
        self,
        seedream_task_id: str,
        seedream_conn_id: str = SeedreamHook.default_conn_name,
        *,
        end_from_trigger: bool = False,
        returns: str = results.RETURN_RESULT_URLS,
        **settings: Any,
    ) -> None:
        super().__init__(seedream_conn_id, **settings)
        self.seedream_task_id = seedream_task_id
        self.end_from_trigger = bool(end_from_trigger)
        self.returns = returns

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return self._classpath(), {"seedream_task_id": self.seedream_task_id, **self._settings(),
                                   "end_from_trigger": self.end_from_trigger, "returns": self.returns}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        task_id = self.seedream_task_id
        try:
            hook = SeedreamHook(self.seedream_conn_id)
            settings = await hook.aget_settings()
            waiter = self._waiter(task_id)
            self.log.info("Waiting for Seedream task %s (poll interval %.1f s)", task_id, self.poll_interval)
            # Hold one lease for the whole wait so that the shared client is not reopened between polls.
            async with aio.lease(settings):
                event = await wait_one(hook, settings, waiter, self.deadline, self.log)
        except Exception as error:  # CancelledError is a BaseException and passes through untouched
            self.log.exception("Trigger for Seedream task %s failed", task_id)
            event = waitstate.make_event(waitstate.EVENT_ERROR, task_id, f"trigger for Seedream task {task_id} failed: "
                                                                f"{type(error).__name__}: {error}", error=error)
        if self.end_from_trigger and event["status"] == waitstate.EVENT_SUCCESS:
            try:
                task = waitstate.resolve_event(event, task_id)  # checked like any event a worker would receive
            except exc.SeedreamError as error:  # a worker turns it into the typed error it stands for
                self.log.warning("Seedream task %s: the success event does not check out (%s); resuming on a worker",
                                 task_id, error)
            else:
                if await self._push_xcoms(results.end_xcoms(task, self.returns)):
                    yield self._end(task)
                    return
        await self._hold_back(f"Seedream task {task_id}: {event['status']}")
        yield TriggerEvent(dict(event))

    async def _push_xcoms(self, xcoms: dict[str, Any]) -> bool:
        """Push the XComs a worker would push, the way a worker pushes them; ``False`` (resume instead) if we can't.

        Not through ``TaskSuccessEvent(xcoms=...)``: on Airflow 3.1.8 and 3.3.2 the triggerer stores those with
        ``TaskInstance.xcom_push``, which JSON-encodes them a second time, so a downstream task pulls the text
        ``'["https://..."]'`` instead of the list (seen in this project's end-to-end test). The triggerer's own
        channel to its supervisor (``SetXCom``, as ``XCom.set`` sends it) stores them as a worker does. Outside a
        triggerer (``dag.test()`` runs triggers inline) there is no such channel, and the task resumes on a worker.
        """
        ti = getattr(self, "task_instance", None)
        try:
            from airflow.sdk.execution_time import task_runner
            from airflow.sdk.execution_time.comms import SetXCom
            from airflow.sdk.execution_time.xcom import XCom

            comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
            asend = getattr(comms, "asend", None)
            if ti is None or asend is None:
                self.log.info("No triggerer channel to push XComs through (dag.test() runs triggers inline): the "
                              "task resumes on a worker")
                return False
            where = {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id, "map_index": ti.map_index}
            for key, value in xcoms.items():
                # A custom XCom backend may upload the value somewhere: off the event loop.
                stored = await asyncio.to_thread(XCom.serialize_value, value=value, key=key, **where)
                await asend(SetXCom(key=key, value=stored, **where))
        except Exception as error:
            self.log.warning("Could not push the XComs of Seedream task %s from the triggerer (%s: %s); the task "
                             "resumes on a worker instead", self.seedream_task_id, type(error).__name__, error)
            return False
        return True

    def _end(self, task: wire.SeedreamTask) -> TaskSuccessEvent:
        """End the Airflow task here; its XComs are already pushed."""
        self.log.info("%s", results.describe_success(task))
        self.log.info("Ended the Airflow task in the triggerer: nothing is left to do on a worker (no output_path, "
                      "no outlets). The result URLs are in XCom 'result_urls' (temporary: about 24 h, sometimes much "
                      "less)")
        return TaskSuccessEvent()


#: The shortest pause between two queries of one task of a batch, when its spare budget is spread (below).
BATCH_MIN_PAUSE_SECONDS = 1.0


def spread_pause(delay: float, unfinished: int, polls_per_second: float) -> float:
    """Return the pause a batch's task takes: its schedule's ``delay``, shortened when the batch's unfinished tasks
    would leave the key's budget idle.

    The schedule stretches each task's pause as its wait grows, which is right when many tasks share the budget;
    at a batch's end only the few longest edits remain, and the whole Airflow task waits for the last of them. Then
    their queries are spread over the budget (``unfinished / polls_per_second`` apart), but never more often than
    once every ``BATCH_MIN_PAUSE_SECONDS`` each.
    """
    return min(delay, max(BATCH_MIN_PAUSE_SECONDS, unfinished / polls_per_second))


class SeedreamBatchTrigger(_WaitSettings):
    """Wait for many Seedream tasks in one deferral and yield one event with every task's outcome, in order.

    Each task is waited for as ``SeedreamTaskTrigger`` waits for one (same waiter, same shared client and poll
    budget for the key, so a batch of 500 asks kie no faster than the budget allows); when few remain, their
    queries share the spare budget (``spread_pause``), so the last edit is seen within about a second. The event is
    ``{"status": "done", "events": [<one wait event per task id, in the order given>]}``; the batch operator checks
    each like any wait event. ``serialize()`` holds plain data only (ids, connection id, poll settings), never the key.

    :param seedream_task_ids: the kie task ids, in the batch's order.
    :param submitted_at: when each task's wait began (its submit), seconds since the epoch, in the same order: each
        task's poll schedule counts from there, so the edits submitted first are asked about first when the budget
        is scarce. Default: ``started_at`` for all.
    :param deadline: absolute end of the wait for all of them, seconds since the epoch.
    The other wait settings are described on ``_WaitSettings``.
    """

    def __init__(
        self,
        seedream_task_ids: list[str],
        seedream_conn_id: str = SeedreamHook.default_conn_name,
        *,
        submitted_at: list[float] | None = None,
        **settings: Any,
    ) -> None:
        super().__init__(seedream_conn_id, **settings)
        self.seedream_task_ids = [wire.check_task_id(task_id) for task_id in seedream_task_ids]
        if submitted_at is not None and len(submitted_at) != len(self.seedream_task_ids):
            raise ValueError(f"submitted_at: one moment per task id expected ({len(self.seedream_task_ids)}), got "
                             f"{len(submitted_at)}")
        self.submitted_at = [float(moment) for moment in submitted_at] if submitted_at is not None else None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return self._classpath(), {"seedream_task_ids": list(self.seedream_task_ids),
                                   "submitted_at": list(self.submitted_at) if self.submitted_at is not None else None,
                                   **self._settings()}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        ids = self.seedream_task_ids
        events: list[waitstate.TaskEvent] = []
        try:
            hook = SeedreamHook(self.seedream_conn_id)
            settings = await hook.aget_settings()
            self.log.info("Waiting for %d Seedream task(s) (poll interval %.1f s)", len(ids), self.poll_interval)
            finished = 0

            async def one(task_id: str, started_at: float | None) -> waitstate.TaskEvent:
                nonlocal finished
                try:
                    event = await wait_one(hook, settings, self._waiter(task_id, started_at), self.deadline, self.log,
                                           lambda delay: spread_pause(delay, len(ids) - finished,
                                                                      settings.polls_per_second))
                except Exception as error:  # one task's trouble is that task's outcome, not the batch's
                    event = waitstate.make_event(waitstate.EVENT_ERROR, task_id, f"waiting for Seedream task {task_id} "
                                            f"failed: {type(error).__name__}: {error}", error=error)
                finished += 1
                self.log.info("Seedream task %s: %s (%d of %d finished)", task_id, event["status"], finished,
                              len(ids))
                return event

            async with aio.lease(settings):
                starts = self.submitted_at if self.submitted_at is not None else [None] * len(ids)
                events = list(await asyncio.gather(*(one(task_id, start) for task_id, start in zip(ids, starts))))
        except Exception as error:  # the connection could not be read: every task's wait failed the same way
            self.log.exception("Trigger for %d Seedream task(s) failed", len(ids))
            events = [waitstate.make_event(waitstate.EVENT_ERROR, task_id, f"trigger for Seedream task {task_id} failed: "
                                      f"{type(error).__name__}: {error}", error=error) for task_id in ids]
        await self._hold_back(f"{len(ids)} Seedream task(s) ended")
        yield TriggerEvent({"status": "done", "events": [dict(event) for event in events]})
