"""Operators that submit Seedream tasks to kie.ai: one edit, one text-to-image, or a batch of them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_seedream import batch, lineage, models, request, results, uploads, waiting, waitstate, wire
from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream.hooks.seedream import SeedreamHook
from airflow_provider_seedream.links import SeedreamResultImageLink
from airflow_provider_seedream.version_compat import conf

if TYPE_CHECKING:
    from airflow.sdk import Context

# task_state_store key; renaming it breaks re-attachment for retries already in flight.
STATE_KEY = "seedream_task"


class _SeedreamTaskOperator(waiting.SeedreamWaitMixin):
    """What the edit and text-to-image operators share: check, submit (or re-attach), and optionally wait and store.

    A subclass names its ``kind`` (the models it takes) and its parameters; ``TaskRequest.of(self)`` reads the
    request from the operator's (templated) attributes of the same names.
    """

    kind: models.Kind
    template_fields_renderers = {"image_urls": "json"}
    ui_color = "#f6e3ff"
    operator_extra_links = (SeedreamResultImageLink(),)

    def __init__(
        self,
        *,
        prompt: str,
        model: str,
        aspect_ratio: str | None = None,
        quality: str | None = None,
        image_size: str | None = None,
        image_resolution: str | None = None,
        max_images: int | None = None,
        seed: int | None = None,
        guidance_scale: float | None = None,
        callback_url: str | None = None,
        nsfw_checker: bool | None = None,
        seedream_conn_id: str = SeedreamHook.default_conn_name,
        wait_for_completion: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 5.0,
        timeout: float = 1800.0,
        reattach: bool = True,
        output_path: Any = None,
        max_consecutive_errors: int = waitstate.DEFAULT_MAX_CONSECUTIVE_ERRORS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.prompt = prompt
        self.model = model
        self.aspect_ratio = aspect_ratio
        self.quality = quality
        self.image_size = image_size
        self.image_resolution = image_resolution
        self.max_images = max_images
        self.seed = seed
        self.guidance_scale = guidance_scale
        self.callback_url = callback_url
        self.nsfw_checker = nsfw_checker
        self.seedream_conn_id = seedream_conn_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = request.check_positive("poll_interval", poll_interval)
        self.timeout = request.check_positive("timeout", timeout)
        self.reattach = reattach
        self.output_path = output_path
        self.max_consecutive_errors = int(request.check_positive("max_consecutive_errors", max_consecutive_errors))
        if output_path and not wait_for_completion:
            raise exc.SeedreamValidationError(
                "output_path: the operator only stores results when it waits for them; set "
                "wait_for_completion=True, or give output_path to the SeedreamTaskSensor that waits",
                field="output_path", code=None,
            )
        # A literal model is checked here, at parse time; a templated one after rendering, before any request.
        if isinstance(model, str) and "{{" not in model:
            problem = request.model_error(model, self.kind)
            if problem is not None:
                raise problem

    def _reattach_to(self, store: Any, fingerprint: str,
                     first_try: bool = False) -> tuple[str, wire.SeedreamTask | None] | None:
        """Return the task a previous try submitted for the same inputs, if it is still worth waiting for, with what
        kie said of it just now (``None`` when kie does not show it yet).

        Raises ``SeedreamSubmitUncertainError`` when a previous try was stopped (killed, timed out) while its createTask
        for the same inputs was in flight: kie may have created and billed it, and no task id came back.
        """
        saved = store.get(STATE_KEY) if store is not None and self.reattach and not first_try else None
        if not isinstance(saved, dict):
            return None
        if saved.get("in_flight_since") and not saved.get("task_id") and saved.get("fingerprint") == fingerprint:
            raise exc.SeedreamSubmitUncertainError(
                f"a previous try was stopped while its createTask was in flight (sent "
                f"{time.time() - float(saved['in_flight_since']):.0f} s ago, no task id came back): kie.ai may have "
                "created and billed it. Not submitting again; look for a task created at that time on kie.ai's logs "
                "page, then re-run with reattach=False to submit anew"
            )
        if not saved.get("task_id"):
            return None
        task_id = saved["task_id"]
        if saved.get("fingerprint") != fingerprint:
            self.log.info("A previous try submitted Seedream task %s with other inputs; submitting anew", task_id)
            return None
        try:
            task = self.hook.get_task(task_id)
        except exc.SeedreamNotFoundError:
            age = time.time() - float(saved.get("submitted_at") or 0)
            if age < waitstate.DEFAULT_NOT_FOUND_GRACE:  # created a moment ago: kie answers "recordInfo is null" briefly
                self.log.info("Re-attaching to Seedream task %s submitted %.1f s ago by a previous try (not visible "
                              "on kie.ai yet): not paying twice", task_id, age)
                return task_id, None
            self.log.warning("Seedream task %s from a previous try is unknown to kie.ai; submitting anew", task_id)
            return None
        if task.state == wire.STATE_FAIL:
            self.log.info("Seedream task %s from a previous try failed (failCode=%s failMsg=%s); submitting anew",
                          task_id, task.fail_code, task.fail_msg)
            return None
        self.log.info("Re-attaching to Seedream task %s submitted by a previous try (state %s): not paying twice",
                      task_id, task.state)
        return task_id, task

    def execute(self, context: Context) -> str:
        # Everything is checked before anything is sent: the inputs (files included) and where results will go.
        prepared = uploads.prepare(request.TaskRequest.of(self), self.kind)
        if self.output_path:  # only set together with wait_for_completion (checked in __init__)
            from airflow_provider_seedream import storage

            storage.check_output_path(self.output_path)
        # Local files are placeholders in ``prepared.edit``, so the fingerprint is the same on every try.
        fingerprint = prepared.task.fingerprint()
        store = context.get("task_state_store")
        reattached = self._reattach_to(store, fingerprint, self.is_first_try(context))
        task_id, seen = reattached if reattached is not None else (None, None)
        if task_id is None:
            if store is None:
                self.log.warning("This Airflow has no task_state_store (it arrived in 3.3): if this task is retried "
                                 "after the submit, the retry submits and pays for a second edit")
            task_id = self.submit_recorded(prepared.upload(self.hook), store, STATE_KEY, fingerprint)
        context["ti"].xcom_push(key=results.XCOM_TASK_ID, value=task_id)
        if not self.wait_for_completion:
            return task_id

        plan = waiting.WaitPlan.start(task_id, self.poll_interval, self.timeout, self.max_consecutive_errors)
        if self.deferrable:
            # A task re-attached to may have finished already (kie was just asked): then no deferral. The worker asks
            # nothing more: a task submitted a moment ago has not finished (an edit takes seconds), and asking from
            # here would spend kie's 10 queries per second outside the triggerer's shared budget, once per mapped
            # task of a fan-out.
            if seen is not None and seen.succeeded:
                self.deliver(context, seen)
                return task_id
            self.defer_wait(plan, base=_SeedreamTaskOperator, returns=results.RETURN_TASK_ID)
        task = self.hook.wait_for_task(task_id, poll_interval=self.poll_interval, deadline=plan.deadline,
                                       max_consecutive_errors=self.max_consecutive_errors)
        self.deliver(context, task)
        return task_id

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """Finish after the trigger fired: return the task id, or raise the typed error the event reports."""
        if waiting.ended_by_trigger(event):
            ti = context["ti"]
            task_id = ti.xcom_pull(task_ids=self.task_id, key=results.XCOM_TASK_ID,
                                   map_indexes=getattr(ti, "map_index", -1))
            event = self.reread_event(wire.check_task_id(task_id))
        task = waitstate.resolve_event(event)
        self.deliver(context, task)
        return task.task_id


#: The parameters both operators template (the model too: a DAG may pick it per run).
_TEMPLATED = ("prompt", "model", "aspect_ratio", "quality", "image_size", "image_resolution", "max_images", "seed",
              "guidance_scale", "callback_url", "seedream_conn_id", "output_path")

_COMMON_PARAMS = """
    :param aspect_ratio: ``1:1, 4:3, 3:4, 16:9, 9:16, 2:3, 3:2, 21:9`` (Seedream 4.5 and 5.0 Lite; default ``1:1``).
        Templated.
    :param quality: ``basic`` (2K) or ``high`` (4K; 3K for 5.0 Lite text to image) (4.5 and 5.0 Lite; default
        ``basic``). Templated.
    :param image_size: the output's shape on 4.0 and 3.0 (``square_hd`` by default; see the README's model table).
        Templated.
    :param image_resolution: ``1K``, ``2K`` or ``4K`` (4.0; default ``1K``). Templated.
    :param max_images: how many images one task makes, 1 to 6 (4.0; default 1; the prompt should ask for as many).
        Templated.
    :param seed: an integer that repeats a result with the same inputs (4.0 and 3.0). Templated.
    :param guidance_scale: 1 to 10, how closely to follow the prompt (3.0; default 2.5). Templated.
    :param callback_url: an http(s) URL kie POSTs the result to when the task ends. Templated.
    :param nsfw_checker: kie's content filter switch (not on 3.0); unset leaves kie's default.
    :param seedream_conn_id: the Airflow connection holding the kie.ai key. Templated.
    :param wait_for_completion: wait for the task to finish before succeeding.
    :param deferrable: wait in the triggerer instead of holding a worker slot (only with ``wait_for_completion``).
    :param poll_interval: the base pause between status queries, in seconds.
    :param timeout: how long to wait for the task at most, in seconds.
    :param reattach: re-attach to the task a previous try submitted, when it is still running or succeeded.
    :param max_consecutive_errors: transient errors in a row tolerated while waiting (as on the sensor).
    :param output_path: where to copy the result images when the operator waits: a local path or an object storage
        URI (``file://``, ``s3://``, ``gs://``, ...), e.g. ``s3://aws_default@bucket/edits/{{ ds }}``. Files are
        named ``<dag_id>/<run_id>/<task_id>/[map-<m>_]image-<i>.<ext>`` below it (one per result image). Templated.

    A field the chosen model does not have, or a value outside its limits, fails the task before any request, naming
    the field, the model and the allowed values.
"""


class SeedreamEditOperator(_SeedreamTaskOperator):
    """Submit a Seedream edit to kie.ai (``seedream/4.5-edit`` unless ``model`` names another edit model of the
    family) and return the kie task id.

    The task id is pushed to XCom at once (key ``seedream_task_id``, and as the return value), so a
    ``SeedreamTaskSensor`` downstream can wait for it. With ``wait_for_completion=True`` the operator waits itself,
    deferring to the triggerer when ``deferrable=True``, and pushes the result URLs under ``result_urls``; with
    ``output_path`` it also copies every result image there as soon as the task succeeds (XCom ``stored_images``).

    ``image_urls`` may name files instead of public URLs: local paths, ``file://`` URIs, or any URI Airflow's
    ``ObjectStoragePath`` understands (``s3://bucket/key``, ``gs://...``, with ``conn_id@`` for a connection). They
    are checked before anything is sent (JPEG/PNG/WebP by content, at most 10 MB each, as many as the model takes)
    and uploaded through kie's File Upload API right before createTask; the uploaded URLs are what the task sends.

    On Airflow 3.3+ the task id is also kept in the task's ``task_state_store``: when the Airflow task is retried
    (say the worker died after the submit) and the kie task is still running or has succeeded, the retry re-attaches
    to it instead of paying for a second edit (same inputs and model only).

    :param prompt: what to change (1 to 3000 characters on 4.5; 3 to 3000 on 5.0 Lite; up to 5000 on 4.0).
        Templated.
    :param image_urls: the images to edit (1 to 14 on 4.5 and 5.0 Lite, 1 to 10 on 4.0): public http(s) URLs (sent as
        they are), local paths or object storage URIs (uploaded first). Templated.
    :param model: ``seedream/4.5-edit`` (default), ``seedream/5-lite-image-to-image`` or
        ``bytedance/seedream-v4-edit``. Templated.
{params}    """

    kind: models.Kind = "edit"
    template_fields: Sequence[str] = ("image_urls", *_TEMPLATED)

    def __init__(self, *, prompt: str, image_urls: list[str] | str, model: str = models.DEFAULT_EDIT_MODEL,
                 **kwargs: Any) -> None:
        self.image_urls = image_urls
        super().__init__(prompt=prompt, model=model, **kwargs)

    def lineage_inputs(self) -> list[Any]:
        return lineage.given_inputs(self.image_urls)


class SeedreamTextToImageOperator(_SeedreamTaskOperator):
    """Submit a Seedream text-to-image task to kie.ai (``seedream/4.5-text-to-image`` unless ``model`` names another
    text-to-image model of the family) and return the kie task id.

    Everything else is as on ``SeedreamEditOperator``: the task id to XCom at once, the optional wait (deferrable),
    ``output_path``, re-attachment on retry, the extra link. A downstream edit can take the result as its input:
    ``image_urls=["{{ ti.xcom_pull(task_ids='scene', key='result_urls')[0] }}"]``.

    :param prompt: the picture to make (1 to 3000 characters on 4.5; 3 to 3000 on 5.0 Lite; up to 5000 on 4.0 and
        3.0). Templated.
    :param model: ``seedream/4.5-text-to-image`` (default), ``seedream/5-lite-text-to-image``,
        ``bytedance/seedream-v4-text-to-image`` or ``bytedance/seedream`` (3.0). Templated.
{params}    """

    kind: models.Kind = "text-to-image"
    template_fields: Sequence[str] = _TEMPLATED

    def __init__(self, *, prompt: str, model: str = models.DEFAULT_TEXT_TO_IMAGE_MODEL, **kwargs: Any) -> None:
        super().__init__(prompt=prompt, model=model, **kwargs)


for _operator in (SeedreamEditOperator, SeedreamTextToImageOperator):
    _operator.__doc__ = (_operator.__doc__ or "").replace("{params}", _COMMON_PARAMS.lstrip("\n"))


class SeedreamBatchEditOperator(waiting.SeedreamWaitMixin):
    """Submit a batch of Seedream 4.5 edits from one task at the account's pace, wait for all of them in one deferral,
    store every result, and return one dict per edit, in input order.

    Every edit is checked before the first submit (a bad one fails the task naming ``edits[i].field``; nothing is
    spent). The edits are then submitted one after another at the pace this host's workers share for the key
    (``submits_per_10s``, kie's 20 per 10 s by default), so the batch on its own draws no 429. Each accepted kie task
    id is recorded in ``task_state_store`` (Airflow 3.3+) the moment it comes back: a retry (say the worker died
    mid-batch) re-attaches to every edit a previous try submitted, submits only the rest, and never pays twice. An edit
    whose createTask was in flight when a try died is reported as ``uncertain`` and not sent again.

    Submitting mostly waits for kie's pace (20 per 10 s), and the edits sent first end meanwhile: in those pauses the
    worker asks about the edits already accepted (at half the connection's ``polls_per_second``) and stores each
    success at once, while the later edits wait for their slot. The wait for the rest is one deferral
    (``SeedreamBatchTrigger``; one resume on a worker for the whole batch), sharing the triggerer's poll budget for
    the key; with ``deferrable=False`` the worker polls them itself. With ``output_path`` every result image is stored
    as soon as its task is seen done (or when the batch resumes), named
    ``<dag_id>/<run_id>/<task_id>/[map-<m>_]edit-<k>_image-<i>.<ext>``.

    Each returned dict holds ``task_id``, ``state`` (kie's ``success`` or ``fail``; ``timeout`` or ``error`` when the
    wait for it did not end; ``refused``, ``not_submitted`` or ``uncertain`` when it was not accepted), ``result_urls``,
    ``stored_images``, ``fail_code`` and ``fail_msg``. The same list is pushed to XCom ``batch_results`` before
    ``fail_on`` is applied, so a failed batch still tells what it produced; the kie task ids are pushed to
    ``seedream_task_ids`` before the wait.

    :param edits: a list of dicts, one per edit, with the request fields of ``SeedreamEditOperator``: ``prompt``,
        ``image_urls`` (URLs, local paths or object storage URIs), ``aspect_ratio``, ``quality``, ``callback_url``,
        ``nsfw_checker``. Templated; an ``XComArg`` works.
    :param output_path: where to store the result images (a local path or an object storage URI). Templated.
    :param seedream_conn_id: the Airflow connection holding the kie.ai key. Templated. With its extra
        ``credits_per_image`` set, a batch whose estimated cost exceeds the balance fails before its first submit.
    :param poll_interval: the base pause between status queries of each task, in seconds. Default 2: kie's own
        guidance for the first 30 s of a wait (the edit operator's 5 s would see the batch's last edit up to 5 s
        late); the connection's ``polls_per_second`` still caps how fast the whole batch asks.
    :param timeout: how long to wait for the whole batch at most, in seconds, from the end of the submits.
    :param fail_on: when the Airflow task fails: ``"any"`` edit did not succeed (default), ``"all"`` of them did not,
        or ``"never"`` (the outcomes tell).
    :param deferrable: wait in the triggerer (default) instead of holding a worker slot.
    :param defer_after: with ``deferrable``, how long the worker goes on waiting after its last submit, in seconds,
        before it hands the edits still running to the triggerer (default 0: at once). The worker is held for the
        submits anyway (N/2 s for N edits at kie's pace), and a night's last edits end about one run time after the
        last submit: with ``defer_after=120`` such a night ends in the worker, each image stored as its edit ends,
        with no deferral, no resume and so no exposure to apache/airflow#72716 (README, "A night's batch").
    """

    template_fields: Sequence[str] = ("edits", "seedream_conn_id", "output_path")
    template_fields_renderers = {"edits": "json"}
    ui_color = "#f6e3ff"
    operator_extra_links = (SeedreamResultImageLink(),)

    def __init__(
        self,
        *,
        edits: Any,
        output_path: Any = None,
        seedream_conn_id: str = SeedreamHook.default_conn_name,
        poll_interval: float = 2.0,
        timeout: float = 3600.0,
        fail_on: str = "any",
        deferrable: bool = True,
        defer_after: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.edits = edits
        self.output_path = output_path
        self.seedream_conn_id = seedream_conn_id
        self.poll_interval = request.check_positive("poll_interval", poll_interval)
        self.timeout = request.check_positive("timeout", timeout)
        self.fail_on = batch.check_fail_on(fail_on)
        self.deferrable = deferrable
        self.defer_after = request.check_non_negative("defer_after", defer_after)

    def execute(self, context: Context) -> list[dict[str, Any]]:
        # Everything is checked before anything is sent: every edit (files included) and where results will go.
        prepared = []
        for index, item in enumerate(batch.check_edits(self.edits)):
            try:
                prepared.append(uploads.prepare(request.TaskRequest(**item)))
            except exc.SeedreamValidationError as error:
                raise batch.item_error(index, error) from None
        if self.output_path:
            from airflow_provider_seedream import storage

            storage.check_output_path(self.output_path)
        store = context.get("task_state_store")
        if store is None:
            self.log.warning("This Airflow has no task_state_store (it arrived in 3.3): if this task is retried "
                             "after submitting, the retry submits and pays for every edit again")
        fingerprints = [item.task.fingerprint() for item in prepared]
        # One read tells whether any try of this task instance began submitting; only then are the edits' own
        # records read (one round trip each through the API server: seconds for a night's batch).
        began = store is not None and not self.is_first_try(context) and store.get(batch.STARTED_KEY) is not None
        saved = [batch.read_saved(store.get(batch.state_key(i)), fingerprint) if began and store is not None
                 else batch.Saved() for i, fingerprint in enumerate(fingerprints)]
        to_submit = sum(1 for s in saved if not s.accepted and not s.uncertain)
        self.log.info("Batch of %d edit(s): %d accepted by a previous try (re-attaching, not paying twice), %d "
                      "uncertain, %d to submit", len(prepared), sum(s.accepted for s in saved),
                      sum(s.uncertain for s in saved), to_submit)
        self._check_balance(to_submit)
        if store is not None and not began and prepared:
            store.set(batch.STARTED_KEY, {"edits": len(prepared), "at": time.time()})
        rate = self.hook.settings.polls_per_second
        with results.BatchHarvest(self, context, poll_interval=self.poll_interval, rate=rate / 2) as harvest:
            outcomes = self._submit(prepared, fingerprints, saved, store, harvest)
            context["ti"].xcom_push(key=results.XCOM_TASK_IDS, value=[o.task_id for o in outcomes])
            # The timeout counts from the end of the submits.
            wait_started = time.time()
            deadline = wait_started + self.timeout
            if not self.deferrable:
                # Waiting here, each result is stored as soon as its task succeeds, while the others still run.
                harvest.wait_rest(deadline, rate)
            elif self.defer_after:
                harvest.linger(min(deadline, wait_started + self.defer_after), deadline=deadline, rate=rate)
        outcomes = harvest.apply(outcomes, final=not self.deferrable)
        waiting_ids = [o.task_id for o in outcomes if o.waiting and o.task_id]
        if not waiting_ids:
            return self._finish(context, outcomes, {})
        from airflow_provider_seedream.triggers.seedream import SeedreamBatchTrigger

        self.log.info("%d of %d edit(s) ended while the batch was submitting; deferring the wait for the other %d to "
                      "the triggerer (deadline in %.0f s)", sum(1 for o in outcomes if o.task_id and not o.waiting),
                      len(outcomes), len(waiting_ids), self.timeout)
        self.defer(
            trigger=SeedreamBatchTrigger(seedream_task_ids=waiting_ids, seedream_conn_id=self.seedream_conn_id,
                                         submitted_at=[harvest.submitted_at(task_id) for task_id in waiting_ids],
                                         poll_interval=self.poll_interval, deadline=deadline,
                                         started_at=wait_started, min_event_delay=waiting.EVENT_HOLDBACK_SECONDS),
            method_name="execute_complete",
            kwargs={"outcomes": [o.record() for o in outcomes]},
            timeout=waiting.defer_timeout(self.timeout),
        )

    def execute_complete(self, context: Context, event: Any = None,
                         outcomes: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Finish after the trigger fired: read every task's event, store the results, apply ``fail_on``."""
        if not isinstance(event, dict) or event.get("status") != "done" or not isinstance(event.get("events"), list):
            raise exc.SeedreamResponseError(f"invalid batch trigger event: {str(event)[:200]}")
        events = {e.get("task_id"): e for e in event["events"] if isinstance(e, dict)}
        return self._finish(context, [batch.Outcome.from_record(r) for r in outcomes or []], events)

    def lineage_inputs(self) -> list[Any]:
        return lineage.batch_inputs(self.edits)

    def _check_balance(self, to_submit: int) -> None:
        price = self.hook.settings.credits_per_image
        if price is None or not to_submit:
            return
        balance = self.hook.get_credits()
        problem = batch.over_budget(to_submit, price, balance)
        if problem:
            raise exc.SeedreamInsufficientCreditsError(problem, code=None)
        self.log.info("Estimated cost %g credits (%d x %g); balance %g", to_submit * price, to_submit, price, balance)

    def _submit(self, prepared: list[uploads.PreparedTask], fingerprints: list[str], saved: list[batch.Saved],
                store: Any, harvest: results.BatchHarvest) -> list[batch.Outcome]:
        """Submit every edit not accepted before, in order, recording each as it goes; never raise for one edit.

        Every accepted edit is handed to ``harvest``, which watches it while the later edits wait for their slot.
        """
        outcomes: list[batch.Outcome] = []
        stopped: exc.SeedreamError | None = None
        started = time.monotonic()
        sent = 0
        for index, (item, fingerprint, before) in enumerate(zip(prepared, fingerprints, saved, strict=True)):
            key = batch.state_key(index)
            if before.task_id is not None:
                outcomes.append(batch.submitted(index, before.task_id))
                harvest.add(outcomes[-1], just_submitted=False)
                continue
            if before.uncertain:
                outcomes.append(batch.not_sent(index, batch.STATE_UNCERTAIN, (
                    f"a previous try was stopped while this edit's createTask was in flight (sent "
                    f"{time.time() - float(before.in_flight_since or 0):.0f} s ago, no task id came back): kie.ai may "
                    "have created and billed it, so it was not sent again; look for it on kie.ai's logs page")))
                continue
            if stopped is not None:
                outcomes.append(batch.not_sent(index, batch.STATE_NOT_SUBMITTED,
                                               f"not submitted: the batch stopped at an earlier edit ({stopped})"))
                continue

            try:
                task_id = self.submit_recorded(item.upload(self.hook), store, key, fingerprint,
                                               idle=harvest.idle)
            except exc.SeedreamSubmitUncertainError as error:  # the mark stays: a retry must not send it again
                outcomes.append(batch.not_sent(index, batch.STATE_UNCERTAIN, str(error)))
                stopped = error
                continue
            except exc.SeedreamError as error:
                outcomes.append(batch.not_sent(index, batch.STATE_REFUSED, str(error), error.code))
                if not isinstance(error, exc.SeedreamValidationError):  # refused for the account, not this edit
                    stopped = error
                self.log.error("edits[%d] was not accepted: %s", index, error)
                continue
            outcomes.append(batch.submitted(index, task_id))
            harvest.add(outcomes[-1], just_submitted=True)
            sent += 1
        if sent:
            seconds = time.monotonic() - started
            self.log.info("Submitted %d edit(s) in %.1f s (%.2f per second)", sent, seconds,
                          sent / seconds if seconds > 0 else float("inf"))
        return outcomes

    def _finish(self, context: Context, outcomes: list[batch.Outcome], events: dict[Any, Any]) -> list[dict[str, Any]]:
        ended = [batch.from_event(o, events.get(o.task_id)) if o.waiting else o for o in outcomes]
        tally = batch.Tally.of(ended)
        self.log.info("Batch of %d edit(s) ended: %s", tally.total, tally.describe())
        for outcome in ended:
            if not outcome.succeeded:
                self.log.warning("edits[%d] %s%s: %s", outcome.index, outcome.state,
                                 f" (task {outcome.task_id})" if outcome.task_id else "",
                                 outcome.fail_msg or outcome.fail_code or "-")
        final = results.deliver_batch(self, context, ended)
        problem = batch.failure(final, self.fail_on)
        if problem:
            raise exc.SeedreamBatchError(problem)
        return [outcome.to_dict() for outcome in final]
