"""Table tests of kie's wire protocol: envelopes, error codes, task records, retry rules."""

from __future__ import annotations

import json

import pytest

from airflow_provider_seedream import wire
from airflow_provider_seedream import exceptions as exc


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


