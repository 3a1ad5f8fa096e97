"""The batch operator against the emulator: checks before spend, one deferral, outcomes in order, resume, fail_on."""

from __future__ import annotations

import json
import time

import pytest
import requests

from airflow_provider_seedream import batch, waiting
from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream.operators.seedream import SeedreamBatchEditOperator
from airflow_provider_seedream.triggers.seedream import SeedreamBatchTrigger
from airflow_provider_seedream.version_compat import TaskDeferred
from support import DictStateStore, RunningTI, run_trigger, use_connection


@pytest.fixture(autouse=True)
def no_holdback(monkeypatch):
    """The trigger's hold-back (apache/airflow#72716) guards real triggerers; here it would only add 6 s a test."""
    monkeypatch.setattr(waiting, "EVENT_HOLDBACK_SECONDS", 0.0)


def batch_op(emulator, edits, **kwargs) -> SeedreamBatchEditOperator:
    kwargs.setdefault("poll_interval", 0.1)
    kwargs.setdefault("timeout", 60)
    return SeedreamBatchEditOperator(task_id="batch", edits=edits, **kwargs)


def edits_for(emulator, *prompts: str) -> list[dict]:
    url = emulator.sample_url()
    return [{"prompt": prompt, "image_urls": [url]} for prompt in prompts]


def ctx(store: DictStateStore | None = None) -> dict:
    context: dict = {"ti": RunningTI(task_id="batch"), "run_id": "manual__1"}
    if store is not None:
        context["task_state_store"] = store
    return context


def run_deferred(op: SeedreamBatchEditOperator, context: dict) -> list[dict]:
    """Run the batch as Airflow does: execute until it defers, run the trigger, resume with its event."""
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, SeedreamBatchTrigger)
    assert "canary-" not in json.dumps(trigger.serialize()[1])  # the session's API key starts so (conftest)
    assert trigger.min_event_delay == waiting.EVENT_HOLDBACK_SECONDS  # patched to 0 here; 6 s for real
    kwargs = json.loads(json.dumps(deferred.value.kwargs))  # what the metadata DB keeps for the resume
    return op.execute_complete(context, run_trigger(trigger), **kwargs)


# ---------------------------------------------------------------------------------------------- checks before spend
@pytest.mark.parametrize(
    ("edits", "field"),
    [
        ("not a list", "edits"),
        ({"prompt": "p"}, "edits"),
        ("None", "edits"),
        ([{"prompt": "p", "image_urls": ["https://example.com/a.png"]}, "text"], "edits[1]"),
        ([{"prompt": "p", "image_urls": ["https://example.com/a.png"], "colour": "red"}], "edits[0].colour"),
        ([{"image_urls": ["https://example.com/a.png"]}], "edits[0].prompt"),
        ([{"prompt": "p", "image_urls": ["https://example.com/a.png"]},
          {"prompt": "p", "image_urls": ["https://example.com/a.png"]},
          {"prompt": "p", "image_urls": ["https://example.com/a.png"], "aspect_ratio": "5:4"}], "edits[2].aspect_ratio"),
        ([{"prompt": "p", "image_urls": ["ftp://example.com/a.png"]}], "edits[0].image_urls[0]"),
        ([{"prompt": "p", "image_urls": ["/no/such/file.png"]}], "edits[0].image_urls[0]"),
    ],
)
def test_a_bad_edit_fails_naming_its_index_before_anything_is_sent(emulator, edits, field):
    with pytest.raises(exc.SeedreamValidationError) as error:
        batch_op(emulator, edits).execute(ctx(DictStateStore()))
    assert error.value.field == field and str(error.value).startswith(field)
    assert emulator.count("createTask") == 0 and emulator.count("upload") == 0


def test_fail_on_is_checked_when_the_dag_is_parsed():
    with pytest.raises(exc.SeedreamValidationError, match="fail_on: must be one of any, all, never"):
        SeedreamBatchEditOperator(task_id="b", edits=[], fail_on="some")


def test_defer_after_is_checked_when_the_dag_is_parsed():
    with pytest.raises(exc.SeedreamValidationError, match="defer_after: must be a number of at least 0"):
        SeedreamBatchEditOperator(task_id="b", edits=[], defer_after=-1)


