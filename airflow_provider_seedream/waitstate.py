"""The wait for one task, as a state machine: its policy, each query's outcome, and the event it ends with.

Pure: the hook's blocking wait, the sensor's poke mode, the trigger and the batch's trigger all drive the same
``Waiter``, so a rule about what ends a wait (deadline, tolerated errors, the not-yet-visible grace) is written once;
every wait ends with one ``TaskEvent``, checked by ``resolve_event`` wherever it arrives.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream import schedule
from airflow_provider_seedream.request import short
from airflow_provider_seedream.wire import (
    KNOWN_STATES,
    STATE_FAIL,
    STATE_SUCCESS,
    SeedreamTask,
    is_result_url,
    is_transient,
    retry_after_of,
)

# A task created a moment ago may answer "recordInfo is null" for a short while.
DEFAULT_NOT_FOUND_GRACE = 30.0


DEFAULT_MAX_CONSECUTIVE_ERRORS = 5


# The poll schedule lives in ``schedule`` (pure as well); re-exported for the waits that read it with the waiter.
poll_delay = schedule.poll_delay


likely_done_at = schedule.likely_done_at


EventStatus = Literal["success", "failed", "timeout", "error"]


EVENT_SUCCESS: EventStatus = "success"


EVENT_FAILED: EventStatus = "failed"


EVENT_TIMEOUT: EventStatus = "timeout"


EVENT_ERROR: EventStatus = "error"


EVENT_STATUSES = frozenset({EVENT_SUCCESS, EVENT_FAILED, EVENT_TIMEOUT, EVENT_ERROR})


class TaskEvent(TypedDict):
    """The one shape every wait ends with, whether it ran in the triggerer, in poke mode or in the hook."""

    status: EventStatus
    task_id: str
    message: str
    task: dict[str, Any] | None
    error_type: str | None


def make_event(
    status: EventStatus, task_id: str, message: str, task: SeedreamTask | None = None, error: BaseException | None = None
) -> TaskEvent:
    return TaskEvent(
        status=status,
        task_id=task_id,
        message=message,
        task=task.to_dict() if task else None,
        error_type=type(error).__name__ if error is not None else None,
    )


def resolve_event(event: Any, expected_task_id: str | None = None) -> SeedreamTask:
    """Return the finished task an event reports, or raise the typed error it stands for.

    Events cross the triggerer/worker boundary, so they are checked, not trusted: a missing or unknown event fails.
    """
    if not isinstance(event, dict) or event.get("status") not in EVENT_STATUSES or not event.get("task_id"):
        raise exc.SeedreamResponseError(f"invalid trigger event: {short(event, 200)}")
    task_id = event["task_id"]
    if expected_task_id is not None and task_id != expected_task_id:
        raise exc.SeedreamResponseError(f"trigger event is for task {task_id}, expected {expected_task_id}")
    status = event["status"]
    message = event.get("message") or ""
    try:
        task = SeedreamTask.from_dict(event["task"]) if isinstance(event.get("task"), dict) else None
    except (TypeError, ValueError) as malformed:
        raise exc.SeedreamResponseError(f"trigger event for task {task_id} carries a malformed task: "
                                        f"{malformed}") from None
    if task is not None and (task.state not in KNOWN_STATES or not all(is_result_url(u) for u in task.result_urls)):
        raise exc.SeedreamResponseError(f"trigger event for task {task_id} carries a malformed task: "
                                        f"{short(event['task'], 200)}")
    if status == EVENT_SUCCESS and task is not None and task.succeeded:
        return task
    if status == EVENT_FAILED and task is not None:
        raise exc.SeedreamTaskFailedError(task)
    if status == EVENT_TIMEOUT:
        raise exc.SeedreamTimeoutError(message or f"timed out waiting for Seedream task {task_id}", task_id=task_id)
    message = message or f"waiting for Seedream task {task_id} failed"
    error_cls = getattr(exc, event.get("error_type") or "", None)
    error: exc.SeedreamError = exc.SeedreamError(message)
    if isinstance(error_cls, type) and issubclass(error_cls, exc.SeedreamError):
        try:
            error = error_cls(message)
        except Exception:  # a class whose constructor needs more than a message (failed task, timeout, transport)
            pass
    raise error


@dataclass(frozen=True)
class WaitPolicy:
    """How a wait behaves; plain data so the trigger can serialize it."""

    poll_interval: float = 5.0
    deadline: float = math.inf  # absolute, seconds since the epoch: survives a move to another triggerer
    not_found_grace: float = DEFAULT_NOT_FOUND_GRACE
    max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS


@dataclass(frozen=True)
class Step:
    """What to do after one status query: stop with ``event``, or query again after ``delay`` seconds.

    ``note`` is a line worth logging (a state change, a tolerated error), or ``None``.
    """

    event: TaskEvent | None
    delay: float = 0.0
    note: str | None = None


@dataclass
class Waiter:
    """The wait for one task, as a state machine fed with each query's outcome.

    The hook's blocking wait, the sensor's pokes and the trigger all drive this same object, so a rule about
    what ends a wait (deadline, tolerated errors, the not-yet-visible grace) is written once.
    """

    task_id: str
    policy: WaitPolicy
    started_at: float
    rng: Callable[[], float] = random.random
    last_state: str | None = None  # None until kie has answered with the task once
    last_running_at: float | None = None  # when kie last answered that the task was still running
    consecutive_errors: int = 0

    @classmethod
    def start(cls, task_id: str, *, poll_interval: float, deadline: float = math.inf, started_at: float,
              max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
              not_found_grace: float = DEFAULT_NOT_FOUND_GRACE) -> Waiter:
        """The one way every wait builds its waiter: the worker's, the trigger's, the batch's, the hook's."""
        policy = WaitPolicy(poll_interval=poll_interval, deadline=deadline, not_found_grace=not_found_grace,
                            max_consecutive_errors=max_consecutive_errors)
        return cls(task_id, policy, started_at=started_at)

    def _delay(self, now: float) -> float:
        return max(0.0, min(poll_delay(now - self.started_at, self.policy.poll_interval, self.rng),
                            self.policy.deadline - now))

    def _timeout(self, now: float) -> Step:
        waited = now - self.started_at
        return Step(make_event(
            EVENT_TIMEOUT, self.task_id,
            f"Seedream task {self.task_id} did not finish before the deadline (waited {waited:.0f} s, last state "
            f"{self.last_state or 'unknown'}); it may still be running on kie.ai",
        ))

    def observe(self, outcome: SeedreamTask | BaseException, now: float) -> Step:
        """Take one query's result (a task or the error it raised) and decide the next step."""
        waited = now - self.started_at
        if isinstance(outcome, SeedreamTask):
            self.consecutive_errors = 0
            note = None
            if outcome.state != self.last_state:
                note = f"Seedream task {self.task_id}: {self.last_state or 'submitted'} -> {outcome.state} " \
                       f"after {waited:.1f} s"
                self.last_state = outcome.state
            if outcome.state == STATE_SUCCESS:
                return Step(make_event(EVENT_SUCCESS, self.task_id, f"Seedream task {self.task_id} succeeded", outcome),
                            note=note)
            if outcome.state == STATE_FAIL:
                return Step(make_event(EVENT_FAILED, self.task_id,
                                       f"Seedream task {self.task_id} failed: failCode={outcome.fail_code or '-'} "
                                       f"failMsg={outcome.fail_msg or '-'}", outcome), note=note)
            self.last_running_at = now
            if now >= self.policy.deadline:
                return self._timeout(now)
            return Step(None, self._delay(now), note)

        error = outcome
        seen = self.last_state is not None
        if isinstance(error, exc.SeedreamNotFoundError) and not seen and waited < self.policy.not_found_grace:
            if now >= self.policy.deadline:
                return self._timeout(now)
            return Step(None, self._delay(now), f"Seedream task {self.task_id} is not visible yet ({error}); "
                                                f"waiting up to {self.policy.not_found_grace:.0f} s for it")
        if is_transient(error):
            self.consecutive_errors += 1
            if self.consecutive_errors <= self.policy.max_consecutive_errors:
                if now >= self.policy.deadline:
                    return self._timeout(now)
                delay = max(self._delay(now), min(retry_after_of(error) or 0.0, max(0.0, self.policy.deadline - now)))
                return Step(None, delay, f"transient error {self.consecutive_errors}/"
                                         f"{self.policy.max_consecutive_errors} while waiting for Seedream task "
                                         f"{self.task_id}: {error}; trying again in {delay:.1f} s")
            message = f"gave up on Seedream task {self.task_id} after {self.consecutive_errors} consecutive " \
                      f"transient errors; last: {error}"
        else:
            message = f"waiting for Seedream task {self.task_id} failed: {error}"
        return Step(make_event(EVENT_ERROR, self.task_id, message, error=error))
