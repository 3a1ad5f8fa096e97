"""Table tests of the pure core: inputs, settings, envelopes, task parsing, retry rules, the wait state machine."""

from __future__ import annotations

import json
import math

import pytest

from airflow_provider_seedream import connection, request, waitstate, wire
from airflow_provider_seedream import exceptions as exc

URL = "https://example.com/a.png"


# ---------------------------------------------------------------------------------------------------------------- input
def test_valid_input_builds_documented_body():
    edit = request.build_edit_input("make it blue", [URL], "16:9", "high", "https://hooks.example.com/cb")
    assert edit.body() == {
        "model": "seedream/4.5-edit",
        "callBackUrl": "https://hooks.example.com/cb",
        "input": {"prompt": "make it blue", "image_urls": [URL], "aspect_ratio": "16:9", "quality": "high"},
    }


def test_defaults_are_always_sent_and_callback_omitted():
    body = request.build_edit_input("p", [URL]).body()
    assert body["input"]["aspect_ratio"] == "1:1" and body["input"]["quality"] == "basic"
    assert "callBackUrl" not in body and "nsfw_checker" not in body["input"]


def test_nsfw_checker_is_sent_only_when_set():
    assert request.build_edit_input("p", [URL], nsfw_checker=False).body()["input"]["nsfw_checker"] is False


@pytest.mark.parametrize(
    "raw, expected",
    [
        ('["https://a.example/1.png", "https://a.example/2.png"]', ["https://a.example/1.png", "https://a.example/2.png"]),
        ("['https://a.example/1.png']", ["https://a.example/1.png"]),
        ("https://a.example/1.png", ["https://a.example/1.png"]),
        (("https://a.example/1.png",), ["https://a.example/1.png"]),
    ],
)
def test_templated_url_lists_are_read_back(raw, expected):
    assert list(request.build_edit_input("p", raw).image_urls) == expected


# The bad-input table: each must be refused naming the field, before anything is sent.
BAD_INPUTS = [
    ({"prompt": ""}, "prompt", "must not be empty"),
    ({"prompt": "   "}, "prompt", "must not be empty"),
    ({"prompt": "x" * 3001}, "prompt", "at most 3000"),
    ({"prompt": None}, "prompt", "must be a string"),
    ({"prompt": 42}, "prompt", "must be a string"),
    ({"image_urls": []}, "image_urls", "1 to 14"),
    ({"image_urls": [URL] * 15}, "image_urls", "1 to 14"),
    ({"image_urls": None}, "image_urls", "list of 1 to 14"),
    ({"image_urls": 7}, "image_urls", "list of 1 to 14"),
    ({"image_urls": "[not a list"}, "image_urls", "could not read"),
    ({"image_urls": '{"a": 1}'}, "image_urls[0]", "http(s) URL"),
    ({"image_urls": '[1, 2'}, "image_urls", "could not read"),
    ({"image_urls": '["https://a.example/1.png", 5]'}, "image_urls[1]", "URL string"),
    ({"image_urls": ["ftp://example.com/a.png"]}, "image_urls[0]", "http or https"),
    ({"image_urls": [URL, "file:///tmp/a.png"]}, "image_urls[1]", "http or https"),
    ({"image_urls": ["/tmp/a.png"]}, "image_urls[0]", "http or https"),
    ({"image_urls": ["https://"]}, "image_urls[0]", "no host"),
    ({"image_urls": ["https://ex ample.com/a.png"]}, "image_urls[0]", "without spaces"),
    ({"image_urls": [None]}, "image_urls[0]", "URL string"),
    ({"image_urls": ["https://e.com/" + "a" * 2100]}, "image_urls[0]", "at most 2048"),
    ({"image_urls": "None"}, "image_urls[0]", "http or https"),
    ({"aspect_ratio": "5:4"}, "aspect_ratio", "one of 1:1"),
    ({"aspect_ratio": "1/1"}, "aspect_ratio", "one of 1:1"),
    ({"aspect_ratio": None}, "aspect_ratio", "one of 1:1"),
    ({"quality": "ultra"}, "quality", "'basic' (2K) or 'high' (4K)"),
    ({"quality": "HIGH"}, "quality", "'basic' (2K) or 'high' (4K)"),
    ({"callback_url": "not a url"}, "callback_url", "without spaces"),
    ({"callback_url": "mailto:me@example.com"}, "callback_url", "http or https"),
    ({"nsfw_checker": "yes"}, "nsfw_checker", "true, false or unset"),
]