def test_a_batch_dearer_than_the_balance_fails_before_its_first_submit(emulator, monkeypatch, api_key):
    requests.post(f"{emulator.url}/_emulator/credits", json={"balance": 10.0}, timeout=5).raise_for_status()
    use_connection(monkeypatch, api_key, emulator.url, upload_base_url=emulator.url, submits_per_10s=10_000,
                   credits_per_image=6.5)
    with pytest.raises(exc.SeedreamInsufficientCreditsError, match=r"about 13 credits \(2 edit\(s\) x 6.5"):
        batch_op(emulator, edits_for(emulator, "a", "b")).execute(ctx(DictStateStore()))
    assert emulator.count("createTask") == 0
    one = run_deferred(batch_op(emulator, edits_for(emulator, "a")), ctx(DictStateStore()))  # 6.5 <= 10: goes
    assert [o["state"] for o in one] == ["success"]


# ---------------------------------------------------------------------------------------------- the batch
def test_a_batch_defers_once_and_returns_one_outcome_per_edit_in_order(emulator, tmp_path):
    edits = edits_for(emulator, "[emulator: seconds=1.5]", "[emulator: seconds=0.2]", "[emulator: seconds=0.8]")
    context = ctx(DictStateStore())
    outcomes = run_deferred(batch_op(emulator, edits, output_path=str(tmp_path)), context)
    assert [o["state"] for o in outcomes] == ["success"] * 3
    assert set(outcomes[0]) == {"task_id", "state", "result_urls", "stored_images", "fail_code", "fail_msg"}
    ids = context["ti"].xcoms["seedream_task_ids"]
    assert [o["task_id"] for o in outcomes] == ids and len(set(ids)) == 3
    assert emulator.count("createTask") == 3
    for index, outcome in enumerate(outcomes):
        assert outcome["result_urls"]
        (stored,) = outcome["stored_images"]
        assert stored.endswith(f"test/manual__1/batch/edit-{index}_image-0.png")
        assert (tmp_path / "test" / "manual__1" / "batch" / f"edit-{index}_image-0.png").stat().st_size > 0
    assert context["ti"].xcoms["batch_results"] == outcomes
    assert context["ti"].xcoms["stored_images"] == [o["stored_images"][0] for o in outcomes]


def test_a_blocking_batch_waits_in_the_worker(emulator):
    edits = edits_for(emulator, "[emulator: seconds=0.5]", "[emulator: seconds=0.3]")
    outcomes = batch_op(emulator, edits, deferrable=False).execute(ctx())
    assert [o["state"] for o in outcomes] == ["success", "success"]
    assert emulator.count("createTask") == 2


@pytest.mark.parametrize(("fail_on", "fails"), [("any", True), ("all", False), ("never", False)])
def test_a_remote_failure_is_reported_and_fails_the_task_only_as_fail_on_says(emulator, fail_on, fails, tmp_path):
    edits = edits_for(emulator, "ok [emulator: seconds=0.2]",
                      "[emulator: outcome=fail, fail_code=422, fail_msg=Prompt rejected, seconds=0.2]")
    context = ctx(DictStateStore())
    op = batch_op(emulator, edits, fail_on=fail_on, output_path=str(tmp_path))
    if fails:
        with pytest.raises(exc.SeedreamBatchError, match=r"1 of 2 edit\(s\) did not succeed.*edits\[1\] fail"):
            run_deferred(op, context)
        outcomes = context["ti"].xcoms["batch_results"]  # pushed before the task failed
    else:
        outcomes = run_deferred(op, context)
    assert [o["state"] for o in outcomes] == ["success", "fail"]
    assert outcomes[1]["fail_code"] == "422" and outcomes[1]["fail_msg"] == "Prompt rejected"
    assert outcomes[0]["stored_images"] and not outcomes[1]["stored_images"]  # the success is stored regardless


