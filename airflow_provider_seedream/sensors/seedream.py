"""Sensor that waits for a Seedream task on kie.ai to finish."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_seedream import request, results, waiting, waitstate, wire
from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream.hooks.seedream import SeedreamHook
from airflow_provider_seedream.links import SeedreamResultImageLink
from airflow_provider_seedream.version_compat import (
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


class SeedreamTaskSensor(waiting.SeedreamWaitMixin, BaseSensorOperator):
    """Wait for a Seedream task to finish and return its result image URLs.

    Deferrable by default: after one status check it hands the wait to the triggerer and frees the worker slot. With
    ``deferrable=False`` it pokes (``mode="poke"`` or ``"reschedule"``). In both modes ``poke_interval`` is the base
    pause between queries (stretched per kie's polling guidance as the wait grows) and ``timeout`` ends the wait with
    an error naming the kie task id. A task that ends in ``fail`` fails the Airflow task with kie's failCode and
    failMsg, without retries (retrying cannot change a failed remote task).

    With ``output_path``, every result image is copied there on the worker as soon as the task succeeds (streamed,
    size-checked, moved into place whole; an expired link is re-minted once) and the stored URIs are pushed to XCom
    under ``stored_images``. If storing fails, the Airflow task fails naming the result URLs; a retry reads the same
    kie task again (no new cost) and stores again. ``soft_fail`` never turns such a failure into a skip.

    :param seedream_task_id: the kie task id, e.g. ``edit.output`` of a ``SeedreamEditOperator``. Templated.
    :param seedream_conn_id: the Airflow connection holding the kie.ai key. Templated.
    :param deferrable: wait in the triggerer instead of in a worker slot.
    :param max_consecutive_errors: transient errors in a row tolerated while waiting.
    :param output_path: where to copy the result images: a local path or an object storage URI (``file://``,
        ``s3://``, ``gs://``, ...), e.g. ``s3://aws_default@bucket/edits/{{ ds }}``. Files are named
        ``<dag_id>/<run_id>/<task_id>/[map-<m>_]image-<i>.<ext>`` below it. Templated.
    """

    template_fields: Sequence[str] = ("seedream_task_id", "seedream_conn_id", "output_path")
    ui_color = "#f6e3ff"
    operator_extra_links = (SeedreamResultImageLink(),)

    def __init__(
        self,
        *,
        seedream_task_id: str,
        seedream_conn_id: str = SeedreamHook.default_conn_name,
        deferrable: bool = True,
        poke_interval: float = 5.0,
        timeout: float = 3600.0,
        max_consecutive_errors: int = waitstate.DEFAULT_MAX_CONSECUTIVE_ERRORS,
        output_path: Any = None,
        **kwargs: Any,
    ) -> None:
        request.check_positive("poke_interval", poke_interval)
        request.check_positive("timeout", timeout)
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.seedream_task_id = seedream_task_id
        self.seedream_conn_id = seedream_conn_id
        self.deferrable = deferrable
        self.max_consecutive_errors = max_consecutive_errors
        self.output_path = output_path
        self._waiter: waitstate.Waiter | None = None

    def execute(self, context: Context) -> Any:
        task_id = wire.check_task_id(self.seedream_task_id)
        if self.output_path:  # an unusable destination fails now, not after the wait
            from airflow_provider_seedream import storage

            storage.check_output_path(self.output_path)
        if not self.deferrable:
            try:
                return super().execute(context)
            except AirflowSensorTimeout as error:
                if isinstance(error, exc.SeedreamTimeoutError):
                    raise
                raise exc.SeedreamTimeoutError(f"{error} Seedream task {task_id} had not finished; it may still "
                                               "be running on kie.ai", task_id=task_id) from error

        plan = waiting.WaitPlan.start(task_id, self.poke_interval, self.timeout, self.max_consecutive_errors)
        step = self.check_once(plan.waiter())
        if step.event is not None:  # already finished: no need to defer
            return self.execute_complete(context, dict(step.event))
        self.defer_wait(plan, base=SeedreamTaskSensor, returns=results.RETURN_RESULT_URLS)

    def poke(self, context: Context) -> PokeReturnValue:
        task_id = wire.check_task_id(self.seedream_task_id)
        if self._waiter is None or self._waiter.task_id != task_id:
            # The base class enforces ``timeout`` in poke mode; the waiter only tracks states and tolerated errors.
            self._waiter = waiting.WaitPlan.start(task_id, self.poke_interval, float("inf"),
                                                  self.max_consecutive_errors, self._first_poke(context)).waiter()
        step = self.check_once(self._waiter)
        if step.event is None:
            return PokeReturnValue(is_done=False)
        task = waitstate.resolve_event(step.event, task_id)
        return PokeReturnValue(is_done=True, xcom_value=self.deliver(context, task))

    def _first_poke(self, context: Context) -> float | None:
        """Return when the wait began if an earlier process began it (reschedule mode), else ``None`` (now).

        In reschedule mode every poke runs in a new process with a new waiter; dating the waiter from the first poke,
        as the base class dates ``timeout``, keeps the "not visible yet" grace from restarting on every poke (a task
        id kie does not know then fails after the grace instead of at the sensor's timeout).
        """
        if not self.reschedule:
            return None
        # The base class asked the same a moment ago, but keeps the answer to itself: one more small API call a poke.
        first = context["ti"].get_first_reschedule_date(context)
        return first.timestamp() if first is not None else None

    def _get_next_poke_interval(
        self, started_at: datetime | float, run_duration: Callable[[], float], poke_count: int
    ) -> float:
        # The same schedule as the trigger and the hook's wait, rather than a fixed interval.
        return waitstate.poll_delay(run_duration(), self.poke_interval)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSkipException as skip:
            # A deferred sensor's soft_fail turns every error into a skip (apache/airflow#71255). A result that was
            # paid for but could not be stored must fail loudly instead, so that a retry stores it.
            cause = skip.__cause__
            if self.soft_fail and isinstance(cause, exc.SeedreamStorageError):
                raise cause  # noqa: B904 - the storage error (and its own cause) is the story, not the skip
            raise

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> list[str]:
        """Finish after the trigger fired: return the result URLs, or raise the typed error the event reports."""
        task_id = wire.check_task_id(self.seedream_task_id)
        if waiting.ended_by_trigger(event):
            event = self.reread_event(task_id)
        task = waitstate.resolve_event(event, task_id)
        return self.deliver(context, task)
