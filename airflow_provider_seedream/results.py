"""What the operator and the sensor do with a finished task: the one place both hand results over.

Both the operator's waits (blocking and deferred) and the sensor's (poke and deferred) end here, on the worker: the
result URLs go to XCom, the extra link learns the first one, and with ``output_path`` every image is copied to durable
storage before kie's temporary links die (``stored_images`` XCom, optional asset events).
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_seedream import batch, links, redaction, storage_policy, waitstate, wire
from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream.watch import TaskWatch

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_seedream.hooks.seedream import SeedreamHook


class Handing(Protocol):
    """What a hand-over needs of the task that waited (``waiting.SeedreamWaitMixin`` is one)."""

    @property
    def hook(self) -> SeedreamHook: ...

    @property
    def log(self) -> Any: ...

    @property
    def output_path(self) -> Any: ...

    @property
    def task_id(self) -> str: ...

    @property
    def dag_id(self) -> str: ...

    @property
    def outlets(self) -> Any: ...

XCOM_TASK_ID = "seedream_task_id"
XCOM_RESULT_URLS = "result_urls"
XCOM_TASK = "seedream_task"
XCOM_STORED_IMAGES = "stored_images"
#: The batch operator's per-edit outcomes (also its return value), pushed before ``fail_on`` may fail the task.
XCOM_BATCH = "batch_results"
#: The batch operator's kie task ids, in input order (``None`` for an edit not submitted), pushed before the wait.
XCOM_TASK_IDS = "seedream_task_ids"
#: How many result images a batch stores at once.
STORE_THREADS = 8


#: What a wait that ends in the triggerer returns: the result URLs (the sensor) or the kie task id (the operator).
RETURN_RESULT_URLS = "result_urls"
RETURN_TASK_ID = "task_id"


def end_xcoms(task: wire.SeedreamTask, returns: str) -> dict[str, Any]:
    """Return the XComs a succeeded wait pushes when the triggerer ends the task (no resume on a worker).

    The same keys ``deliver`` pushes on a worker, plus the extra link's value (Airflow stores it under the link's
    ``xcom_key`` at the end of a worker run; with no worker run, the trigger provides it).
    """
    urls = list(task.result_urls)
    return {
        "return_value": task.task_id if returns == RETURN_TASK_ID else urls,
        XCOM_RESULT_URLS: urls,
        XCOM_TASK: task.to_dict(),
        links.SeedreamResultImageLink().xcom_key: links.link_for(urls),
    }


def describe_success(task: wire.SeedreamTask) -> str:
    """The line a succeeded wait logs: how long the task took and its result URLs."""
    seconds = (
        f"{(task.complete_time - task.create_time) / 1000:.1f} s"
        if task.complete_time and task.create_time
        else "unknown time"
    )
    return (f"Seedream task {task.task_id} succeeded in {seconds} with {len(task.result_urls)} result image(s): "
            f"{wire.describe_urls(task.result_urls)}")


def deliver(operator: Handing, context: Context, task: wire.SeedreamTask) -> list[str]:
    """Log a succeeded task's results, push them to XCom, store them under ``output_path``, return the result URLs.

    Raises ``SeedreamStorageError`` (naming the result URLs) when ``output_path`` is set and storing fails.
    """
    urls = list(task.result_urls)
    operator.log.info("%s", describe_success(task))
    output_path = getattr(operator, "output_path", None)
    if output_path:
        operator.log.info("Result URLs are temporary (kie documents about 24 h, sometimes much less): storing them "
                          "now under %s", redaction.redact_url(str(output_path)))
    else:
        operator.log.info("Result URLs are temporary (kie documents about 24 h, sometimes much less): store them soon "
                          "(or set output_path)")
    ti = context["ti"]
    ti.xcom_push(key=XCOM_RESULT_URLS, value=urls)
    ti.xcom_push(key=XCOM_TASK, value=task.to_dict())
    links.remember(operator, ti, urls)
    if output_path:
        uris = store(operator, context, task.task_id, urls)
        ti.xcom_push(key=XCOM_STORED_IMAGES, value=uris)
        emit_asset_events(operator, context, {"seedream_task_id": task.task_id, XCOM_STORED_IMAGES: uris},
                          [(uri, {"seedream_task_id": task.task_id, "image_index": i}) for i, uri in enumerate(uris)])
    return urls


def store(operator: Handing, context: Context, task_id: str, urls: list[str], edit_index: int | None = None) -> list[str]:
    """Copy a succeeded task's result images under the operator's ``output_path``; return the stored URIs.

    Raises ``SeedreamStorageError`` (naming the result URLs) when storing fails.
    """
    from airflow_provider_seedream import storage

    ti = context["ti"]
    stored = storage.store_results(
        operator.hook,
        task_id,
        urls,
        output_path=operator.output_path,
        dag_id=getattr(ti, "dag_id", None) or getattr(operator, "dag_id", None) or "no-dag",
        run_id=getattr(ti, "run_id", None) or context.get("run_id") or "no-run",
        airflow_task_id=getattr(ti, "task_id", None) or operator.task_id,
        map_index=getattr(ti, "map_index", -1),
        log=operator.log,
        edit_index=edit_index,
    )
    return [image.uri for image in stored]


def deliver_batch(operator: Handing, context: Context, outcomes: list[batch.Outcome]) -> list[batch.Outcome]:
    """Store every succeeded edit of a batch (with ``output_path``) not stored yet, push the batch's XComs, return
    the outcomes.

    Every item is tried before anything is raised: one image that cannot be stored does not keep the others from
    being stored. Raises ``SeedreamStorageError`` naming every item that could not be stored (a retry re-attaches to
    the same kie tasks, at no cost, and stores them again).
    """
    ti = context["ti"]
    final: list[batch.Outcome] = []
    unstored: list[str] = []
    to_store = [o for o in outcomes if o.succeeded and not o.stored_images] if operator.output_path else []
    # Several images at once: each download mostly waits on the network, and a night's batch stores hundreds.
    with ThreadPoolExecutor(max_workers=STORE_THREADS, thread_name_prefix="seedream-store") as pool:
        stored = {o.index: pool.submit(store, operator, context, str(o.task_id), list(o.result_urls), o.index)
                  for o in to_store}
        for outcome in outcomes:
            if outcome.index in stored:
                try:
                    uris = stored[outcome.index].result()
                except exc.SeedreamStorageError as error:
                    unstored.append(f"edits[{outcome.index}] (task {outcome.task_id}): {error}")
                else:
                    outcome = dataclasses.replace(outcome, stored_images=tuple(uris))
            final.append(outcome)
    records = [outcome.to_dict() for outcome in final]
    ti.xcom_push(key=XCOM_BATCH, value=records)
    first = next((o for o in final if o.succeeded), None)
    links.remember(operator, ti, list(first.result_urls) if first else [])
    if operator.output_path:
        every = [uri for outcome in final for uri in outcome.stored_images]
        ti.xcom_push(key=XCOM_STORED_IMAGES, value=every)
        emit_asset_events(
            operator, context,
            {"seedream_task_ids": [o.task_id for o in final if o.stored_images], XCOM_STORED_IMAGES: every},
            [(uri, {"seedream_task_id": o.task_id, "edit_index": o.index, "image_index": i})
             for o in final for i, uri in enumerate(o.stored_images)],
        )
    if unstored:
        urls = [url for o in final if o.succeeded and not o.stored_images for url in o.result_urls]
        message = (f"{len(unstored)} succeeded edit(s) of the batch could not be stored (the others were): "
                   + "; ".join(unstored))
        operator.log.error("%s", message)
        raise exc.SeedreamStorageError(message, result_urls=urls,
                                       stored=[uri for o in final for uri in o.stored_images])
    return final


def emit_asset_events(operator: Handing, context: Context, summary: dict[str, Any],
                      stored: list[tuple[str, dict[str, Any]]]) -> None:
    """Describe the stored files in the task's asset events, so downstream DAGs scheduled on them can find them.

    An ``Asset`` in ``outlets`` gets one event whose extra is ``summary`` (the task id(s) and every stored file); an
    ``AssetAlias`` gets one event per stored file (``stored``: its URI and that event's extra), each for an asset
    named by the file's URI.
    """
    outlets = list(getattr(operator, "outlets", None) or [])
    events = context.get("outlet_events") if hasattr(context, "get") else None
    if not outlets or events is None or not stored:
        return
    from airflow.sdk import Asset, AssetAlias

    for outlet in outlets:
        if isinstance(outlet, AssetAlias):
            for uri, extra in stored:
                events[outlet].add(Asset(storage_policy.asset_uri(uri)), extra=extra)
        elif isinstance(outlet, Asset):
            events[outlet].extra.update(summary)


class BatchHarvest:
    """Watch a batch's accepted kie tasks while its later edits wait for their createTask slot, and store each
    success at once, in threads, while the submits go on.

    A night's batch spends most of its submitting time waiting for kie's 20 per 10 s; the edits submitted first end
    meanwhile. Seeing them then (at ``rate`` status queries per second, from this worker) means their images are kept
    before the batch even defers, and the deferral waits only for the rest. Use it as a context manager: leaving it
    waits for the stores still running.

    :param operator: the batch operator (its hook, ``output_path`` and log).
    :param rate: status queries per second while submitting (the triggerer is not polling this batch yet).
    """

    def __init__(self, operator: Handing, context: Context, *, poll_interval: float, rate: float) -> None:
        self.operator = operator
        self.context = context
        self.watch = TaskWatch(operator.hook, poll_interval=poll_interval, rate=rate, on_end=self._ended)
        self._index: dict[str, int] = {}
        self._storing: dict[str, Future[list[str]]] = {}
        self._pool = ThreadPoolExecutor(max_workers=STORE_THREADS, thread_name_prefix="seedream-store")
        self._broken = False

    def __enter__(self) -> BatchHarvest:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.shutdown(wait=True)

    def add(self, outcome: batch.Outcome, *, just_submitted: bool) -> None:
        """Watch a submitted item: first asked about one poll interval after a fresh submit (it cannot be done
        sooner), at once when a previous try submitted it."""
        assert outcome.task_id is not None
        now = time.time()
        self._index[outcome.task_id] = outcome.index
        self.watch.add(outcome.task_id, started_at=now,
                       first_query_at=now + self.watch.poll_interval if just_submitted else now)

    def idle(self, seconds: float) -> None:
        """Watch for ``seconds`` (the wait for the next createTask slot). Watching only saves time later: if it ever
        fails, it stops for the rest of the batch (the deferral waits for every edit then), and the submit goes on."""
        until = time.time() + seconds
        self._watch_while(until, wait_out=True, where="while submitting", rest="all of them")
        time.sleep(max(0.0, until - time.time()))

    def _watch_while(self, until: float, *, wait_out: bool, where: str, rest: str) -> None:
        """Run the watch until ``until``; the first failure stops it for the rest of the batch (watching only saves
        time: the deferral then waits for what the watch did not see end)."""
        if self._broken:
            return
        try:
            self.watch.run(until=until, wait_out=wait_out)
        except Exception as error:
            self._broken = True
            self.operator.log.warning("Stopped watching the batch's edits %s (%s: %s); the deferral waits for %s",
                                      where, type(error).__name__, error, rest)

    def submitted_at(self, task_id: str) -> float:
        """When the wait for ``task_id`` began in this try (its submit, or the re-attach)."""
        return self.watch.waiters[task_id].started_at

    def linger(self, until: float, *, deadline: float, rate: float) -> None:
        """Go on watching here, at ``rate``, until every task has ended or until ``until``, whichever comes first
        (``defer_after``): a short rest of the wait costs less in the worker than a deferral and its resume. Like
        the watch while submitting, it only saves time: if it fails, the deferral waits for what is left."""
        if self._broken or not self.watch.pending or until <= time.time():
            return
        self.watch.retune(deadline=deadline, rate=rate)
        self.operator.log.info("Waiting here up to %.0f s for the %d edit(s) still running before deferring",
                               until - time.time(), len(self.watch.pending))
        self._watch_while(until, wait_out=False, where="in the worker", rest="the rest")

    def wait_rest(self, deadline: float, rate: float) -> None:
        """Wait here for every task still running, until ``deadline`` (the blocking form of the batch's wait)."""
        self.watch.retune(deadline=deadline, rate=rate)
        self.watch.run()

    def _ended(self, task_id: str, event: waitstate.TaskEvent) -> None:
        outcome = batch.from_event(batch.submitted(self._index[task_id], task_id), event)
        if outcome.succeeded and self.operator.output_path:
            self._storing[task_id] = self._pool.submit(store, self.operator, self.context, task_id,
                                                       list(outcome.result_urls), outcome.index)

    def apply(self, outcomes: list[batch.Outcome], *, final: bool) -> list[batch.Outcome]:
        """Return ``outcomes`` with what the watch saw end, and what was stored, filled in (call after leaving).

        :param final: the watch was the whole wait (timeouts and errors count); otherwise only kie's own ends
            (success, fail) count, and an item whose watch ended otherwise stays waiting for the deferral.
        """
        filled = []
        for outcome in outcomes:
            event = self.watch.events.get(outcome.task_id) if outcome.task_id is not None else None
            ended = batch.from_event(outcome, event) if event is not None else None
            if ended is not None and (final or ended.state in (wire.STATE_SUCCESS, wire.STATE_FAIL)):
                future = self._storing.get(str(outcome.task_id))
                if future is not None:
                    try:
                        ended = dataclasses.replace(ended, stored_images=tuple(future.result()))
                    except exc.SeedreamStorageError:
                        pass  # left unstored: the batch's final delivery stores it again and reports a failure
                outcome = ended
            filled.append(outcome)
        return filled