def test_fail_on_all_fails_when_no_edit_succeeded(emulator):
    edits = edits_for(emulator, "[emulator: outcome=fail, seconds=0.1]")
    with pytest.raises(exc.SeedreamBatchError, match="every edit failed"):
        run_deferred(batch_op(emulator, edits, fail_on="all"), ctx())


def test_an_edit_kie_refuses_is_reported_and_the_others_go_on(emulator):
    emulator.faults("createTask", {"kind": "delay", "seconds": 0}, {"kind": "body", "code": 422})
    outcomes = run_deferred(batch_op(emulator, edits_for(emulator, "a", "b", "c"), fail_on="never"), ctx())
    assert [o["state"] for o in outcomes] == ["success", "refused", "success"]
    assert outcomes[1]["task_id"] is None and outcomes[1]["fail_code"] == "422"


def test_a_refusal_for_the_whole_account_stops_the_batch_but_keeps_what_was_paid_for(emulator):
    emulator.faults("createTask", {"kind": "delay", "seconds": 0}, {"kind": "body", "code": 402})
    outcomes = run_deferred(batch_op(emulator, edits_for(emulator, "a", "b", "c"), fail_on="never"), ctx())
    assert [o["state"] for o in outcomes] == ["success", "refused", "not_submitted"]
    assert emulator.count("createTask") == 2
    assert "402" in outcomes[2]["fail_msg"]


# ---------------------------------------------------------------------------------------------- retries
def test_a_retry_re_attaches_to_every_accepted_edit_and_never_sends_an_uncertain_one_again(emulator):
    """The first try's third createTask is accepted (and charged) but the answer is lost: it stays 'uncertain',
    the fourth is not sent. The retry submits only the fourth."""
    store = DictStateStore()
    emulator.faults("createTask", {"kind": "delay", "seconds": 0}, {"kind": "delay", "seconds": 0},
                    {"kind": "accept_then_reset"})
    edits = edits_for(emulator, "a", "b", "c", "d")
    first = batch_op(emulator, edits, fail_on="never", deferrable=False).execute(ctx(store))
    assert [o["state"] for o in first] == ["success", "success", "uncertain", "not_submitted"]
    assert emulator.count("createTask") == 3
    assert store.data[batch.state_key(2)].get("in_flight_since") and "task_id" not in store.data[batch.state_key(2)]

    second = run_deferred(batch_op(emulator, edits, fail_on="never"), ctx(store))
    assert emulator.count("createTask") == 4  # only the fourth edit was sent
    assert [o["state"] for o in second] == ["success", "success", "uncertain", "success"]
    assert [o["task_id"] for o in second[:2]] == [o["task_id"] for o in first[:2]]
    assert "may have created and billed it" in second[2]["fail_msg"]


def test_a_retry_with_changed_edits_submits_the_changed_ones_only(emulator):
    store = DictStateStore()
    edits = edits_for(emulator, "a", "b")
    first = run_deferred(batch_op(emulator, edits), ctx(store))
    edits[1]["prompt"] = "b, but bluer"
    second = run_deferred(batch_op(emulator, edits), ctx(store))
    assert second[0]["task_id"] == first[0]["task_id"] and second[1]["task_id"] != first[1]["task_id"]
    assert emulator.count("createTask") == 3


def test_an_invalid_trigger_event_fails_loudly(emulator):
    op = batch_op(emulator, edits_for(emulator, "a"))
    with pytest.raises(exc.SeedreamResponseError, match="invalid batch trigger event"):
        op.execute_complete(ctx(), {"status": "success"}, outcomes=[])


def test_a_missing_event_for_one_task_is_an_error_for_that_edit_only(emulator):
    context = ctx()
    op = batch_op(emulator, edits_for(emulator, "a", "b"), fail_on="never")
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    event = run_trigger(deferred.value.trigger)
    event["events"] = event["events"][:1]
    outcomes = op.execute_complete(context, event, **deferred.value.kwargs)
    assert [o["state"] for o in outcomes] == ["success", "error"]