@pytest.mark.parametrize("override, field, fragment", BAD_INPUTS)
def test_bad_inputs_name_the_field(override, field, fragment):
    kwargs = {"prompt": "make it blue", "image_urls": [URL], **override}
    with pytest.raises(exc.SeedreamValidationError) as err:
        request.build_edit_input(**kwargs)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}:")
    assert fragment in str(err.value)


def test_fingerprint_changes_with_inputs_only():
    a = request.build_edit_input("p", [URL])
    assert a.fingerprint() == request.build_edit_input("p", (URL,)).fingerprint()
    assert a.fingerprint() != request.build_edit_input("q", [URL]).fingerprint()


@pytest.mark.parametrize("value", ["", " ", None, 5, "a b", "x" * 300])
def test_bad_task_ids(value):
    with pytest.raises(exc.SeedreamValidationError, match="seedream_task_id"):
        wire.check_task_id(value)


@pytest.mark.parametrize("value", [0, -1, math.inf, math.nan, "5", True])
def test_check_positive(value):
    with pytest.raises(exc.SeedreamValidationError, match="poll_interval"):
        request.check_positive("poll_interval", value)


# ------------------------------------------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    "host, port, expected",
    [
        (None, None, "https://api.kie.ai"),
        ("", None, "https://api.kie.ai"),
        ("api.kie.ai", None, "https://api.kie.ai"),
        ("https://api.kie.ai/", None, "https://api.kie.ai"),
        ("http://127.0.0.1:8089", None, "http://127.0.0.1:8089"),
        ("http://localhost", 9000, "http://localhost:9000"),
        ("http://[::1]:8089", None, "http://[::1]:8089"),
        ("https://proxy.example.com/kie/", None, "https://proxy.example.com/kie"),
    ],
)
def test_base_url_normalisation(host, port, expected):
    s = connection.settings_from_connection(conn_id="c", host=host, password="k", extra={}, port=port)
    assert s.base_url == expected


@pytest.mark.parametrize("host", ["http://api.kie.ai", "http://10.0.0.5:8089", "http://example.com"])
def test_key_never_goes_over_plain_http_to_a_remote_host(host):
    with pytest.raises(exc.SeedreamValidationError, match="plain http is only allowed to a loopback host"):
        connection.settings_from_connection(conn_id="c", host=host, password="k", extra={})


def test_missing_key_is_an_auth_error_naming_the_connection():
    with pytest.raises(exc.SeedreamAuthError, match="'my_conn' has no API key"):
        connection.settings_from_connection(conn_id="my_conn", host=None, password=None, extra={})


@pytest.mark.parametrize("rate", [0, 11, 10, 9.5, "fast", -1])
def test_bad_poll_rate(rate):
    with pytest.raises(exc.SeedreamValidationError, match="extra.polls_per_second"):
        connection.settings_from_connection(conn_id="c", host=None, password="k", extra={"polls_per_second": rate})


@pytest.mark.parametrize("timeout", [0, -1, 601, "slow"])
def test_bad_timeout(timeout):
    with pytest.raises(exc.SeedreamValidationError, match="extra.timeout"):
        connection.settings_from_connection(conn_id="c", host=None, password="k", extra={"timeout": timeout})


@pytest.mark.parametrize("typical", [0, -5, 3601, "long"])
def test_bad_typical_run(typical):
    with pytest.raises(exc.SeedreamValidationError, match="extra.typical_run_seconds"):
        connection.settings_from_connection(conn_id="c", host=None, password="k", extra={"typical_run_seconds": typical})


