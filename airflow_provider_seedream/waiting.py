"""The wait steps the edit operators and the sensor share, as ``SeedreamWaitMixin``: check once, defer, deliver.

A typed base the operator, the batch operator and the sensor derive from, so that what the wait needs of a task
(its hook, connection id, ``output_path``, log, deferral) is a contract mypy checks, not attributes read through
``getattr``. ``WaitPlan`` fixes one wait's settings and absolute deadline when it starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow_provider_seedream import batch, request, results, waitstate, wire
from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream.hooks.seedream import SeedreamHook
from airflow_provider_seedream.lineage import SeedreamLineageMixin

if TYPE_CHECKING:
    from airflow.sdk import Context

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
        return waitstate.Waiter.start(self.task_id, poll_interval=self.poll_interval, deadline=self.deadline,
                                      started_at=self.started, max_consecutive_errors=self.max_consecutive_errors)


class SeedreamWaitMixin(SeedreamLineageMixin):
    """What a task that waits for kie needs, in one place: its hook, one status check, the deferral, the hand-over,
    and its OpenLineage datasets (``SeedreamLineageMixin``).

    Subclasses set ``seedream_conn_id`` and ``output_path`` (``None`` for none) in ``__init__``.
    """

    seedream_conn_id: str
    output_path: Any

    @cached_property
    def hook(self) -> SeedreamHook:
        return SeedreamHook(self.seedream_conn_id)

    def defer(self, *, trigger: Any, method_name: str, kwargs: dict[str, Any] | None = None,
              timeout: timedelta | int | float | None = None) -> NoReturn:
        """Defer as Airflow does, without storing the extra link's empty value on the way out.

        Airflow stores the value of every extra link at the end of every worker run, deferrals included: one XCom
        write through the API server per deferring task, of ``""`` (a deferring run has no result yet). In a mapped
        fan-out that is one API call in ten. The instance names no links until it resumes
        (``resume_execution``); the serialized DAG, which the UI reads them from, keeps them.
        """
        self.operator_extra_links = ()
        super().defer(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=timeout)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """Resume as Airflow does, with the class's extra links back (``defer`` hid them from its own run)."""
        self.__dict__.pop("operator_extra_links", None)
        return super().resume_execution(next_method, next_kwargs, context)

    @staticmethod
    def is_first_try(context: Any) -> bool:
        """Tell whether this is the task instance's first try: no earlier try can have recorded anything in
        ``task_state_store``, so its read (a round trip through the API server, per mapped task) is skipped."""
        ti = context.get("ti") if hasattr(context, "get") else None
        return getattr(ti, "try_number", None) == 1

    def submit_recorded(self, task: request.TaskInput, store: Any, key: str, fingerprint: str,
                        idle: Callable[[float], None] | None = None) -> str:
        """Submit ``task`` and keep what a retry must know in ``store`` (``task_state_store``, or ``None``) at ``key``.

        An "in flight" mark is written right before the createTask leaves (a kill mid-request cannot erase it), the
        kie task id as soon as it comes back; a clean refusal clears the mark (nothing was created, a retry may
        submit), an uncertain submit keeps it (a retry must not submit again). Errors are raised as the hook raises
        them. ``idle`` is what to do while the submit waits for its place in the host's pace (see the hook).
        """

        def in_flight() -> None:
            if store is not None:
                store.set(key, batch.in_flight_record(fingerprint, time.time()))

        try:
            task_id = self.hook.submit_task(task, before_send=in_flight, idle=idle)
        except exc.SeedreamSubmitUncertainError:
            raise  # keep the mark
        except exc.SeedreamError as error:
            if store is not None and wire.is_clean_refusal(error):
                store.delete(key)
            raise
        if store is not None:
            store.set(key, batch.accepted_record(task_id, fingerprint, time.time()))
        return task_id

    def check_once(self, waiter: waitstate.Waiter) -> waitstate.Step:
        """Query the task once from the worker and feed the outcome to ``waiter``, logging to this task's log."""
        return self.hook.observe(waiter, self.log)

    def ends_in_triggerer(self, base: type) -> bool:
        """Tell whether a wait leaves nothing for a worker: no ``output_path``, no outlets, ``execute_complete`` as
        ``base`` defines it (a subclass that overrides it expects to run it), and no downstream task mapped over its
        return value (a worker records the value's length for that; the triggerer cannot)."""
        if self.output_path or list(self.outlets or []):
            return False
        if getattr(type(self), "execute_complete", None) is not getattr(base, "execute_complete", None):
            return False
        if not self.has_dag():
            return True  # a task outside any DAG has no downstream task at all
        try:
            return next(self.iter_mapped_dependants(), None) is None
        except Exception:  # a DAG Airflow cannot walk: resume, as before
            return False

    def defer_wait(self, plan: WaitPlan, *, base: type, returns: str,
                   method_name: str = "execute_complete") -> NoReturn:
        """Hand the rest of the wait to the triggerer (raises ``TaskDeferred``); the trigger ends the task itself
        when nothing is left for a worker (``ends_in_triggerer``).

        :param returns: what the task returns when the trigger ends it (``results.RETURN_*``).
        """
        # Imported here: parsing a DAG that uses the operator should not pay for the trigger's async stack.
        from airflow_provider_seedream.triggers.seedream import SeedreamTaskTrigger

        self.log.info("Deferring the wait for Seedream task %s to the triggerer (deadline in %.0f s)", plan.task_id,
                      plan.deadline - time.time())
        self.defer(
            trigger=SeedreamTaskTrigger(
                seedream_task_id=plan.task_id,
                seedream_conn_id=self.seedream_conn_id,
                poll_interval=plan.poll_interval,
                deadline=plan.deadline,
                started_at=plan.started,
                max_consecutive_errors=plan.max_consecutive_errors,
                min_event_delay=EVENT_HOLDBACK_SECONDS,
                end_from_trigger=self.ends_in_triggerer(base),
                returns=returns,
            ),
            method_name=method_name,
            timeout=defer_timeout(plan.timeout),
        )
        raise AssertionError("defer() returned")  # pragma: no cover - BaseOperator.defer always raises

    def reread_event(self, task_id: str) -> dict[str, Any]:
        """Read a task the trigger already saw succeed (a free recordInfo) and return the event a resume expects."""
        task = self.hook.get_task(task_id)
        self.log.info("The trigger ended the wait for Seedream task %s, but this runtime resumed the task anyway "
                      "(dag.test does); read it again (state %s)", task_id, task.state)
        if task.succeeded:
            return dict(waitstate.make_event(waitstate.EVENT_SUCCESS, task_id, f"Seedream task {task_id} succeeded",
                                             task))
        return dict(waitstate.make_event(waitstate.EVENT_ERROR, task_id, f"Seedream task {task_id} is {task.state}, "
                                                                         "although the trigger saw it succeed"))

    def deliver(self, context: Context, task: wire.SeedreamTask) -> list[str]:
        """Hand a succeeded task over: XComs, the extra link, and the stored images with ``output_path``."""
        return results.deliver(self, context, task)


#: The payload a task resumes with when a runtime ignores the trigger's task-end event and resumes it anyway
#: (``dag.test()`` and ``airflow dags test`` run triggers inline and hand every event's payload to the task).
ENDED_BY_TRIGGER = "success"


def ended_by_trigger(event: Any) -> bool:
    """Tell whether ``event`` is what a ``TaskSuccessEvent`` leaves behind, rather than one of our wait events."""
    return isinstance(event, str) and event == ENDED_BY_TRIGGER