def test_the_batch_trigger_reports_every_task_in_the_order_given(emulator):
    from airflow_provider_seedream.hooks.seedream import SeedreamHook

    hook = SeedreamHook()
    edits = edits_for(emulator, "[emulator: seconds=0.6]", "[emulator: outcome=fail, seconds=0.2]")
    from airflow_provider_seedream import request, uploads

    first, second = (hook.submit_task(uploads.prepare(request.TaskRequest(**e)).task) for e in edits)
    trigger = SeedreamBatchTrigger([first, "unknown-task", second], poll_interval=0.1, not_found_grace=0.5)
    event = run_trigger(trigger)
    assert event["status"] == "done"
    assert [(e["task_id"], e["status"]) for e in event["events"]] == [
        (first, "success"), ("unknown-task", "error"), (second, "failed")]


def test_an_image_that_cannot_be_stored_fails_the_batch_after_the_others_are_stored(emulator, tmp_path, monkeypatch):
    from airflow_provider_seedream import results

    monkeypatch.setattr(results, "STORE_THREADS", 1)  # in order, so that the faults hit the first edit's image
    context = ctx(DictStateStore())
    op = batch_op(emulator, edits_for(emulator, "a", "b", "c"), output_path=str(tmp_path))
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    event = run_trigger(deferred.value.trigger)
    emulator.faults("results", *[{"kind": "http", "status": 500}] * 3)  # every attempt at one image
    with pytest.raises(exc.SeedreamStorageError, match=r"1 succeeded edit\(s\) of the batch could not be stored.*"
                                                       r"edits\[0\]") as error:
        op.execute_complete(context, event, **deferred.value.kwargs)
    outcomes = context["ti"].xcoms["batch_results"]
    assert [bool(o["stored_images"]) for o in outcomes] == [False, True, True]
    assert error.value.result_urls == outcomes[0]["result_urls"]


class CountingStore(DictStateStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, key: str) -> object:
        self.reads += 1
        return super().get(key)


def test_a_first_try_reads_one_key_not_one_per_edit_and_a_retry_reads_them_all(emulator):
    store = CountingStore()
    edits = edits_for(emulator, "a", "b", "c")
    run_deferred(batch_op(emulator, edits), ctx(store))
    assert store.reads == 1 and batch.STARTED_KEY in store.data
    store.reads = 0
    run_deferred(batch_op(emulator, edits), ctx(store))
    assert store.reads == 1 + len(edits)
    assert emulator.count("createTask") == 3


def test_a_blocking_batch_stores_each_result_as_soon_as_its_task_succeeds(emulator, tmp_path):
    """The short edit's image is written before the long edit has even finished: stored during the wait."""
    edits = edits_for(emulator, "[emulator: seconds=4]", "[emulator: seconds=0.3]")
    outcomes = batch_op(emulator, edits, deferrable=False, output_path=str(tmp_path)).execute(ctx())
    assert [o["state"] for o in outcomes] == ["success", "success"]
    long_done = emulator.stats()["tasks"][outcomes[0]["task_id"]]["completed"]
    (short_image,) = tmp_path.rglob("edit-1_image-0.*")
    assert short_image.stat().st_mtime < long_done
    assert all(o["stored_images"] for o in outcomes)


