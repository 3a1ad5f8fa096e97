"""Properties of how the provider reads answers and ends waits, with hypothesis.

Whatever kie, or a proxy in front of it, answers (any HTTP status, any body, any Retry-After), parsing ends in a
``SeedreamTask`` that is internally consistent or in one of our typed ``SeedreamError``s, never in anything else;
whatever crosses the triggerer/worker boundary as an event resolves the same way; and a wait fed any sequence of
outcomes ends no later than its deadline.

The shapes that once crashed the parsing (unhashable states, non-finite numbers, absurd nesting, malformed event
payloads) are pinned by the regression tests at the bottom and are part of the strategies.
"""

from __future__ import annotations

import json
import math
import threading
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from airflow_provider_seedream import waitstate, wire
from airflow_provider_seedream import exceptions as exc

KNOWN_BUGS_FIXED = True

# No example database: nothing is written into the checkout, and a run depends only on the code.
PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.too_slow])
BROAD_SETTINGS = settings(PROPERTY_SETTINGS, max_examples=1000)

# ------------------------------------------------------------------------------------------------------ strategies
MAX_SAFE = 2**53


def json_values(nasty: bool = KNOWN_BUGS_FIXED) -> st.SearchStrategy:
    scalars = (st.none() | st.booleans() | st.integers(-MAX_SAFE, MAX_SAFE)
               | st.floats(allow_nan=nasty, allow_infinity=nasty) | st.text(max_size=24))
    if nasty:
        scalars |= st.integers(min_value=10**308, max_value=10**320)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)


ANY_JSON = json_values()
HASHABLE_JSON = st.none() | st.booleans() | st.integers() | st.text(max_size=12) | st.floats(allow_nan=False)
URLS = st.sampled_from(["https://tempfile.aiquickdraw.com/r/0.png", "http://127.0.0.1:8089/results/t/0.png"])
STATES = st.sampled_from(sorted(wire.KNOWN_STATES)) | HASHABLE_JSON | (ANY_JSON if KNOWN_BUGS_FIXED else st.nothing())
NUMBERS = (st.none() | st.integers(-MAX_SAFE, MAX_SAFE) | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=10) | st.booleans())
if KNOWN_BUGS_FIXED:
    NUMBERS |= st.floats() | st.integers(min_value=10**308, max_value=10**320)
RESULT_JSON = st.one_of(
    st.lists(URLS | st.text(max_size=20) | HASHABLE_JSON, max_size=3).map(lambda u: json.dumps({"resultUrls": u})),
    st.dictionaries(st.sampled_from(["resultUrls", "resultObject", "urls"]), ANY_JSON, max_size=2).map(json.dumps),
    ANY_JSON.map(json.dumps),
    st.text(max_size=30),
    ANY_JSON,
)
TASK_DATA = st.fixed_dictionaries(
    {"taskId": st.text(max_size=12) | HASHABLE_JSON, "state": STATES},
    optional={
        "resultJson": RESULT_JSON,
        "failCode": ANY_JSON,
        "failMsg": ANY_JSON,
        "createTime": NUMBERS,
        "updateTime": NUMBERS,
        "completeTime": NUMBERS,
        "costTime": NUMBERS,
        "creditsConsumed": NUMBERS,
        "consumeCredits": NUMBERS,
        "model": ANY_JSON,
        "param": ANY_JSON,
    },
)
CODES = (st.sampled_from([200, 400, 401, 402, 403, 404, 422, 429, 433, 455, 500, 501, 502, 503, 505])
         | st.integers(-10**6, 10**6) | ANY_JSON)
ENVELOPES = st.fixed_dictionaries(
    {},
    optional={
        "code": CODES,
        "msg": st.text(max_size=30) | ANY_JSON,
        "message": st.sampled_from(["recordInfo is null", "success", ""]) | ANY_JSON,
        "data": TASK_DATA | ANY_JSON,
        "success": st.booleans(),
    },
)
BODIES = st.one_of(
    ENVELOPES.map(lambda e: json.dumps(e).encode()),
    ENVELOPES.map(json.dumps),  # a str body, as some callers hand over text
    ANY_JSON.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=80),
    st.text(max_size=80).map(str.encode),
    st.sampled_from([b"", b"<html><body>502 Bad Gateway</body></html>", b"null", b"{", b"\xff\xfe"]),
)
STATUSES = st.integers(100, 599) | st.sampled_from([200, 429, 455, 500, 502, 503, 504])
RETRY_AFTER = st.none() | st.text(max_size=12) | st.floats().map(str) | st.integers(-5, 10**6).map(str)


