"""The decisions of a batch of edits, free of I/O: reading ``edits``, what a retry finds, outcomes, ``fail_on``.

``SeedreamBatchEditOperator`` submits many edits from one process and waits for all of them in one deferral; it
sends and sleeps, and asks this module everything else: which items a previous try already paid for (from what it
recorded per item in ``task_state_store``), what each item ended as (from the wait's events), and whether the
Airflow task fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_seedream import request, waitstate, wire
from airflow_provider_seedream import exceptions as exc

#: The request fields an item of ``edits`` may hold: those of ``request.TaskRequest`` (``model`` included; what the
#: item's model takes is checked against its spec, as the operators check theirs).
EDIT_FIELDS = request.REQUEST_FIELDS
REQUIRED_FIELDS = ("prompt",)

FailOn = Literal["any", "all", "never"]
FAIL_ON: tuple[FailOn, ...] = ("any", "all", "never")

#: Item states beyond kie's own (``success``, ``fail``, and the running ones when the wait timed out).
#: ``refused``: kie refused the createTask (nothing was created or billed). ``not_submitted``: the batch stopped
#: before this item (a refusal that holds for every item, like a bad key or no credits). ``uncertain``: a try was
#: stopped while this item's createTask was in flight, or the answer could not be read; kie may have billed it, so
#: it is not sent again. ``error``: the wait for it failed (the kie task id is given; a retry waits again).
STATE_REFUSED = "refused"
STATE_NOT_SUBMITTED = "not_submitted"
STATE_UNCERTAIN = "uncertain"
STATE_ERROR = "error"
#: The wait's deadline passed first: the kie task may still finish; a retry waits for it again (no new bill).
STATE_TIMEOUT = "timeout"


#: The ``task_state_store`` key written once, before a batch's first submit: a first try finds nothing there and
#: skips reading every edit's own key.
STARTED_KEY = "seedream_batch"


def state_key(index: int) -> str:
    """The ``task_state_store`` key of item ``index``: one small value per item, written as the item is accepted."""
    return f"seedream_batch_item_{int(index)}"


def check_fail_on(value: Any) -> FailOn:
    if value not in FAIL_ON:
        raise exc.SeedreamValidationError(f"fail_on: must be one of {', '.join(FAIL_ON)}; got {value!r}",
                                          field="fail_on", code=None)
    return value  # type: ignore[no-any-return]


def check_edits(value: Any) -> list[dict[str, Any]]:
    """Return the items of ``edits`` as dicts of request fields; raise naming ``edits[i].field`` for a bad one.

    Only the shape is checked here (a list of dicts with known keys and the required ones); each item's values are
    checked like ``SeedreamEditOperator``'s, by the operator, before the first submit.
    """
    if isinstance(value, str) and value.strip() == "None":
        raise exc.SeedreamValidationError(f"edits: {request.RENDERED_NONE}", field="edits", code=None)
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise exc.SeedreamValidationError(
            f"edits: must be a list of dicts (one per edit: {', '.join(EDIT_FIELDS)}), got {type(value).__name__}",
            field="edits", code=None)
    items: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        where = f"edits[{index}]"
        if not isinstance(item, Mapping):
            raise exc.SeedreamValidationError(f"{where}: must be a dict of request fields, got "
                                              f"{type(item).__name__}", field=where, code=None)
        unknown = sorted(str(key) for key in item if key not in EDIT_FIELDS)
        if unknown:
            raise exc.SeedreamValidationError(
                f"{where}.{unknown[0]}: not a request field of an edit (known: {', '.join(EDIT_FIELDS)})",
                field=f"{where}.{unknown[0]}", code=None)
        missing = [name for name in REQUIRED_FIELDS if name not in item]
        if missing:
            raise exc.SeedreamValidationError(f"{where}.{missing[0]}: required", field=f"{where}.{missing[0]}",
                                              code=None)
        items.append(dict(item))
    return items


def item_error(index: int, error: exc.SeedreamValidationError) -> exc.SeedreamValidationError:
    """The same refusal, with the field named as ``edits[i].field`` (the operator checks each item on its own)."""
    where = f"edits[{index}]"
    return exc.SeedreamValidationError(f"{where}.{error}", field=f"{where}.{error.field or '?'}", code=None)


@dataclass(frozen=True)
class Saved:
    """What a previous try recorded for one item: nothing, an accepted task id, or a createTask left in flight."""

    task_id: str | None = None
    in_flight_since: float | None = None

    @property
    def accepted(self) -> bool:
        return self.task_id is not None

    @property
    def uncertain(self) -> bool:
        return self.task_id is None and self.in_flight_since is not None


def read_saved(value: Any, fingerprint: str) -> Saved:
    """Read one item's record; a record for other inputs (the edits changed between tries) counts as nothing."""
    if not isinstance(value, Mapping) or value.get("fingerprint") != fingerprint:
        return Saved()
    task_id = value.get("task_id")
    if wire.is_task_id(task_id):
        return Saved(task_id=task_id)
    since = value.get("in_flight_since")
    if isinstance(since, (int, float)) and not isinstance(since, bool):
        return Saved(in_flight_since=float(since))
    return Saved()


