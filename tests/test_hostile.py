"""Hostile answers and careless inputs, from outside the package: real loopback servers that misbehave on purpose.

One class of misbehaviour per section: a second bill, an ambiguous base URL, the key echoed back, a triggerer
frozen by Retry-After, answers without bounds in size or time, inputs misjudged. Only the public API is used (the
hook, the operator, the sensor, the trigger and connection extras), and each server lives in ``hostile.py``.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import quote

import pytest
from hostile import (
    HostileServer,
    answer,
    endless,
    gzip_bomb,
    head,
    send,
    send_json,
    trickle,
)
from support import RunningTI, context, run_trigger, use_connection

from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream.hooks.seedream import SeedreamHook
from airflow_provider_seedream.operators.seedream import SeedreamEditOperator
from airflow_provider_seedream.sensors.seedream import SeedreamTaskSensor
from airflow_provider_seedream.triggers.seedream import SeedreamTaskTrigger
from airflow_provider_seedream.version_compat import AirflowFailException

IMAGE = "https://example.com/photo.png"
TASK = "e989621f54392584b05867f87b160672"


@pytest.fixture
def serve(monkeypatch, api_key):
    """Start a hostile server answering with ``respond`` and point ``seedream_default`` at it (extras optional)."""
    servers: list[HostileServer] = []

    def start(respond, **extra) -> HostileServer:
        server = HostileServer(respond)
        servers.append(server)
        use_connection(monkeypatch, api_key, server.url, upload_base_url=server.url, **extra)
        return server

    yield start
    for server in servers:
        server.close()


def record(task_id: str = TASK, state: str = "generating", **over) -> dict:
    data = {"taskId": task_id, "model": "seedream/4.5-edit", "state": state, "param": "{}", "resultJson": None,
            "failCode": None, "failMsg": None, "costTime": None, "createTime": 1765173396122, "completeTime": None}
    data.update(over)
    return {"code": 200, "msg": "success", "data": data}


def success(urls: list[str], task_id: str = TASK) -> dict:
    return record(task_id, "success", resultJson=json.dumps({"resultUrls": urls}), completeTime=1765173411122)


def chain_text(error: BaseException) -> str:
    """Everything an exception carries to a log, a callback or the metadata DB: messages, reprs, causes."""
    parts = []
    seen: BaseException | None = error
    while seen is not None:
        parts += [str(seen), repr(seen), repr(seen.args), repr(getattr(seen, "task", None))]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


# ============================================================================================ 1. a second bill
BAD_CREATE_ANSWERS = {
    "no taskId": lambda s, r: send_json(s, {"code": 200, "msg": "success", "data": {}}),
    "empty taskId": lambda s, r: send_json(s, {"code": 200, "msg": "success", "data": {"taskId": ""}}),
    "numeric taskId": lambda s, r: send_json(s, {"code": 200, "msg": "success", "data": {"taskId": 5}}),
    "html page": lambda s, r: send(s, "<html><body>Bad gateway, try again</body></html>",
                                   headers={"Content-Type": "text/html"}),
    "data null": lambda s, r: send_json(s, {"code": 200, "msg": "success", "data": None}),
    "no data": lambda s, r: send_json(s, {"code": 200, "msg": "success"}),
    "100k taskId": lambda s, r: send_json(s, {"code": 200, "msg": "success", "data": {"taskId": "a" * 100_000}}),
    "CRLF taskId": lambda s, r: send_json(s, {"code": 200, "msg": "success", "data": {"taskId": "ab\r\nX-Evil: 1"}}),
    "NUL taskId": lambda s, r: send_json(s, {"code": 200, "msg": "success", "data": {"taskId": "ab\x00cd"}}),
    "truncated JSON": lambda s, r: send(s, '{"code": 200, "msg": "success", "data": {"taskId": "abc'),
    "endless body": endless,
}


@pytest.mark.parametrize("respond", list(BAD_CREATE_ANSWERS.values()), ids=list(BAD_CREATE_ANSWERS))
def test_a_create_task_answer_without_a_well_formed_id_is_uncertain_and_never_resubmitted(serve, respond):
    server = serve(respond)
    with pytest.raises(exc.SeedreamSubmitUncertainError, match="not resubmitted") as raised:
        SeedreamHook(submit_timeout=30).create_edit_task("put it on marble", [IMAGE])
    assert server.count("createTask") == 1
    assert server.bytes_sent < 64 * 1024 * 1024  # an endless answer was not read for its 20 s
    # Airflow does not retry an AirflowFailException, so the task's retries cannot pay again either.
    assert isinstance(raised.value, AirflowFailException)


def test_the_operator_fails_without_a_retry_and_pays_once(serve):
    server = serve(BAD_CREATE_ANSWERS["numeric taskId"])
    operator = SeedreamEditOperator(task_id="edit", prompt="put it on marble", image_urls=[IMAGE], retries=3)
    ctx = context()
    with pytest.raises(AirflowFailException):
        operator.execute(ctx)
    assert server.count("createTask") == 1
    assert "seedream_task_id" not in ctx["ti"].xcoms


def test_a_try_killed_while_its_create_task_is_in_flight_is_never_submitted_again(serve):
    """Airflow's execution_timeout fires (SIGALRM, a BaseException) while createTask waits for its answer; the retry
    finds the in-flight mark in task_state_store and refuses to pay a second time."""
    import signal

    from support import DictStateStore

    try:  # where Airflow's execution_timeout exception lives: 3.3 has it in the task SDK, 3.1 in airflow.exceptions
        from airflow.sdk.exceptions import AirflowTaskTimeout
    except ImportError:
        from airflow.exceptions import AirflowTaskTimeout

    def slow(sock, request):
        time.sleep(3)  # the misbehaviour: kie takes its time; the task is killed before the answer
        send_json(sock, {"code": 200, "msg": "success", "data": {"taskId": TASK}})

    server = serve(slow)
    store = DictStateStore()
    operator = SeedreamEditOperator(task_id="edit", prompt="put it on marble", image_urls=[IMAGE], retries=3)

    def timeout(signum, frame):
        raise AirflowTaskTimeout("execution_timeout")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        with pytest.raises(AirflowTaskTimeout):
            operator.execute(context(store))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert store.data["seedream_task"].get("in_flight_since") and "task_id" not in store.data["seedream_task"]
    with pytest.raises(exc.SeedreamSubmitUncertainError, match="stopped while its createTask was in flight"):
        operator.execute(context(store))  # the retry
    assert server.count("createTask") == 1
    fresh = SeedreamEditOperator(task_id="edit", prompt="put it on marble", image_urls=[IMAGE], reattach=False)
    assert fresh.execute(context(store)) == TASK  # the user checked kie's logs and chose to submit anew
    assert server.count("createTask") == 2


def test_a_clean_refusal_leaves_no_in_flight_mark(serve):
    from support import DictStateStore

    serve(answer({"code": 402, "msg": "Credits insufficient"}))
    store = DictStateStore()
    operator = SeedreamEditOperator(task_id="edit", prompt="put it on marble", image_urls=[IMAGE])
    with pytest.raises(exc.SeedreamInsufficientCreditsError):
        operator.execute(context(store))
    assert store.data == {}  # nothing was created: a retry (after a top-up) may submit


@pytest.mark.parametrize(
    "respond, error",
    [
        (answer({"code": 401, "msg": "You do not have access permissions"}, status=401), exc.SeedreamAuthError),
        (answer({"code": 402, "msg": "Credits insufficient"}), exc.SeedreamInsufficientCreditsError),
        (answer({"code": 422, "msg": "input.prompt is too long"}), exc.SeedreamValidationError),
    ],
)
def test_clean_refusals_stay_refusals(serve, respond, error):
    server = serve(respond)
    with pytest.raises(error):
        SeedreamHook().create_edit_task("put it on marble", [IMAGE])
    assert server.count("createTask") == 1


def test_a_rate_limited_create_task_is_resubmitted_until_accepted(serve):
    answers = iter([({"code": 429, "msg": "Rate limited"}, 429, {"Retry-After": "0"}),
                    ({"code": 200, "msg": "success", "data": {"taskId": TASK}}, 200, {})])

    def respond(sock, request):
        payload, status, headers = next(answers)
        send_json(sock, payload, status, headers)

    server = serve(respond)
    assert SeedreamHook(retry_base=0.01).create_edit_task("put it on marble", [IMAGE]) == TASK
    assert server.count("createTask") == 2


# ============================================================================= 2. one reading of the base URL
AMBIGUOUS_HOSTS = [
    "http://127.0.0.1\\@evil.example",  # urllib: host 127.0.0.1; urllib3: host evil.example
    "http://127.0.0.1:{port}\\@evil.example",
    "http://user:s3cretpw@127.0.0.1:{port}",  # requests would send Basic auth instead of the Bearer key
    "http://s3cretpw@127.0.0.1:{port}",
    "http://evil.example#@127.0.0.1:{port}",
    "http://evil.example?@127.0.0.1:{port}",
    "http://127.0.0.1:{port}/kie?x=1",
    "http://127.0.0.1:{port}/#frag",
    "http://127.0.0.1 .evil.example:{port}",
    "http://127.0.0.1\t.evil.example:{port}",
    "http://127.0.0.1:{port}/a b",
    "http://127.0.0.1:{port}/%2e%2e/",
    "http://127.0.0.1:{port}/../x",
    "http://127.0.0.1%2f@evil.example",
    "http://127.0.0.1:99999",
    "http://[::1:{port}",
    "http://127.0.0.1:{port}\r\nX-Injected: 1",
]


@pytest.mark.parametrize("template", AMBIGUOUS_HOSTS)
def test_an_ambiguous_base_url_is_refused_naming_the_field_before_any_request(serve, monkeypatch, api_key, template):
    server = serve(answer({"code": 200, "msg": "success", "data": 100}))
    host = template.format(port=server.port)
    use_connection(monkeypatch, api_key, host)
    with pytest.raises(exc.SeedreamValidationError, match="^host: ") as raised:
        SeedreamHook().get_credits()
    assert raised.value.field == "host"
    assert "s3cretpw" not in chain_text(raised.value)
    ok, message = SeedreamHook().test_connection()
    assert not ok and "s3cretpw" not in message
    assert server.connections == 0


def test_an_ambiguous_upload_base_url_is_refused_too(serve, monkeypatch, api_key):
    server = serve(answer({"code": 200, "msg": "success", "data": 100}))
    use_connection(monkeypatch, api_key, server.url, upload_base_url="http://127.0.0.1\\@evil.example")
    with pytest.raises(exc.SeedreamValidationError, match="^extra.upload_base_url: "):
        SeedreamHook().get_credits()
    assert server.connections == 0


@pytest.mark.parametrize("host", ["http://127.0.0.1:8089", "https://api.kie.ai", "api.kie.ai", "https://API.kie.ai/",
                                  "http://[::1]:8089", "http://localhost:8089/kie/v1", "https://10.1.2.3:8443"])
def test_every_parser_reads_the_host_we_decided_on(monkeypatch, api_key, host):
    import httpx
    from urllib3.util import parse_url

    use_connection(monkeypatch, api_key, host)
    base = SeedreamHook().settings.base_url
    ours = base.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0] if not base.split("://")[1].startswith("[") \
        else base.split("://", 1)[1].split("]")[0] + "]"
    assert parse_url(base).host == ours
    assert httpx.URL(base).host == ours.strip("[]")


# ======================================================================================= 3. the key echoed back
def echoing(status: int = 200, code: int = 500) -> object:
    """A gateway that repeats the Authorization header in its msg, raw, URL-quoted and JSON-escaped."""

    def respond(sock, request):
        key = request.authorization.removeprefix("Bearer ")
        escaped = "".join(f"\\u{ord(ch):04x}" for ch in key)
        msg = (f"refused: Authorization: {request.authorization}; as a query: key={quote(key)}; "
               f"escaped: ESCAPED")
        body = json.dumps({"code": code, "msg": msg, "data": None}).replace("ESCAPED", escaped)
        send(sock, body, status)

    return respond


def test_an_echoed_key_reaches_no_exception_and_no_connection_test(serve, api_key, logs):
    serve(echoing())
    with pytest.raises(exc.SeedreamError) as raised:
        SeedreamHook(max_retries=0).get_credits()
    text = chain_text(raised.value)
    assert "Authorization: Bearer ***" in text  # the message is still there, only the key is gone
    assert api_key not in text and quote(api_key) not in text
    ok, message = SeedreamHook(max_retries=0).test_connection()
    assert not ok and "***" in message and api_key not in message
    assert api_key not in logs.text()


def test_an_echoed_key_in_fail_msg_reaches_no_trigger_event_log_or_callback(serve, api_key, logs):
    def respond(sock, request):
        send_json(sock, record(state="fail", failCode="500", failMsg=f"upstream said {request.authorization}"))

    serve(respond)
    event = run_trigger(SeedreamTaskTrigger(TASK, poll_interval=0.1, deadline=time.time() + 30))
    assert event["status"] == "failed" and "Bearer ***" in event["task"]["fail_msg"]
    stored = json.dumps(event)  # what the triggerer writes to the metadata DB
    assert api_key not in stored
    sensor = SeedreamTaskSensor(task_id="wait", seedream_task_id=TASK)
    with pytest.raises(exc.SeedreamTaskFailedError) as raised:  # what an on_failure_callback sees
        sensor.execute_complete({"ti": RunningTI()}, event)
    assert api_key not in chain_text(raised.value)
    assert api_key not in logs.text()


def test_json_nested_too_deeply_to_walk_is_a_typed_error(serve):
    serve(lambda sock, request: send(sock, '{"code": 200, "msg": "success", "data": ' + "[" * 900 + "]" * 900 + "}"))
    with pytest.raises(exc.SeedreamResponseError, match="nested too deeply"):
        SeedreamHook(max_retries=0).get_task(TASK)


def test_a_plain_http_loopback_base_is_never_reached_through_an_environment_proxy(serve, monkeypatch, api_key):
    """The Bearer key may travel in clear text only to loopback: a proxy from the environment must not see it."""
    proxy = HostileServer(answer({"code": 200, "msg": "success", "data": 1.0}))
    try:
        serve(answer(record()))
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        assert SeedreamHook(max_retries=0).get_task(TASK).task_id == TASK
        event = run_trigger(SeedreamTaskTrigger(TASK, poll_interval=0.1, deadline=time.time() + 2))
        assert event["status"] == "timeout", event  # the task stays "generating": only the route matters here
        assert proxy.connections == 0
    finally:
        proxy.close()


def test_a_2_mb_message_becomes_a_message_of_a_few_kib(serve):
    serve(answer({"code": 500, "msg": "x" * (2 * 1024 * 1024), "data": None}))
    with pytest.raises(exc.SeedreamServerError) as raised:
        SeedreamHook(max_retries=0).get_credits()
    assert len(str(raised.value)) < 3 * 1024


# ===================================================================================== 4. a triggerer frozen
def test_a_huge_retry_after_never_holds_a_wait_past_its_deadline(serve):
    serve(lambda sock, request: send_json(sock, {"code": 429, "msg": "slow down"}, 429,
                                          {"Retry-After": "1000000000"}))
    started = time.monotonic()
    event = run_trigger(SeedreamTaskTrigger(TASK, poll_interval=0.1, deadline=time.time() + 3))
    waited = time.monotonic() - started
    assert event["status"] == "timeout", event
    assert waited < 10, waited  # the deadline was 3 s away; the server asked for 31 years


def test_a_huge_retry_after_pauses_the_shared_budget_at_most_a_minute(serve):
    """Two waits for one key in one triggerer: one meets a 429 asking for 31 years; the other still gets its turn."""
    answers = {"count": 0}

    def respond(sock, request):
        answers["count"] += 1
        if answers["count"] == 1:
            send_json(sock, {"code": 429, "msg": "slow down"}, 429, {"Retry-After": "1000000000"})
        else:
            send_json(sock, success(["https://results.example/0.png"]))

    serve(respond)

    async def both():
        from airflow_provider_seedream import aio

        hook = SeedreamHook()
        settings = await hook.aget_settings()
        async with aio.lease(settings) as (_, budget):
            with pytest.raises(exc.SeedreamRateLimitError):
                await hook.aget_task(TASK)
            return budget.paused_for

    paused = asyncio.run(both())
    assert 0 < paused <= 60.0, paused


def test_the_sync_backoff_never_sleeps_past_its_cap(serve, monkeypatch):
    import tenacity

    slept: list[float] = []
    monkeypatch.setattr(tenacity.nap.time, "sleep", slept.append)
    answers = iter([(429, {"Retry-After": "1000000000"}), (200, {})])

    def respond(sock, request):
        status, headers = next(answers)
        send_json(sock, success(["https://results.example/0.png"]) if status == 200 else
                  {"code": 429, "msg": "slow down"}, status, headers)

    serve(respond)
    assert SeedreamHook(max_retries=1).get_task(TASK).succeeded
    assert slept and max(slept) <= 60.0, slept


# ======================================================================= 5. no bound on size or time
def test_an_endless_answer_stops_at_the_cap(serve):
    server = serve(endless)
    with pytest.raises(exc.SeedreamResponseError, match="larger than"):
        SeedreamHook(max_retries=0).get_credits()
    assert server.bytes_sent < 64 * 1024 * 1024  # it stopped reading long before the server's 20 s were up


def test_an_announced_200_mb_answer_is_refused_before_reading(serve):
    def respond(sock, request):
        sock.sendall(head(200, {"Content-Type": "application/json"}, 200 * 1024 * 1024) + b"{")
        time.sleep(2)  # the misbehaviour: the body never comes

    serve(respond)
    with pytest.raises(exc.SeedreamResponseError, match="announces 209,715,200 bytes"):
        SeedreamHook(max_retries=0).get_credits()


def test_a_gzip_bomb_is_decoded_only_up_to_the_cap(serve):
    bomb = gzip_bomb(64 * 1024 * 1024)
    serve(lambda sock, request: send(sock, bomb, headers={"Content-Encoding": "gzip"}))
    with pytest.raises(exc.SeedreamResponseError, match="larger than"):
        SeedreamHook(max_retries=0).get_credits()


def test_a_one_byte_a_second_answer_ends_at_the_connection_timeout(serve):
    body = json.dumps({"code": 200, "msg": "success", "data": 100}).encode()
    serve(lambda sock, request: trickle(sock, body), timeout=1)
    started = time.monotonic()
    with pytest.raises(exc.SeedreamTransportError, match="no whole answer from kie.ai within 1 s"):
        SeedreamHook(max_retries=0).get_credits()
    assert time.monotonic() - started < 10  # the answer alone would take 40 s


def test_an_endless_create_task_answer_is_uncertain_and_bounded(serve):
    server = serve(endless)
    with pytest.raises(exc.SeedreamSubmitUncertainError):
        SeedreamHook().create_edit_task("put it on marble", [IMAGE])
    assert server.count("createTask") == 1
    assert server.bytes_sent < 64 * 1024 * 1024


def test_the_triggers_status_query_is_bounded_in_size(serve):
    serve(endless)
    event = run_trigger(SeedreamTaskTrigger(TASK, poll_interval=0.1, deadline=time.time() + 60))
    assert event["status"] == "error" and "larger than" in event["message"], event


def test_the_triggers_status_query_is_bounded_in_time(serve):
    body = json.dumps(record()).encode()
    serve(lambda sock, request: trickle(sock, body, every=0.5), timeout=1)
    started = time.monotonic()
    event = run_trigger(SeedreamTaskTrigger(TASK, poll_interval=0.1, deadline=time.time() + 4,
                                            max_consecutive_errors=1))
    assert event["status"] in ("error", "timeout"), event
    assert "within 1 s" in event["message"] or event["status"] == "timeout", event
    assert time.monotonic() - started < 15  # one answer alone would take over a minute


def _store_from(serve, tmp_path, image_respond, **extra):
    """A sensor storing the result of a task whose one result URL is served by ``image_respond``."""
    def respond(sock, request):
        if request.path.startswith("/api/v1/jobs/recordInfo"):
            send_json(sock, success([f"http://127.0.0.1:{server.port}/results/0.png"]))
        else:
            image_respond(sock, request)

    server = serve(respond, **extra)
    sensor = SeedreamTaskSensor(task_id="wait", seedream_task_id=TASK, output_path=str(tmp_path / "out"),
                                deferrable=False, poke_interval=0.1)
    return sensor, {"ti": RunningTI()}


PNG_HEAD = b"\x89PNG\r\n\x1a\n" + b"\x00" * 56


def test_an_announced_4_gib_image_is_refused_and_nothing_is_written(serve, tmp_path):
    def image(sock, request):
        sock.sendall(head(200, {"Content-Type": "image/png"}, 4 * 1024 ** 3) + PNG_HEAD)
        time.sleep(2)

    sensor, ctx = _store_from(serve, tmp_path, image)
    with pytest.raises(exc.SeedreamStorageError, match="announces 4,294,967,296 bytes") as raised:
        sensor.poke(ctx)
    assert "http://127.0.0.1" in str(raised.value)  # the paid-for result URL is still named
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []


def test_an_image_past_max_download_bytes_stops_there_and_leaves_nothing_partial(serve, tmp_path):
    def image(sock, request):  # no Content-Length: only counting while streaming can stop it
        sock.sendall(head(200, {"Content-Type": "image/png", "Connection": "close"}) + PNG_HEAD)
        for _ in range(64):
            sock.sendall(b"\x00" * 65536)

    sensor, ctx = _store_from(serve, tmp_path, image, max_download_bytes=100_000)
    with pytest.raises(exc.SeedreamStorageError, match="larger than 100,000 bytes"):
        sensor.poke(ctx)
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []


def test_a_one_byte_a_second_image_ends_at_download_timeout_and_leaves_nothing(serve, tmp_path):
    def image(sock, request):
        trickle(sock, PNG_HEAD * 20, every=0.5, headers={"Content-Type": "image/png"})

    sensor, ctx = _store_from(serve, tmp_path, image, download_timeout=2)
    started = time.monotonic()
    with pytest.raises(exc.SeedreamStorageError, match="longer than 2 s"):
        sensor.poke(ctx)
    assert time.monotonic() - started < 15  # the image alone would take ten minutes
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []


# ============================================================================================ 6. inputs misjudged
@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "\t"])
def test_a_key_with_surrounding_whitespace_is_sent_without_it(serve, monkeypatch, api_key, suffix):
    server = serve(answer({"code": 200, "msg": "success", "data": 12.5}))
    use_connection(monkeypatch, api_key + suffix, server.url)
    assert SeedreamHook().get_credits() == 12.5
    assert server.requests[0].authorization == f"Bearer {api_key}"


@pytest.mark.parametrize("inside", ["\n", "\r\nX-Evil: 1", "\x00", " ", "é"])
def test_a_key_with_bad_characters_inside_is_refused_before_any_request(serve, monkeypatch, api_key, inside):
    server = serve(answer({"code": 200, "msg": "success", "data": 12.5}))
    bad = api_key[:8] + inside + api_key[8:]
    use_connection(monkeypatch, bad, server.url)
    with pytest.raises(exc.SeedreamValidationError, match="^password: ") as raised:
        SeedreamHook().get_credits()
    assert raised.value.field == "password"
    assert api_key[8:] not in chain_text(raised.value) and api_key[:8] not in chain_text(raised.value)
    with pytest.raises(exc.SeedreamValidationError):
        SeedreamHook().create_edit_task("put it on marble", [IMAGE])
    assert server.connections == 0


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://results.example/0.png", "javascript:alert(1)",
                                 "results.example/0.png", "//results.example/0.png", "http://", "https:///x.png",
                                 "http://results.example/a b.png"])
def test_a_result_url_that_is_not_http_with_a_host_is_refused_and_nothing_reaches_xcom(serve, url):
    serve(answer(success([url])))
    sensor = SeedreamTaskSensor(task_id="wait", seedream_task_id=TASK, deferrable=False)
    ctx = {"ti": RunningTI()}
    with pytest.raises(exc.SeedreamResponseError, match="result URL"):
        sensor.poke(ctx)
    assert ctx["ti"].xcoms == {}
    event = run_trigger(SeedreamTaskTrigger(TASK, poll_interval=0.1, deadline=time.time() + 30))
    assert event["status"] == "error" and "result URL" in event["message"], event


def test_an_answer_about_another_task_is_never_taken_as_ours(serve):
    serve(answer(success(["https://results.example/0.png"], task_id="someone-elses-task")))
    with pytest.raises(exc.SeedreamResponseError, match="answered about 'someone-elses-task'"):
        SeedreamHook(max_retries=0).get_task(TASK)
    event = run_trigger(SeedreamTaskTrigger(TASK, poll_interval=0.1, deadline=time.time() + 30))
    assert event["status"] == "error" and "someone-elses-task" in event["message"], event


@pytest.mark.parametrize("task_id", ["a" * 129, "ab\r\ncd", "ab\x00cd", "ab cd", "-leading-dash", "ab/cd"])
def test_a_malformed_task_id_from_a_template_is_refused_before_any_request(serve, task_id):
    server = serve(answer(record()))
    with pytest.raises(exc.SeedreamValidationError, match="^seedream_task_id: "):
        SeedreamTaskSensor(task_id="wait", seedream_task_id=task_id, deferrable=False).poke({"ti": RunningTI()})
    assert server.connections == 0