def parse(status: int, body: bytes | str, retry_after: str | None, asked: str = "fallback-id") -> wire.SeedreamTask:
    return wire.parse_task(wire.parse_envelope(status, body, retry_after), asked)


def check_task(task: wire.SeedreamTask) -> None:
    """What every task the parser hands out must satisfy."""
    assert isinstance(task.task_id, str) and task.task_id
    assert task.state in wire.KNOWN_STATES
    if task.succeeded:
        assert task.result_urls and all(isinstance(u, str) and u for u in task.result_urls)
    else:
        assert task.result_urls == ()
    for number in (task.cost_time, task.credits_consumed):
        assert number is None or (isinstance(number, float) and math.isfinite(number))
    for stamp in (task.create_time, task.update_time, task.complete_time):
        assert stamp is None or isinstance(stamp, int)
    # It crosses the triggerer/worker boundary and goes to XCom as strict JSON, and comes back the same.
    assert wire.SeedreamTask.from_dict(json.loads(json.dumps(task.to_dict(), allow_nan=False))) == task


def check_error(error: exc.SeedreamError) -> None:
    assert type(error).__module__ == exc.__name__
    assert isinstance(str(error), str) and str(error)
    retry_after = getattr(error, "retry_after", None)
    assert retry_after is None or (math.isfinite(retry_after) and retry_after >= 0)


# ------------------------------------------------------------------------------------------------------ properties
@BROAD_SETTINGS
@given(status=STATUSES, body=BODIES, retry_after=RETRY_AFTER)
@example(status=200, body=b"<html>maintenance</html>", retry_after=None)
@example(status=200, body=b'{"code": 200, "msg": "success"}', retry_after=None)
@example(status=200, body=b'{"code": 200, "data": {"taskId": "t", "state": "success", "resultJson": "{"}}',
         retry_after=None)
@example(status=200, body=b'{"code": 200, "data": {"taskId": "t", "state": "paused"}}', retry_after=None)
@example(status=200, body=b'{"code": 200, "data": {"taskId": "t", "state": "success", '
                          b'"resultJson": "{\\"resultUrls\\": []}"}}', retry_after=None)
@example(status=429, body=b"", retry_after="Wed, 21 Oct 2026 07:28:00 GMT")
@example(status=503, body=b'{"code": 455, "msg": "maintenance"}', retry_after="-1")
def test_any_answer_is_a_valid_task_or_a_typed_error(status, body, retry_after):
    try:
        task = parse(status, body, retry_after)
    except exc.SeedreamError as error:
        check_error(error)
    else:
        check_task(task)
        assert 200 <= status < 300


@PROPERTY_SETTINGS
@given(data=TASK_DATA | ANY_JSON, task_id=st.none() | st.text(max_size=8))
def test_any_record_info_data_is_a_valid_task_or_a_typed_error(data, task_id):
    """The same, aimed at recordInfo's ``data`` (the broad test above rarely gets past the envelope to it)."""
    try:
        task = wire.parse_task(data, task_id)
    except exc.SeedreamError as error:
        check_error(error)
    else:
        check_task(task)


GOOD_TASKS = st.fixed_dictionaries(
    {
        "taskId": st.text(alphabet="0123456789abcdef", min_size=1, max_size=32),
        "state": st.sampled_from(sorted(wire.KNOWN_STATES)),
        "createTime": st.integers(0, 2**41),
        "costTime": st.floats(0, 1e6) | st.integers(0, 10**6),
        "failCode": st.sampled_from(["", "500", "422"]),
        "failMsg": st.text(max_size=40),
        "resultJson": st.lists(URLS, min_size=1, max_size=4).map(lambda u: json.dumps({"resultUrls": u})),
    }
)


@PROPERTY_SETTINGS
@given(data=GOOD_TASKS, message_key=st.sampled_from(["msg", "message"]))
def test_every_well_formed_answer_is_accepted_as_sent(data, message_key):
    body = json.dumps({"code": 200, message_key: "success", "data": data}).encode()
    task = parse(200, body, None, data["taskId"])
    check_task(task)
    assert (task.task_id, task.state, task.create_time) == (data["taskId"], data["state"], data["createTime"])
    if data["state"] == wire.STATE_SUCCESS:
        assert list(task.result_urls) == json.loads(data["resultJson"])["resultUrls"]


