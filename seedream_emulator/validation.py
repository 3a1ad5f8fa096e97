"""Request validation: a createTask body checked against the statement of its model in ``models``.

Pure functions: each returns ``None`` when the value is acceptable, else a message naming the field, what is wrong
and what is allowed, and (for ``input`` fields) the model (kie answers such requests with body code 422). How strict
the checks are where kie's pages are silent is decided, and explained, in ``models``.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from seedream_emulator.models import BOOLEAN, CHOICE, INTEGER, MODELS, NUMBER, TEXT, URLS, FieldSpec, ModelSpec


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
        return f"model is required (one of {', '.join(MODELS)})"
    model = body["model"]
    spec = MODELS.get(model) if isinstance(model, str) else None
    if spec is None:
        return f"model {model!r} is not served on this endpoint; the Seedream models are {', '.join(MODELS)}"
    callback = body.get("callBackUrl")
    if callback is not None and not is_http_uri(callback):
        return f"callBackUrl must be an http(s) URI, got {callback!r}"
    if "input" not in body:
        return "input is required"
    if not isinstance(body["input"], dict):
        return "input must be an object"
    return validate_input(spec, body["input"])


def validate_input(spec: ModelSpec, data: dict[str, Any]) -> str | None:
    """Validate ``input`` for the model ``spec``: no field it lacks, then each of its fields in the page's order."""
    for key in data:
        if key not in spec.field_names:
            return (
                f"input.{key} is not a field of model {spec.name} (its fields: {', '.join(spec.field_names)})"
            )
    for field in spec.fields:
        problem = check_field(field, data)
        if problem is not None:
            return f"{problem} (model {spec.name})"
    return None


def check_field(field: FieldSpec, data: dict[str, Any]) -> str | None:
    """Check one field of ``input`` against its statement; ``None`` if acceptable."""
    name = f"input.{field.name}"
    value = data.get(field.name)
    if value is None:
        if field.required:
            allowed = f"; one of {', '.join(field.choices)}" if field.kind == CHOICE else ""
            return f"{name} is required{allowed}"
        if field.name not in data:
            return None
        # Present as null: not a value of the field's type (absent is the way to ask for the default).
    if field.kind == TEXT:
        return _check_text(name, field, value)
    if field.kind == URLS:
        return _check_urls(name, field, value)
    if field.kind == CHOICE:
        if value not in field.choices:
            return f"{name} must be one of {', '.join(field.choices)}, got {value!r}"
        return None
    if field.kind == BOOLEAN:
        return None if isinstance(value, bool) else f"{name} must be a boolean, got {value!r}"
    if field.kind == INTEGER:
        # bool is an int subclass in Python, and 3.0 arrives as a float: neither is a JSON integer here.
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{name} must be an integer, got {type(value).__name__} {value!r}"
        return _check_range(name, field, value)
    if field.kind == NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"{name} must be a finite number, got {type(value).__name__} {value!r}"
        return _check_range(name, field, value)
    raise ValueError(f"unknown field kind {field.kind!r} for {name}")


def _check_text(name: str, field: FieldSpec, value: Any) -> str | None:
    if not isinstance(value, str):
        return f"{name} must be a string, got {type(value).__name__}"
    if not value.strip():
        return f"{name} must not be empty"
    if field.minimum is not None and len(value) < field.minimum:
        return f"{name} is {len(value)} characters long; the minimum is {field.minimum:g}"
    if field.maximum is not None and len(value) > field.maximum:
        return f"{name} is {len(value)} characters long; the maximum is {field.maximum:g}"
    return None


def _check_urls(name: str, field: FieldSpec, value: Any) -> str | None:
    if not isinstance(value, list):
        return f"{name} must be an array of URLs, got {type(value).__name__}"
    if field.minimum is not None and len(value) < field.minimum:
        return f"{name} must contain at least {field.minimum:g} URL{'' if field.minimum == 1 else 's'}"
    if field.maximum is not None and len(value) > field.maximum:
        return f"{name} has {len(value)} items; the maximum is {field.maximum:g}"
    for index, url in enumerate(value):
        if not is_http_uri(url):
            return f"{name}[{index}] must be an http(s) URL string, got {url!r}"
    return None


def _check_range(name: str, field: FieldSpec, value: float) -> str | None:
    low, high = field.minimum, field.maximum
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"{'' if low is None else f'{low:g}'}..{'' if high is None else f'{high:g}'}"
        return f"{name} is {value!r}; allowed {bounds}"
    return None
