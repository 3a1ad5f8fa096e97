"""Request validation, restated from the Seedream 4.5 edit createTask document.

Pure functions: each returns ``None`` when the value is acceptable, else a message naming the field, what is wrong
and what is allowed (kie answers such requests with body code 422).

Deliberately strict where the document is ambiguous, so that a client that leans on undocumented leniency fails here
first: ``aspect_ratio`` and ``quality`` are enforced as present because the schema lists them under ``required``
even though it also gives them defaults.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from seedream_emulator.config import (
    ASPECT_RATIOS,
    IMAGE_URLS_MAX,
    MODEL,
    PROMPT_MAX_CHARS,
    QUALITIES,
)


def is_http_uri(value: Any) -> bool:
    """Tell whether ``value`` is an absolute http(s) URI string with a host."""
    if not isinstance(value, str) or not value or any(ch.isspace() for ch in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def validate_create_body(body: Any) -> str | None:
    """Validate a whole createTask body (``model``, ``callBackUrl``, ``input``)."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if "model" not in body:
        return "model is required (must be 'seedream/4.5-edit')"
    if body["model"] != MODEL:
        return f"model must be '{MODEL}' on this endpoint, got {body['model']!r}"
    callback = body.get("callBackUrl")
    if callback is not None and not is_http_uri(callback):
        return f"callBackUrl must be an http(s) URI, got {callback!r}"
    if "input" not in body:
        return "input is required"
    if not isinstance(body["input"], dict):
        return "input must be an object"
    return validate_input(body["input"])


def validate_input(data: dict[str, Any]) -> str | None:
    """Validate ``input``: prompt, image_urls, aspect_ratio, quality, nsfw_checker."""
    for check in (_check_prompt, _check_image_urls, _check_aspect_ratio, _check_quality, _check_nsfw_checker):
        problem = check(data)
        if problem is not None:
            return problem
    return None


def _check_prompt(data: dict[str, Any]) -> str | None:
    prompt = data.get("prompt")
    if prompt is None:
        return "input.prompt is required"
    if not isinstance(prompt, str):
        return f"input.prompt must be a string, got {type(prompt).__name__}"
    if not prompt.strip():
        return "input.prompt must not be empty"
    if len(prompt) > PROMPT_MAX_CHARS:
        return f"input.prompt is {len(prompt)} characters long; the maximum is {PROMPT_MAX_CHARS}"
    return None


def _check_image_urls(data: dict[str, Any]) -> str | None:
    urls = data.get("image_urls")
    if urls is None:
        return "input.image_urls is required"
    if not isinstance(urls, list):
        return f"input.image_urls must be an array of URLs, got {type(urls).__name__}"
    if not urls:
        return "input.image_urls must contain at least 1 URL"
    if len(urls) > IMAGE_URLS_MAX:
        return f"input.image_urls has {len(urls)} items; the maximum is {IMAGE_URLS_MAX}"
    for index, url in enumerate(urls):
        if not is_http_uri(url):
            return f"input.image_urls[{index}] must be an http(s) URL string, got {url!r}"
    return None


def _check_choice(data: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str | None:
    value = data.get(key)
    if value is None:
        return f"input.{key} is required; one of {', '.join(allowed)}"
    if value not in allowed:
        return f"input.{key} must be one of {', '.join(allowed)}, got {value!r}"
    return None


def _check_aspect_ratio(data: dict[str, Any]) -> str | None:
    return _check_choice(data, "aspect_ratio", ASPECT_RATIOS)


def _check_quality(data: dict[str, Any]) -> str | None:
    return _check_choice(data, "quality", QUALITIES)


def _check_nsfw_checker(data: dict[str, Any]) -> str | None:
    if "nsfw_checker" in data and not isinstance(data["nsfw_checker"], bool):
        return f"input.nsfw_checker must be a boolean, got {data['nsfw_checker']!r}"
    return None