def test_typical_run_extra_is_read():
    read = connection.settings_from_connection
    assert read(conn_id="c", host=None, password="k", extra={}).typical_run_seconds == 20.0
    assert read(conn_id="c", host=None, password="k", extra={"typical_run_seconds": "45"}).typical_run_seconds == 45.0


def test_timeout_extra_is_read():
    assert connection.settings_from_connection(conn_id="c", host=None, password="k", extra={}).timeout == 30.0
    assert connection.settings_from_connection(conn_id="c", host=None, password="k", extra={"timeout": "90"}).timeout == 90.0


@pytest.mark.parametrize("empty", [None, "", "  "])
def test_empty_optional_extras_mean_the_defaults(empty):
    """The connection form stores an optional field left empty as null or an empty string."""
    extra = {"timeout": empty, "polls_per_second": empty, "upload_base_url": empty, "typical_run_seconds": empty}
    s = connection.settings_from_connection(conn_id="c", host=None, password="k", extra=extra)
    assert (s.timeout, s.polls_per_second, s.upload_base_url, s.typical_run_seconds) == (
        30.0, 8.0, "https://kieai.redpandaai.co", 20.0)


def test_settings_repr_hides_the_key():
    s = connection.settings_from_connection(conn_id="c", host=None, password="sekrit-123", extra={})
    assert "sekrit-123" not in repr(s)
    assert "sekrit-123" not in s.budget_key()
    assert s.headers["Authorization"] == "Bearer sekrit-123"


# ------------------------------------------------------------------------------------------------------------ envelopes
@pytest.mark.parametrize(
    "status, body, error_cls, code",
    [
        (200, {"code": 401, "msg": "You do not have access permissions"}, exc.SeedreamAuthError, 401),
        (200, {"code": 402, "msg": "Credits insufficient"}, exc.SeedreamInsufficientCreditsError, 402),
        (200, {"code": 404, "msg": "not found"}, exc.SeedreamNotFoundError, 404),
        (200, {"code": 422, "message": "recordInfo is null", "data": None}, exc.SeedreamNotFoundError, 422),
        (200, {"code": 422, "msg": "prompt is required"}, exc.SeedreamValidationError, 422),
        (200, {"code": 429, "msg": "slow down"}, exc.SeedreamRateLimitError, 429),
        (200, {"code": 433, "msg": "sub-key over limit"}, exc.SeedreamAuthError, 433),
        (200, {"code": 455, "msg": "maintenance"}, exc.SeedreamServiceUnavailableError, 455),
        (200, {"code": 500, "msg": "internal"}, exc.SeedreamServerError, 500),
        (200, {"code": 501, "msg": "generation failed"}, exc.SeedreamServerError, 501),
        (200, {"code": 505, "msg": "disabled"}, exc.SeedreamFeatureDisabledError, 505),
        (200, {"code": 400, "msg": "taskId parameter is required"}, exc.SeedreamApiError, 400),
        (429, {"code": 429, "msg": "rate limited"}, exc.SeedreamRateLimitError, 429),
        (401, {"code": 401, "msg": "no"}, exc.SeedreamAuthError, 401),
        (502, "<html>bad gateway</html>", exc.SeedreamServerError, 502),
        (503, "", exc.SeedreamServiceUnavailableError, 503),
        (500, {"code": 200, "msg": "success"}, exc.SeedreamServerError, 500),
        (200, "<html>oops</html>", exc.SeedreamResponseError, None),
        (200, {"msg": "no code"}, exc.SeedreamResponseError, None),
        (200, {"code": "200", "msg": "string code"}, exc.SeedreamResponseError, None),
        (200, {"code": 200, "msg": "success"}, exc.SeedreamResponseError, None),
        (200, [1, 2], exc.SeedreamResponseError, None),
    ],
)
def test_envelope_errors(status, body, error_cls, code):
    raw = body if isinstance(body, str) else json.dumps(body)
    with pytest.raises(error_cls) as err:
        wire.parse_envelope(status, raw.encode())
    assert type(err.value) is error_cls
    assert err.value.code == code