def test_edits_that_end_while_later_ones_wait_for_their_slot_are_stored_before_the_batch_defers(
        emulator, tmp_path, monkeypatch, api_key):
    """Two submits per 10 s: the first two edits end (and are stored) while the third waits for its slot, so the
    deferral waits for the last two only, each from its own submit, and nothing is downloaded twice."""
    from airflow_provider_seedream import pacing
    from airflow_provider_seedream.hooks.seedream import SeedreamHook

    use_connection(monkeypatch, api_key, emulator.url, upload_base_url=emulator.url, submits_per_10s=2)
    SeedreamHook().pacer.clear()
    context = ctx(DictStateStore())
    op = batch_op(emulator, edits_for(emulator, *["[emulator: seconds=0.3]"] * 4), output_path=str(tmp_path))
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    tasks = emulator.stats()["tasks"]
    ids = context["ti"].xcoms["seedream_task_ids"]
    trigger = deferred.value.trigger
    assert trigger.seedream_task_ids == ids[2:]
    assert [round(moment, 1) for moment in trigger.submitted_at] == [round(tasks[i]["created"], 1) for i in ids[2:]]
    assert trigger.submitted_at[0] - tasks[ids[0]]["created"] >= pacing.KIE_CREATE_WINDOW_SECONDS  # paced
    early = deferred.value.kwargs["outcomes"][:2]
    assert [o["state"] for o in early] == ["success", "success"]
    for index, outcome in enumerate(early):
        (stored,) = outcome["stored_images"]
        (image,) = tmp_path.rglob(f"edit-{index}_image-0.*")
        assert stored.endswith(image.name) and image.stat().st_mtime < tasks[ids[2]]["created"]
    assert all(o["state"] == "waiting" and not o["stored_images"] for o in deferred.value.kwargs["outcomes"][2:])
    downloads = emulator.count("results")
    assert downloads == 2
    kwargs = json.loads(json.dumps(deferred.value.kwargs))
    outcomes = op.execute_complete(context, run_trigger(trigger), **kwargs)
    assert [o["state"] for o in outcomes] == ["success"] * 4 and all(o["stored_images"] for o in outcomes)
    assert emulator.count("results") == 4  # the early two were not fetched again
    assert context["ti"].xcoms["stored_images"] == [o["stored_images"][0] for o in outcomes]
    assert emulator.count("createTask") == 4


def test_the_batch_trigger_counts_each_wait_from_that_task_s_own_submit(emulator):
    """A task kie does not know, submitted a minute ago, is past its 30 s not-yet-visible grace at once; counted from
    the deferral it would be waited for 30 s more."""
    trigger = SeedreamBatchTrigger(["unknown-task"], poll_interval=0.1, not_found_grace=30,
                                   submitted_at=[time.time() - 60])
    classpath, kwargs = trigger.serialize()
    assert json.loads(json.dumps(kwargs))["submitted_at"] == trigger.submitted_at
    started = time.monotonic()
    event = run_trigger(SeedreamBatchTrigger(**kwargs))
    assert [e["status"] for e in event["events"]] == ["error"]
    assert time.monotonic() - started < 30
    assert emulator.count("recordInfo") == 1


def test_the_batch_trigger_wants_one_submit_moment_per_task():
    with pytest.raises(ValueError, match="one moment per task id expected"):
        SeedreamBatchTrigger(["a1", "b2"], submitted_at=[1.0])


@pytest.mark.parametrize(
    ("delay", "unfinished", "rate", "pause"),
    [
        (2.6, 94, 8.0, 2.6),  # many left: the schedule's own pause (they share the budget)
        (2.6, 16, 8.0, 2.0),  # spread over the budget: 16 tasks at 8 per second
        (2.6, 3, 8.0, 1.0),  # few left: once a second each, not faster
        (0.5, 3, 8.0, 0.5),  # the schedule's pause when it is shorter already
        (30.0, 1, 2.0, 1.0),
    ],
)
def test_a_batch_s_last_tasks_share_the_spare_budget(delay, unfinished, rate, pause):
    from airflow_provider_seedream.triggers.seedream import spread_pause

    assert spread_pause(delay, unfinished, rate) == pytest.approx(pause)


def test_a_first_try_reads_nothing_from_task_state_store_and_a_retry_still_re_attaches(emulator):
    """Try 1 cannot find anything an earlier try recorded, so neither operator spends a read on it (one round trip
    through the API server per mapped task); try 2 reads and re-attaches, never paying twice."""
    from airflow_provider_seedream.operators.seedream import SeedreamEditOperator

    store = CountingStore()
    first = ctx(store)
    first["ti"].try_number = 1
    edit = SeedreamEditOperator(task_id="edit", prompt="p", image_urls=[emulator.sample_url()])
    task_id = edit.execute(first)
    run_deferred(batch_op(emulator, edits_for(emulator, "a", "b")), first)
    assert store.reads == 0 and emulator.count("createTask") == 3
    assert store.data["seedream_task"]["task_id"] == task_id  # written all the same, for a retry
    retry = ctx(store)
    retry["ti"].try_number = 2
    assert edit.execute(retry) == task_id
    run_deferred(batch_op(emulator, edits_for(emulator, "a", "b")), retry)
    assert store.reads == 1 + 1 + 2 and emulator.count("createTask") == 3