EVENT_TASKS = st.builds(
    lambda tid, state, urls: wire.SeedreamTask(tid, state, tuple(urls) if state == "success" else ()).to_dict(),
    st.text(min_size=1, max_size=8), st.sampled_from(sorted(wire.KNOWN_STATES)), st.lists(URLS, min_size=1, max_size=2),
)
EVENTS = st.one_of(
    ANY_JSON,
    st.fixed_dictionaries(
        {"status": st.sampled_from(sorted(waitstate.EVENT_STATUSES)) | st.text(max_size=8), "task_id": st.text(max_size=8)},
        optional={
            "message": st.text(max_size=20) | ANY_JSON,
            "task": EVENT_TASKS | (ANY_JSON if KNOWN_BUGS_FIXED else st.none()),
            "error_type": st.sampled_from([name for name in dir(exc) if name.startswith("Seedream")
                                           and (KNOWN_BUGS_FIXED or name != "SeedreamTaskFailedError")])
            | st.text(max_size=12) | st.none(),
        },
    ),
)


@PROPERTY_SETTINGS
@given(event=EVENTS, expected=st.none() | st.text(max_size=8))
def test_any_trigger_event_resolves_to_a_task_or_a_typed_error(event, expected):
    """Events are checked, not trusted: they cross a process boundary and may come from another version."""
    try:
        task = waitstate.resolve_event(event, expected)
    except exc.SeedreamError as error:
        check_error(error)
    else:
        assert task.succeeded and task.result_urls
        assert event["status"] == waitstate.EVENT_SUCCESS


OUTCOMES = st.one_of(
    st.builds(lambda s: wire.SeedreamTask("t", s), st.sampled_from(sorted(wire.PENDING_STATES))),
    st.builds(lambda ra: exc.SeedreamRateLimitError("429", retry_after=ra),
              st.none() | st.floats(0, 1e300) | st.floats(0, 120)),
    st.builds(lambda ra: exc.SeedreamServiceUnavailableError("455", retry_after=ra), st.none() | st.floats(0, 1e9)),
    st.just(exc.SeedreamServerError("500", code=500)),
    st.builds(lambda sent: exc.SeedreamTransportError("reset", sent=sent), st.booleans()),
    st.just(exc.SeedreamNotFoundError("recordInfo is null", code=422)),
)


@PROPERTY_SETTINGS
@given(
    outcomes=st.lists(OUTCOMES, min_size=1, max_size=60),
    poll_interval=st.floats(0.01, 60),
    budget=st.floats(0, 7200),
    late=st.lists(st.floats(0, 30), min_size=60, max_size=60),
    max_errors=st.integers(0, 10),
)
def test_a_wait_ends_by_its_deadline_whatever_it_observes(outcomes, poll_interval, budget, late, max_errors):
    """Never a hang: every pause ends by the deadline, and the first look at or past it ends the wait."""
    start = 1_800_000_000.0
    deadline = start + budget
    policy = waitstate.WaitPolicy(poll_interval=poll_interval, deadline=deadline, max_consecutive_errors=max_errors)
    waiter = waitstate.Waiter("t", policy, started_at=start, rng=lambda: 0.5)
    now = start
    for outcome, lateness in zip(outcomes, late):
        step = waiter.observe(outcome, now)
        if step.event is not None:
            assert step.event["status"] in waitstate.EVENT_STATUSES and step.event["task_id"] == "t"
            if step.event["status"] == waitstate.EVENT_TIMEOUT:
                assert now >= deadline and "t" in step.event["message"]
            return
        assert now < deadline, "a look at or past the deadline must end the wait"
        assert 0 <= step.delay <= deadline - now + 1e-6 and math.isfinite(step.delay)
        now += step.delay + lateness  # the process may wake up late


@PROPERTY_SETTINGS
@given(attempt=st.integers(1, 100), retry_after=st.none() | st.floats(0, 1e6), base=st.floats(0.01, 10),
       rng=st.floats(0, 1))
