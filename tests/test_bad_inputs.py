"""Invalid inputs, through the operator and the sensor as Airflow runs them (templates rendered, then ``execute``).

Every case must be refused with a ``SeedreamValidationError`` whose message starts with the field's name, and no
request may reach the emulator: a bad input costs nothing and says what to fix.
"""

from __future__ import annotations

import json
import math

import pytest

from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream.operators.seedream import SeedreamEditOperator
from airflow_provider_seedream.sensors.seedream import SeedreamTaskSensor
from support import RecordingTI

URL = "https://example.com/photo.png"


def requests_sent(emulator) -> int:
    return sum(emulator.stats()["requests"].values())


def case(name, field, params=None, **kwargs):
    return pytest.param(kwargs, params, field, id=name)


# (operator arguments, template params, field the message must name)
EDIT_CASES = [
    # prompt: type, emptiness, length
    case("prompt-none", "prompt", prompt=None),
    case("prompt-int", "prompt", prompt=42),
    case("prompt-list", "prompt", prompt=["make it blue"]),
    case("prompt-empty", "prompt", prompt=""),
    case("prompt-blank", "prompt", prompt=" \n\t "),
    case("prompt-3001-chars", "prompt", prompt="x" * 3001),
    # image_urls: counts, types, schemes, shapes
    case("urls-empty-list", "image_urls", image_urls=[]),
    case("urls-15", "image_urls", image_urls=[URL] * 15),
    case("urls-none", "image_urls", image_urls=None),
    case("urls-int", "image_urls", image_urls=7),
    case("urls-dict", "image_urls", image_urls={"url": URL}),
    case("urls-set", "image_urls", image_urls={URL}),
    case("url-ftp", "image_urls[0]", image_urls=["ftp://example.com/photo.png"]),
    case("url-file", "image_urls[0]", image_urls=["file:///etc/passwd"]),
    case("url-data", "image_urls[0]", image_urls=["data:image/png;base64,iVBORw0KGgo="]),
    case("url-javascript", "image_urls[0]", image_urls=["javascript:alert(1)"]),
    case("url-no-host", "image_urls[0]", image_urls=["https:///photo.png"]),
    case("url-relative", "image_urls[0]", image_urls=["/photos/1.png"]),
    case("url-second-bad", "image_urls[1]", image_urls=[URL, "not a url"]),
    case("url-leading-space", "image_urls[0]", image_urls=[" " + URL]),
    case("url-2049-chars", "image_urls[0]", image_urls=["https://example.com/" + "a" * 2029]),
    case("url-none-item", "image_urls[0]", image_urls=[None]),
    case("url-int-item", "image_urls[0]", image_urls=[12]),
    # enums
    case("aspect-5-4", "aspect_ratio", aspect_ratio="5:4"),
    case("aspect-16x9", "aspect_ratio", aspect_ratio="16x9"),
    case("aspect-float", "aspect_ratio", aspect_ratio=1.0),
    case("aspect-none-text", "aspect_ratio", aspect_ratio="None"),
    case("quality-ultra", "quality", quality="ultra"),
    case("quality-uppercase", "quality", quality="HIGH"),
    case("quality-int", "quality", quality=4),
    # optional fields
    case("callback-ftp", "callback_url", callback_url="ftp://example.com/hook"),
    case("callback-no-scheme", "callback_url", callback_url="example.com/hook"),
    case("callback-int", "callback_url", callback_url=8080),
    case("nsfw-string", "nsfw_checker", nsfw_checker="yes"),
    case("nsfw-int", "nsfw_checker", nsfw_checker=1),
    # templated values that render to garbage
    case("tpl-prompt-empty", "prompt", {"p": ""}, prompt="{{ params.p }}"),
    case("tpl-prompt-undefined", "prompt", {}, prompt="{{ params.missing }}"),
    case("tpl-urls-none", "image_urls[0]", {"u": None}, image_urls="{{ params.u }}"),
    case("tpl-urls-20", "image_urls", {"u": [URL] * 20}, image_urls="{{ params.u }}"),
    case("tpl-urls-empty-json", "image_urls", {"u": []}, image_urls="{{ params.u | tojson }}"),
    case("tpl-urls-broken-list", "image_urls", {"u": "[https://a, "}, image_urls="{{ params.u }}"),
    case("tpl-urls-json-object", "image_urls[0]", {"u": {"a": URL}}, image_urls="[{{ params.u | tojson }}]"),
    case("tpl-url-item-empty", "image_urls[0]", {}, image_urls=["{{ params.missing }}"]),
    case("tpl-aspect-none", "aspect_ratio", {"ar": None}, aspect_ratio="{{ params.ar }}"),
    case("tpl-aspect-undefined", "aspect_ratio", {}, aspect_ratio="{{ params.missing }}"),
    case("tpl-quality-none", "quality", {"q": None}, quality="{{ params.q }}"),
    case("tpl-callback-none", "callback_url", {"c": None}, callback_url="{{ params.c }}"),
]


@pytest.mark.parametrize("kwargs, params, field", EDIT_CASES)
def test_invalid_edit_input_is_refused_naming_the_field_before_any_request(emulator, kwargs, params, field):
    kwargs = {"prompt": "make the background blue", "image_urls": [URL], **kwargs}
    op = SeedreamEditOperator(task_id="edit", **kwargs)
    ti = RecordingTI()
    context = {"ti": ti, "params": params or {}}
    op.render_template_fields(context)
    with pytest.raises(exc.SeedreamValidationError) as refused:
        op.execute(context)
    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field}: "), str(refused.value)
    assert requests_sent(emulator) == 0 and ti.xcoms == {}