def test_envelope_reads_message_when_msg_is_absent():
    with pytest.raises(exc.SeedreamValidationError, match="prompt too long"):
        wire.parse_envelope(200, b'{"code": 422, "message": "prompt too long"}')


def test_retry_after_is_carried():
    with pytest.raises(exc.SeedreamRateLimitError) as err:
        wire.parse_envelope(429, b'{"code":429,"msg":"x"}', "3")
    assert err.value.retry_after == 3.0


@pytest.mark.parametrize("header, expected", [("2", 2.0), ("0.5", 0.5), (" 7 ", 7.0), ("soon", None), ("-1", None),
                                              (None, None), ("Wed, 21 Oct 2015 07:28:00 GMT", None)])
def test_parse_retry_after(header, expected):
    assert wire.parse_retry_after(header) == expected


def test_envelope_returns_data():
    assert wire.parse_envelope(200, b'{"code":200,"msg":"success","data":{"taskId":"t1"}}') == {"taskId": "t1"}
    assert wire.parse_task_id({"taskId": "t1"}) == "t1"


@pytest.mark.parametrize("data", [None, {}, {"taskId": ""}, {"taskId": 5}, "t1"])
def test_create_answer_without_task_id(data):
    with pytest.raises(exc.SeedreamResponseError, match="no well-formed taskId"):
        wire.parse_task_id(data)


@pytest.mark.parametrize("data, expected", [(993.5, 993.5), (0, 0.0), ("12.25", 12.25)])
def test_credits(data, expected):
    assert wire.parse_credits(data) == expected


@pytest.mark.parametrize("data", [None, True, "lots", {"credits": 1}, float("nan")])
def test_bad_credits(data):
    with pytest.raises(exc.SeedreamResponseError):
        wire.parse_credits(data)


def test_upload_and_download_answers():
    assert wire.parse_upload({"downloadUrl": "https://t.example/a.png"}) == "https://t.example/a.png"
    assert wire.parse_upload({"fileUrl": "https://t.example/b.png"}) == "https://t.example/b.png"
    assert wire.parse_download_url("https://t.example/c.png") == "https://t.example/c.png"
    with pytest.raises(exc.SeedreamResponseError):
        wire.parse_upload({"success": True})
    with pytest.raises(exc.SeedreamResponseError):
        wire.parse_download_url(None)


# ---------------------------------------------------------------------------------------------------------------- tasks
def record(state="success", **over):
    data = {
        "taskId": "t1", "model": "seedream/4.5-edit", "state": state, "param": "{}",
        "resultJson": json.dumps({"resultUrls": ["https://r.example/0.png"]}) if state == "success" else "",
        "failCode": "", "failMsg": "", "costTime": 15000, "completeTime": 1765173411122,
        "createTime": 1765173396122, "updateTime": 1765173411122, "creditsConsumed": 6.5,
    }
    data.update(over)
    return data


def test_parse_success():
    task = wire.parse_task(record())
    assert task.succeeded and task.is_terminal
    assert task.result_urls == ("https://r.example/0.png",)
    assert task.fail_code is None and task.credits_consumed == 6.5
    assert wire.SeedreamTask.from_dict(json.loads(json.dumps(task.to_dict()))) == task


def test_parse_result_json_given_as_object():
    task = wire.parse_task(record(resultJson={"resultUrls": ["https://r.example/1.webp"]}))
    assert task.result_urls == ("https://r.example/1.webp",)


def test_parse_fail_keeps_kie_code_and_message():
    task = wire.parse_task(record("fail", failCode="500", failMsg="Internal error", completeTime=None))
    assert (task.state, task.fail_code, task.fail_msg, task.complete_time) == ("fail", "500", "Internal error", None)


