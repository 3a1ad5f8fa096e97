"""Table tests of the request: inputs checked before spend, the createTask body, the fingerprint."""

from __future__ import annotations

import math

import pytest

from airflow_provider_seedream import request, wire
from airflow_provider_seedream import exceptions as exc

URL = "https://example.com/a.png"


# ---------------------------------------------------------------------------------------------------------------- input
def test_valid_input_builds_documented_body():
    edit = request.build_input(
        request.TaskRequest("make it blue", [URL], "16:9", "high", "https://hooks.example.com/cb"))
    assert edit.body() == {
        "model": "seedream/4.5-edit",
        "callBackUrl": "https://hooks.example.com/cb",
        "input": {"prompt": "make it blue", "image_urls": [URL], "aspect_ratio": "16:9", "quality": "high"},
    }


def test_defaults_are_always_sent_and_callback_omitted():
    body = request.build_input(request.TaskRequest("p", [URL])).body()
    assert body["input"]["aspect_ratio"] == "1:1" and body["input"]["quality"] == "basic"
    assert "callBackUrl" not in body and "nsfw_checker" not in body["input"]


def test_nsfw_checker_is_sent_only_when_set():
    edit = request.build_input(request.TaskRequest("p", [URL], nsfw_checker=False))
    assert edit.body()["input"]["nsfw_checker"] is False


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
    assert list(request.build_input(request.TaskRequest("p", raw)).image_urls) == expected


# The bad-input table: each must be refused naming the field, before anything is sent.
BAD_INPUTS = [
    ({"prompt": ""}, "prompt", "must not be empty"),
    ({"prompt": "   "}, "prompt", "must not be empty"),
    ({"prompt": "x" * 3001}, "prompt", "seedream/4.5-edit takes 1 to 3000 characters"),
    ({"prompt": None}, "prompt", "required by model seedream/4.5-edit"),
    ({"prompt": 42}, "prompt", "must be a string"),
    ({"image_urls": []}, "image_urls", "1 to 14"),
    ({"image_urls": [URL] * 15}, "image_urls", "1 to 14"),
    ({"image_urls": None}, "image_urls", "required by model seedream/4.5-edit (1 to 14 image URLs"),
    ({"image_urls": 7}, "image_urls", "list of image URLs"),
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
    ({"aspect_ratio": 16}, "aspect_ratio", "one of 1:1"),
    ({"quality": "ultra"}, "quality", "one of basic, high (basic = 2K, high = 4K) for seedream/4.5-edit"),
    ({"quality": "HIGH"}, "quality", "one of basic, high (basic = 2K, high = 4K)"),
    ({"callback_url": "not a url"}, "callback_url", "without spaces"),
    ({"callback_url": "mailto:me@example.com"}, "callback_url", "http or https"),
    ({"nsfw_checker": "yes"}, "nsfw_checker", "true, false or unset"),
]


@pytest.mark.parametrize("override, field, fragment", BAD_INPUTS)
def test_bad_inputs_name_the_field(override, field, fragment):
    kwargs = {"prompt": "make it blue", "image_urls": [URL], **override}
    with pytest.raises(exc.SeedreamValidationError) as err:
        request.build_input(request.TaskRequest(**kwargs))
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}:")
    assert fragment in str(err.value)


def test_fingerprint_changes_with_inputs_only():
    a = request.build_input(request.TaskRequest("p", [URL]))
    assert a.fingerprint() == request.build_input(request.TaskRequest("p", (URL,))).fingerprint()
    assert a.fingerprint() != request.build_input(request.TaskRequest("q", [URL])).fingerprint()


@pytest.mark.parametrize("value", ["", " ", None, 5, "a b", "x" * 300])
def test_bad_task_ids(value):
    with pytest.raises(exc.SeedreamValidationError, match="seedream_task_id"):
        wire.check_task_id(value)


@pytest.mark.parametrize("value", [0, -1, math.inf, math.nan, "5", True])
def test_check_positive(value):
    with pytest.raises(exc.SeedreamValidationError, match="poll_interval"):
        request.check_positive("poll_interval", value)


@pytest.mark.parametrize("value", [-0.5, math.inf, math.nan, "5", None, True])
def test_check_non_negative_refuses(value):
    with pytest.raises(exc.SeedreamValidationError, match="defer_after: must be a number of at least 0"):
        request.check_non_negative("defer_after", value)


def test_check_non_negative_takes_zero_and_more():
    assert request.check_non_negative("defer_after", 0) == 0.0 and request.check_non_negative("x", 2) == 2.0


