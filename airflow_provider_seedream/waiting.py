"""The wait steps the operator and the sensor share: one status check, then a deferral to the triggerer.

Both check the task once before deferring (a task that already finished, or failed, needs no triggerer), and both
hand the trigger the same absolute deadline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

from airflow_provider_seedream import waitstate

# Slack on top of the trigger's own deadline before Airflow kills the deferral itself: the trigger should always
# report the timeout first, with the kie task id in the message.
DEFER_SLACK_SECONDS = 120
# How long after deferring the trigger holds back its event: one worker heartbeat (5 s by default) plus a margin, so
# that Airflow 3.3.2 has seen the deferring worker exit before the task resumes (apache/airflow#72716).
EVENT_HOLDBACK_SECONDS = 6.0


def defer_timeout(timeout: float) -> timedelta:
    return timedelta(seconds=timeout + DEFER_SLACK_SECONDS)


@dataclass(frozen=True)
class WaitPlan:
    """One wait for one task: its poll settings and its absolute deadline, fixed when the wait starts."""

    task_id: str
    poll_interval: float
    timeout: float
    max_consecutive_errors: int = waitstate.DEFAULT_MAX_CONSECUTIVE_ERRORS
    started: float = 0.0

    @classmethod
    def start(cls, task_id: str, poll_interval: float, timeout: float,
              max_consecutive_errors: int = waitstate.DEFAULT_MAX_CONSECUTIVE_ERRORS,
              started: float | None = None) -> WaitPlan:
        """Begin a wait now, or at ``started`` (seconds since the epoch) for one that began in an earlier process."""
        return cls(task_id, poll_interval, timeout, max_consecutive_errors,
                   time.time() if started is None else started)

    @property
    def deadline(self) -> float:
        return self.started + self.timeout

    def waiter(self) -> waitstate.Waiter:
        policy = waitstate.WaitPolicy(poll_interval=self.poll_interval, deadline=self.deadline,
                                 max_consecutive_errors=self.max_consecutive_errors)
        return waitstate.Waiter(self.task_id, policy, started_at=self.started)


def observe_once(operator: Any, waiter: waitstate.Waiter) -> waitstate.Step:
    """Query the task once from the worker and feed the outcome to ``waiter``, logging to the operator's log."""
    step: waitstate.Step = operator.hook.observe(waiter, operator.log)
    return step


def can_end_in_triggerer(operator: Any, base: type) -> bool:
    """Tell whether a wait leaves nothing for a worker: no ``output_path``, no outlets, ``execute_complete`` as
    ``base`` defines it (a subclass that overrides it expects to run it), and no downstream task mapped over its
    return value (a worker records the value's length for that; the triggerer cannot)."""
    if getattr(operator, "output_path", None) or list(getattr(operator, "outlets", None) or []):
        return False
    if getattr(type(operator), "execute_complete", None) is not getattr(base, "execute_complete", None):
        return False
    has_dag = getattr(operator, "has_dag", None)
    if has_dag is not None and not has_dag():
        return True  # a task outside any DAG has no downstream task at all
    mapped_dependants = getattr(operator, "iter_mapped_dependants", None)
    try:
        return mapped_dependants is None or next(mapped_dependants(), None) is None
    except Exception:  # a task outside a DAG, or one Airflow cannot walk: resume, as before
        return False


def defer(operator: Any, plan: WaitPlan, method_name: str = "execute_complete", *, end_from_trigger: bool = False,
          returns: str = "result_urls") -> NoReturn:
    """Hand the rest of the wait to the triggerer (raises ``TaskDeferred``).

    :param end_from_trigger: let the trigger end the task on success (see ``SeedreamTaskTrigger``).
    :param returns: what the task returns when the trigger ends it.
    """
    # Imported here: parsing a DAG that uses the operator should not pay for the trigger's async stack.
    from airflow_provider_seedream.triggers.seedream import SeedreamTaskTrigger

    operator.log.info("Deferring the wait for Seedream task %s to the triggerer (deadline in %.0f s)", plan.task_id,
                      plan.deadline - time.time())
    operator.defer(
        trigger=SeedreamTaskTrigger(
            seedream_task_id=plan.task_id,
            seedream_conn_id=operator.seedream_conn_id,
            poll_interval=plan.poll_interval,
            deadline=plan.deadline,
            started_at=plan.started,
            max_consecutive_errors=plan.max_consecutive_errors,
            min_event_delay=EVENT_HOLDBACK_SECONDS,
            end_from_trigger=end_from_trigger,
            returns=returns,
        ),
        method_name=method_name,
        timeout=defer_timeout(plan.timeout),
    )
    raise AssertionError("defer() returned")  # pragma: no cover - BaseOperator.defer always raises


#: The payload a task resumes with when a runtime ignores the trigger's task-end event and resumes it anyway
#: (``dag.test()`` and ``airflow dags test`` run triggers inline and hand every event's payload to the task).
ENDED_BY_TRIGGER = "success"


def ended_by_trigger(event: Any) -> bool:
    """Tell whether ``event`` is what a ``TaskSuccessEvent`` leaves behind, rather than one of our wait events."""
    return isinstance(event, str) and event == ENDED_BY_TRIGGER


def reread_event(operator: Any, task_id: str) -> dict[str, Any]:
    """Read a task the trigger already saw succeed (a free recordInfo) and return the event a resume expects."""
    task = operator.hook.get_task(task_id)
    operator.log.info("The trigger ended the wait for Seedream task %s, but this runtime resumed the task anyway "
                      "(dag.test does); read it again (state %s)", task_id, task.state)
    if task.succeeded:
        return dict(waitstate.make_event(waitstate.EVENT_SUCCESS, task_id, f"Seedream task {task_id} succeeded", task))
    return dict(waitstate.make_event(waitstate.EVENT_ERROR, task_id, f"Seedream task {task_id} is {task.state}, although the "
                                                           "trigger saw it succeed"))