@pytest.mark.parametrize("state", ["waiting", "queuing", "generating"])
def test_parse_pending(state):
    task = wire.parse_task(record(state, completeTime=None))
    assert not task.is_terminal and task.result_urls == ()


@pytest.mark.parametrize(
    "over, fragment",
    [
        ({"state": "paused"}, "unknown state 'paused'"),
        ({"state": None}, "unknown state None"),
        ({"resultJson": "{not json"}, "resultJson is not JSON"),
        ({"resultJson": "[1]"}, "resultJson is not an object"),
        ({"resultJson": '{"resultUrls": "x"}'}, "no resultUrls list"),
        ({"resultJson": '{"resultUrls": []}'}, "returned no result URLs"),
        ({"resultJson": ""}, "resultJson is not JSON"),
        ({"taskId": None}, "answered about None"),  # an answer that does not say which task it is about
    ],
)
def test_malformed_records(over, fragment):
    data = record(**over)
    if "taskId" in over:
        with pytest.raises(exc.SeedreamResponseError, match=fragment):
            wire.parse_task(data, "t9")
        return
    with pytest.raises(exc.SeedreamResponseError, match=fragment.replace("[", r"\[")):
        wire.parse_task(data)


def test_null_data_is_not_found():
    with pytest.raises(exc.SeedreamNotFoundError):
        wire.parse_task(None, "t1")


# -------------------------------------------------------------------------------------------------------------- retries
@pytest.mark.parametrize(
    "error, transient, resubmit",
    [
        (exc.SeedreamRateLimitError("x"), True, True),
        (exc.SeedreamServiceUnavailableError("x"), True, True),
        (exc.SeedreamServerError("x", code=500), True, False),
        (exc.SeedreamTransportError("x", sent=False), True, True),
        (exc.SeedreamTransportError("x", sent=True), True, False),
        (exc.SeedreamAuthError("x"), False, False),
        (exc.SeedreamValidationError("x"), False, False),
        (exc.SeedreamInsufficientCreditsError("x"), False, False),
        (exc.SeedreamResponseError("x"), False, False),
        (exc.SeedreamNotFoundError("x"), False, False),
        (ValueError("x"), False, False),
    ],
)
def test_retry_classification(error, transient, resubmit):
    assert wire.is_transient(error) is transient
    assert wire.may_resubmit(error) is resubmit


def test_backoff_grows_caps_and_honours_retry_after():
    assert wire.backoff_seconds(1, rng=lambda: 1.0) == 1.0
    assert wire.backoff_seconds(3, rng=lambda: 1.0) == 4.0
    assert wire.backoff_seconds(3, rng=lambda: 0.0) == 2.0
    assert wire.backoff_seconds(30, rng=lambda: 1.0) == 60.0
    assert wire.backoff_seconds(1, retry_after=5, rng=lambda: 0.0) == 5.0
    assert 5.0 <= wire.backoff_seconds(1, retry_after=5, rng=lambda: 1.0) <= 6.0


def test_non_seedream_errors_are_typed():
    assert issubclass(exc.SeedreamTaskFailedError, exc.SeedreamError)
    from airflow_provider_seedream.version_compat import AirflowException, AirflowFailException

    assert issubclass(exc.SeedreamError, AirflowException)
    for fatal in (exc.SeedreamTaskFailedError, exc.SeedreamValidationError, exc.SeedreamAuthError,
                  exc.SeedreamInsufficientCreditsError, exc.SeedreamSubmitUncertainError):
        assert issubclass(fatal, AirflowFailException)
    assert not issubclass(exc.SeedreamServerError, AirflowFailException)


# --------------------------------------------------------------------------------------------------------------- waiter
def waiter(**policy):
    return waitstate.Waiter("t1", waitstate.WaitPolicy(**{"poll_interval": 1.0, **policy}), started_at=1000.0, rng=lambda: 0.5)


def task(state):
    return wire.parse_task(record(state, completeTime=None) if state != "success" else record())