def accepted_record(task_id: str, fingerprint: str, now: float) -> dict[str, Any]:
    return {"task_id": task_id, "fingerprint": fingerprint, "submitted_at": now}


def in_flight_record(fingerprint: str, now: float) -> dict[str, Any]:
    return {"fingerprint": fingerprint, "in_flight_since": now}


@dataclass(frozen=True)
class Outcome:
    """What one edit of the batch ended as: the dict the operator returns for it (``to_dict``)."""

    index: int
    state: str
    task_id: str | None = None
    result_urls: tuple[str, ...] = ()
    stored_images: tuple[str, ...] = ()
    fail_code: str | None = None
    fail_msg: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.state == wire.STATE_SUCCESS

    @property
    def waiting(self) -> bool:
        """Submitted and not yet known to have ended: the wait decides."""
        return self.task_id is not None and self.state not in wire.TERMINAL_STATES \
            and self.state not in (STATE_UNCERTAIN, STATE_ERROR, STATE_TIMEOUT)

    def to_dict(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "state": self.state, "result_urls": list(self.result_urls),
                "stored_images": list(self.stored_images), "fail_code": self.fail_code, "fail_msg": self.fail_msg}

    def record(self) -> dict[str, Any]:
        """The plain form carried through a deferral (``index`` included)."""
        return {"index": self.index, **self.to_dict()}

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Outcome:
        task_id = data.get("task_id")
        if task_id is not None:
            task_id = wire.check_task_id(task_id, "outcome.task_id")
        return cls(index=int(data["index"]), state=str(data["state"]), task_id=task_id,
                   result_urls=tuple(data.get("result_urls") or ()),
                   stored_images=tuple(data.get("stored_images") or ()),
                   fail_code=data.get("fail_code"), fail_msg=data.get("fail_msg"))


def submitted(index: int, task_id: str) -> Outcome:
    return Outcome(index, wire.STATE_WAITING, task_id)


def not_sent(index: int, state: str, message: str, code: int | None = None) -> Outcome:
    return Outcome(index, state, fail_code=str(code) if code is not None else None, fail_msg=message)


def from_event(outcome: Outcome, event: Any) -> Outcome:
    """Read the wait's event for a submitted item: the same checks a single wait's event passes."""
    assert outcome.task_id is not None
    try:
        task = waitstate.resolve_event(event, outcome.task_id)
    except exc.SeedreamTaskFailedError as failed:
        return Outcome(outcome.index, wire.STATE_FAIL, outcome.task_id, fail_code=failed.task.fail_code,
                       fail_msg=failed.task.fail_msg)
    except exc.SeedreamError as error:
        state = STATE_TIMEOUT if isinstance(error, exc.SeedreamTimeoutError) else STATE_ERROR
        return Outcome(outcome.index, state, outcome.task_id, fail_code=type(error).__name__, fail_msg=str(error))
    return Outcome(outcome.index, wire.STATE_SUCCESS, outcome.task_id, result_urls=task.result_urls)


@dataclass
class Tally:
    """How many items ended how; the summary line and ``fail_on`` read it."""

    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, outcomes: Sequence[Outcome]) -> Tally:
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome.state] = counts.get(outcome.state, 0) + 1
        return cls(counts)

    @property
    def succeeded(self) -> int:
        return self.counts.get(wire.STATE_SUCCESS, 0)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def describe(self) -> str:
        return ", ".join(f"{count} {state}" for state, count in sorted(self.counts.items())) or "no edits"


def failure(outcomes: Sequence[Outcome], fail_on: FailOn) -> str | None:
    """Return why the Airflow task fails under ``fail_on``, or ``None`` when it succeeds."""
    tally = Tally.of(outcomes)
    failed = tally.total - tally.succeeded
    if not failed or fail_on == "never":
        return None
    if fail_on == "all" and tally.succeeded:
        return None
    first = next(o for o in outcomes if not o.succeeded)
    rule = "every edit failed" if fail_on == "all" else f"{failed} of {tally.total} edit(s) did not succeed"
    return (f"{rule} (fail_on={fail_on!r}; {tally.describe()}); first: edits[{first.index}] {first.state}"
            f"{f' (task {first.task_id})' if first.task_id else ''}: {first.fail_msg or first.fail_code or '-'}")


def over_budget(to_submit: int, credits_per_image: float | None, balance: float) -> str | None:
    """Return why a batch may not start for lack of credits, or ``None`` (no price given, or enough credits)."""
    if credits_per_image is None or to_submit == 0:
        return None
    estimate = to_submit * credits_per_image
    if estimate <= balance:
        return None
    return (f"the batch would cost about {estimate:g} credits ({to_submit} edit(s) x {credits_per_image:g}, the "
            f"connection's extra credits_per_image) and the balance is {balance:g}: nothing was submitted")