def test_the_table_is_big_enough():
    assert len(EDIT_CASES) >= 20
    assert len({c.values[2].split("[")[0] for c in EDIT_CASES}) == 6  # every input field has cases


@pytest.mark.parametrize(
    "kwargs, field",
    [
        pytest.param({"poll_interval": 0}, "poll_interval", id="poll-zero"),
        pytest.param({"poll_interval": -1}, "poll_interval", id="poll-negative"),
        pytest.param({"poll_interval": math.nan}, "poll_interval", id="poll-nan"),
        pytest.param({"poll_interval": math.inf}, "poll_interval", id="poll-inf"),
        pytest.param({"poll_interval": "5"}, "poll_interval", id="poll-string"),
        pytest.param({"poll_interval": True}, "poll_interval", id="poll-bool"),
        pytest.param({"timeout": 0}, "timeout", id="timeout-zero"),
        pytest.param({"timeout": -60}, "timeout", id="timeout-negative"),
    ],
)
def test_invalid_wait_settings_are_refused_when_the_dag_is_parsed(emulator, kwargs, field):
    with pytest.raises(exc.SeedreamValidationError, match=f"^{field}: "):
        SeedreamEditOperator(task_id="edit", prompt="p", image_urls=[URL], **kwargs)
    assert requests_sent(emulator) == 0


@pytest.mark.parametrize(
    "kwargs, field",
    [
        pytest.param({"poke_interval": 0}, "poke_interval", id="poke-zero"),
        pytest.param({"poke_interval": -5}, "poke_interval", id="poke-negative"),
        pytest.param({"timeout": 0}, "timeout", id="timeout-zero"),
        pytest.param({"timeout": math.nan}, "timeout", id="timeout-nan"),
    ],
)
def test_invalid_sensor_settings_are_refused_when_the_dag_is_parsed(emulator, kwargs, field):
    with pytest.raises(exc.SeedreamValidationError, match=f"^{field}: "):
        SeedreamTaskSensor(task_id="wait", seedream_task_id="abc", **kwargs)
    assert requests_sent(emulator) == 0


@pytest.mark.parametrize(
    "task_id, params",
    [
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="none"),
        pytest.param(123, None, id="int"),
        pytest.param("two words", None, id="space"),
        pytest.param("x" * 257, None, id="257-chars"),
        pytest.param("{{ params.missing }}", {}, id="tpl-undefined"),
        pytest.param("{{ params.t | tojson }}", {"t": {"taskId": "abc"}}, id="tpl-dict"),
    ],
)
@pytest.mark.parametrize("deferrable", [True, False], ids=["deferrable", "poke"])
def test_invalid_task_id_is_refused_by_the_sensor_before_any_request(emulator, task_id, params, deferrable):
    sensor = SeedreamTaskSensor(task_id="wait", seedream_task_id=task_id, deferrable=deferrable, timeout=5,
                                poke_interval=0.1)
    context = {"ti": RecordingTI(), "params": params or {}}
    sensor.render_template_fields(context)
    with pytest.raises(exc.SeedreamValidationError, match="^seedream_task_id: "):
        sensor.execute(context)
    assert requests_sent(emulator) == 0


def test_connection_id_that_renders_empty_is_refused_before_any_request(emulator):
    from airflow.exceptions import AirflowNotFoundException

    op = SeedreamEditOperator(task_id="edit", prompt="p", image_urls=[URL], seedream_conn_id="{{ params.conn }}")
    context = {"ti": RecordingTI(), "params": {"conn": ""}}
    op.render_template_fields(context)
    with pytest.raises(AirflowNotFoundException, match="conn_id"):
        op.execute(context)
    assert requests_sent(emulator) == 0


# ---------------------------------------------------------------------- templates that rendered a missing value
UNRENDERED = "a template that rendered Python's None: check_task_id/build_input accept the text 'None'"


def test_sensor_task_id_pulled_from_a_missing_xcom_is_refused(emulator):
    """``{{ ti.xcom_pull(...) }}`` of a value that was never pushed renders ``'None'``; it must not be polled."""
    sensor = SeedreamTaskSensor(task_id="wait", seedream_task_id="{{ ti.xcom_pull(task_ids='edit') }}",
                                timeout=1, poke_interval=0.1)
    context = {"ti": RecordingTI(), "params": {}}
    sensor.render_template_fields(context)
    assert sensor.seedream_task_id == "None"
    try:
        with pytest.raises(exc.SeedreamValidationError, match="^seedream_task_id: "):
            sensor.execute(context)
    finally:
        assert requests_sent(emulator) == 0


def test_prompt_that_renders_none_is_refused(emulator):
    op = SeedreamEditOperator(task_id="edit", prompt="{{ params.p }}", image_urls=[URL])
    context = {"ti": RecordingTI(), "params": {"p": None}}
    op.render_template_fields(context)
    assert op.prompt == "None"
    try:
        with pytest.raises(exc.SeedreamValidationError, match="^prompt: "):
            op.execute(context)
    finally:
        assert requests_sent(emulator) == 0
        json.dumps(context["ti"].xcoms)