def test_watching_while_submitting_never_fails_a_submit(emulator, logs):
    """The watch only saves time later: if it breaks (here its hook raises), it stops for the rest of the batch and
    the pause is still waited out; the edits are then all left to the deferral."""
    from airflow_provider_seedream import results

    class Broken:
        log = None

        def observe(self, waiter, log):
            raise RuntimeError("boom")

    op = batch_op(emulator, edits_for(emulator, "a"))
    with results.BatchHarvest(op, ctx(), poll_interval=0.1, rate=10) as harvest:
        harvest.add(batch.submitted(0, "task1"), just_submitted=False)
        harvest.watch.hook = Broken()
        started = time.monotonic()
        harvest.idle(0.3)
        harvest.idle(0.2)
        assert time.monotonic() - started >= 0.5
    assert "Stopped watching the batch's edits while submitting (RuntimeError: boom)" in logs.text()
    assert harvest.apply([batch.submitted(0, "task1")], final=False)[0].waiting


# ---------------------------------------------------------------------------------------------- defer_after
def test_with_defer_after_a_batch_whose_edits_end_meanwhile_finishes_in_the_worker_without_deferring(
        emulator, tmp_path):
    context = ctx(DictStateStore())
    edits = edits_for(emulator, "[emulator: seconds=0.4]", "[emulator: outcome=fail, fail_code=422, seconds=0.2]",
                      "[emulator: seconds=0.8]")
    started = time.monotonic()
    outcomes = batch_op(emulator, edits, output_path=str(tmp_path), fail_on="never", defer_after=120).execute(context)
    assert time.monotonic() - started < 60  # returned when the last edit ended, not at defer_after
    assert [o["state"] for o in outcomes] == ["success", "fail", "success"]
    assert outcomes[1]["fail_code"] == "422"
    for index in (0, 2):
        (image,) = tmp_path.rglob(f"edit-{index}_image-0.*")
        (stored,) = outcomes[index]["stored_images"]
        assert stored.endswith(image.name)
    assert context["ti"].xcoms["batch_results"] == outcomes
    assert emulator.count("createTask") == 3 and emulator.count("results") == 2


def test_with_defer_after_the_edits_still_running_then_are_deferred_and_the_ended_ones_kept(emulator, tmp_path):
    context = ctx(DictStateStore())
    edits = edits_for(emulator, "[emulator: seconds=0.2]", "[emulator: seconds=4]")
    op = batch_op(emulator, edits, output_path=str(tmp_path), defer_after=1.0)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    ids = context["ti"].xcoms["seedream_task_ids"]
    assert deferred.value.trigger.seedream_task_ids == ids[1:]
    first, second = deferred.value.kwargs["outcomes"]  # the short edit was seen end (and stored) only by waiting
    assert first["state"] == "success" and first["stored_images"]
    assert second["state"] == "waiting" and not second["stored_images"]  # deferred at defer_after, not at its end
    kwargs = json.loads(json.dumps(deferred.value.kwargs))
    outcomes = op.execute_complete(context, run_trigger(deferred.value.trigger), **kwargs)
    assert [o["state"] for o in outcomes] == ["success", "success"] and all(o["stored_images"] for o in outcomes)
    assert emulator.count("results") == 2  # the first image was not downloaded again


def test_with_defer_after_a_failing_watch_in_the_worker_defers_every_edit(emulator, monkeypatch):
    """A failing watch in the worker only costs the saving: the deferral waits for every edit."""
    from airflow_provider_seedream import results

    def broken(self, *args, **kwargs):
        raise RuntimeError("watch down")

    context = ctx(DictStateStore())
    op = batch_op(emulator, edits_for(emulator, "[emulator: seconds=0.3]"), defer_after=30)
    monkeypatch.setattr(results.TaskWatch, "run", broken)
    started = time.monotonic()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    assert time.monotonic() - started < 5
    assert deferred.value.trigger.seedream_task_ids == context["ti"].xcoms["seedream_task_ids"]