def test_backoff_is_finite_and_honours_retry_after(attempt, retry_after, base, rng):
    delay = wire.backoff_seconds(attempt, retry_after=retry_after, base=base, cap=60.0, rng=lambda: rng)
    assert math.isfinite(delay) and 0 <= delay <= 60.0  # the cap holds whatever the server asks
    if retry_after is not None:
        assert delay >= min(retry_after, 60.0)


@pytest.mark.parametrize("error", [
    exc.SeedreamServerError("500", code=500),
    exc.SeedreamTransportError("timeout after sending", sent=True),
    exc.SeedreamResponseError("garbage"),
    exc.SeedreamApiError("400", code=400),
], ids=["5xx", "reset-after-sending", "garbage", "other-4xx"])
def test_a_create_task_that_kie_may_have_accepted_is_never_resubmitted(error):
    assert not wire.may_resubmit(error)


# ---------------------------------------------------------------------------------- regressions of fixed bugs
BUG_NUMBERS = ("wire.parse_task converts numbers unchecked: _ms lets int(inf) raise OverflowError, float() of a huge "
               "int raises OverflowError, and NaN passes")


@pytest.mark.parametrize("state", [[], {}, ["success"]])
def test_unhashable_state_is_a_response_error(state):
    with pytest.raises(exc.SeedreamResponseError, match="unknown state"):
        wire.parse_task({"taskId": "t", "state": state})


@pytest.mark.parametrize(
    "body",
    [
        '{"code": 200, "data": {"taskId": "t", "state": "waiting", "createTime": Infinity}}',
        '{"code": 200, "data": {"taskId": "t", "state": "waiting", "completeTime": 1e999}}',
        '{"code": 200, "data": {"taskId": "t", "state": "waiting", "costTime": %s}}' % ("9" * 400),
        '{"code": 200, "data": {"taskId": "t", "state": "waiting", "creditsConsumed": NaN}}',
    ],
    ids=["inf-create-time", "1e999-complete-time", "huge-int-cost", "nan-credits"],
)
def test_non_finite_numbers_are_dropped_or_refused(body):
    try:
        task = parse(200, body.encode(), None)
    except exc.SeedreamError:
        return
    check_task(task)


@pytest.mark.parametrize("body", [
    b"[" * 50_000 + b"]" * 50_000,
    json.dumps({"code": 200, "data": {"taskId": "t", "state": "success", "resultJson": "[" * 50_000}}).encode(),
], ids=["body", "resultJson"])
def test_deeply_nested_json_is_a_response_error(body):
    with pytest.raises(exc.SeedreamResponseError):
        parse(200, body, None)


@pytest.mark.parametrize("event", [
    {"status": "success", "task_id": "x", "task": {}},
    {"status": "failed", "task_id": "x", "task": {"task_id": "x"}},
    {"status": "success", "task_id": "x", "task": {"task_id": "x", "state": "success", "result_urls": 5}},
    {"status": "error", "task_id": "x", "message": "boom", "error_type": "SeedreamTaskFailedError"},
], ids=["empty-task", "task-without-state", "urls-not-a-list", "task-failed-error-type"])
def test_malformed_event_payloads_are_typed_errors(event):
    with pytest.raises(exc.SeedreamError):
        waitstate.resolve_event(event, "x")


class SleptTooLong(Exception):
    pass


def test_submit_does_not_sleep_past_submit_timeout_for_a_long_retry_after(emulator, monkeypatch):
    """kie (or a proxy) in maintenance asks to come back in an hour: a 5 s submit budget must not wait that out."""
    from airflow_provider_seedream.hooks.seedream import SeedreamHook

    emulator.faults("createTask", {"kind": "http", "status": 455, "retry_after": 3600})
    real_sleep, caller = time.sleep, threading.get_ident()

    def guarded_sleep(seconds: float) -> None:
        if threading.get_ident() != caller:  # the emulator's own threads
            return real_sleep(seconds)
        if seconds > 5:
            raise SleptTooLong(f"asked to sleep {seconds:.0f} s with a 5 s submit budget")
        return real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", guarded_sleep)
    started = time.monotonic()
    with pytest.raises(exc.SeedreamServiceUnavailableError):
        SeedreamHook(submit_timeout=5).create_edit_task("make it blue", ["https://example.com/a.png"])
    assert time.monotonic() - started < 10
    assert emulator.count("createTask") == 1