def test_waiter_logs_state_changes_and_succeeds():
    w = waiter()
    s1 = w.observe(task("waiting"), 1000.5)
    assert s1.event is None and s1.delay == pytest.approx(1.0) and "submitted -> waiting" in s1.note
    assert w.observe(task("waiting"), 1001.5).note is None
    assert "waiting -> generating after 2.0 s" in w.observe(task("generating"), 1002.0).note
    done = w.observe(task("success"), 1003.0)
    assert done.event["status"] == "success"
    assert waitstate.resolve_event(done.event, "t1").result_urls == ("https://r.example/0.png",)
    json.dumps(done.event)  # events are plain JSON


def test_waiter_fails_with_kie_message():
    step = waiter().observe(wire.parse_task(record("fail", failCode="422", failMsg="image download failed")), 1001)
    with pytest.raises(exc.SeedreamTaskFailedError, match="failCode=422 failMsg=image download failed") as err:
        waitstate.resolve_event(step.event)
    assert err.value.task.fail_code == "422"


def test_waiter_deadline_names_the_task():
    w = waiter(deadline=1010.0)
    assert w.observe(task("generating"), 1009.5).delay == pytest.approx(0.5)  # never sleeps past the deadline
    step = w.observe(task("generating"), 1010.0)
    with pytest.raises(exc.SeedreamTimeoutError, match="t1 did not finish before the deadline") as err:
        waitstate.resolve_event(step.event)
    assert err.value.task_id == "t1"


def test_waiter_tolerates_not_found_only_during_grace_and_before_seen():
    w = waiter(not_found_grace=5)
    nf = exc.SeedreamNotFoundError("recordInfo is null")
    assert w.observe(nf, 1001).event is None
    assert w.observe(nf, 1006).event["status"] == "error"
    w2 = waiter(not_found_grace=60)
    w2.observe(task("generating"), 1001)
    assert w2.observe(nf, 1002).event["status"] == "error"  # a task we saw cannot vanish


def test_waiter_tolerates_a_few_transient_errors_then_gives_up():
    w = waiter(max_consecutive_errors=2)
    assert w.observe(exc.SeedreamRateLimitError("429", retry_after=4), 1001).delay == pytest.approx(4.0)
    assert w.observe(exc.SeedreamServerError("500"), 1002).event is None
    assert w.observe(task("generating"), 1003).event is None  # a good answer resets the count
    assert w.observe(exc.SeedreamServerError("500"), 1004).event is None
    assert w.observe(exc.SeedreamServerError("500"), 1005).event is None
    final = w.observe(exc.SeedreamServerError("500"), 1006)
    assert final.event["status"] == "error" and "3 consecutive transient errors" in final.event["message"]
    with pytest.raises(exc.SeedreamServerError):
        waitstate.resolve_event(final.event)


def test_waiter_stops_at_once_on_fatal_errors():
    step = waiter().observe(exc.SeedreamAuthError("kie.ai answered 401"), 1001)
    with pytest.raises(exc.SeedreamAuthError, match="401"):
        waitstate.resolve_event(step.event)


@pytest.mark.parametrize(
    "event",
    [None, {}, {"status": "weird", "task_id": "t1"}, {"status": "success", "task_id": ""}, "success",
     {"status": "success", "task_id": "t1", "task": None}],
)
def test_resolve_event_rejects_garbage(event):
    with pytest.raises(exc.SeedreamError):
        waitstate.resolve_event(event)


def test_resolve_event_checks_the_task_id():
    event = waitstate.make_event("success", "t2", "ok", wire.parse_task(record(taskId="t2")))
    with pytest.raises(exc.SeedreamResponseError, match="expected t1"):
        waitstate.resolve_event(event, "t1")


def test_loopback_detection():
    assert connection.is_loopback_host("localhost") and connection.is_loopback_host("127.0.0.2") and connection.is_loopback_host("::1")
    assert not connection.is_loopback_host("10.0.0.1") and not connection.is_loopback_host("example.com")
    assert not connection.is_loopback_host(None)
