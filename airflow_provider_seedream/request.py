"""The request: what a task of a Seedream model may hold, the checks that run before anything is sent, and the
createTask body.

Pure: every input is checked after templating and before any request (a request costs money), against its model's
spec in ``models``; a refusal names the field, the model and the allowed values (``invalid``). ``TaskRequest`` is
what the user asked for, ``TaskInput`` the checked value the operators, the hook and the batch send, and
``fingerprint()`` tells a retry of the same task from a changed one.
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream import models

MAX_URL_CHARS = 2048


# What Jinja renders for a missing value (``{{ ti.xcom_pull(...) }}`` of nothing, a param set to None).
RENDERED_NONE = "rendered to the text 'None': the template's value was missing (an XCom never pushed, a param unset?)"


def invalid(field_name: str, problem: str) -> exc.SeedreamValidationError:
    """The refusal of an input, naming its field: raised before anything is sent."""
    return exc.SeedreamValidationError(f"{field_name}: {problem}", field=field_name, code=None)


def short(value: Any, limit: int = 80) -> str:
    """A value as an error message may quote it: its repr, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def has_space_or_control(text: str) -> bool:
    """Tell whether ``text`` holds whitespace or a control character (never part of a URL we send or store)."""
    return any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text)


def check_http_url(field_name: str, value: Any) -> str:
    """Return ``value`` if it is an absolute http(s) URL with a host, else raise naming ``field_name``."""
    if not isinstance(value, str):
        raise invalid(field_name, f"must be an http(s) URL string, got {type(value).__name__} {short(value)}")
    if not value or value != value.strip() or any(ch.isspace() for ch in value):
        raise invalid(field_name, f"must be an http(s) URL without spaces, got {short(value)}")
    if len(value) > MAX_URL_CHARS:
        raise invalid(field_name, f"URL is {len(value)} characters long; at most {MAX_URL_CHARS} are allowed")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise invalid(field_name, f"must use http or https, got {short(value)}")
    if not parts.hostname:
        raise invalid(field_name, f"has no host: {short(value)}")
    return value


def coerce_url_list(field_name: str, value: Any) -> list[Any]:
    """Turn a templated ``image_urls`` value into a list.

    Jinja renders a list to its text unless the DAG sets ``render_template_as_native_obj``, so a string that reads
    as a JSON or Python list is parsed back; a single URL string becomes a list of one.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            parsed: Any
            try:
                parsed = json.loads(text)
            except ValueError:
                try:
                    parsed = ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    raise invalid(field_name, f"could not read a list of URLs from {short(value)}") from None
            if not isinstance(parsed, list):
                raise invalid(field_name, f"must be a list of URLs, got {short(value)}")
            return parsed
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise invalid(field_name, f"must be a list of image URLs, got {type(value).__name__}")


@dataclass(frozen=True)
class TaskRequest:
    """A task as the user asked for it (templated values, not checked yet): the one value the operators, the hook
    and the batch pass along, checked into a ``TaskInput`` by ``build_input``. ``None`` means unset: the model's
    default is sent, or nothing."""

    prompt: Any
    image_urls: Any = None
    aspect_ratio: Any = None
    quality: Any = None
    callback_url: Any = None
    nsfw_checker: Any = None
    model: Any = models.DEFAULT_EDIT_MODEL
    image_size: Any = None
    image_resolution: Any = None
    max_images: Any = None
    seed: Any = None
    guidance_scale: Any = None

    @classmethod
    def of(cls, source: Any) -> TaskRequest:
        """The request an object's attributes of the same names describe (an operator's templated fields)."""
        return cls(**{name: getattr(source, name, None) for name in REQUEST_FIELDS})


#: The fields of a request, in order; only ``prompt`` has no default (``image_urls`` is required by edit models).
REQUEST_FIELDS = tuple(f.name for f in fields(TaskRequest))
#: The request's own fields that are not ``input`` fields of a model.
ENVELOPE_FIELDS = ("model", "callback_url")


@dataclass(frozen=True)
class TaskInput:
    """A validated request for one model of the family (or any Market model, unvalidated), ready to send.

    ``input`` holds the model's fields as kie names them, ``image_urls`` apart (uploads swap files for URLs there).
    """

    model: str
    input: tuple[tuple[str, Any], ...]
    image_urls: tuple[str, ...] = ()
    callback_url: str | None = None

    @property
    def takes_images(self) -> bool:
        spec = models.spec_for(self.model)
        return spec.takes_images if spec is not None else bool(self.image_urls)

    def body(self) -> dict[str, Any]:
        """Return the createTask JSON body: the fields given, the defaults of those left unset, in kie's order."""
        payload: dict[str, Any] = {}
        for name, value in self.input:
            payload[name] = value
            if name == "prompt" and self.takes_images:
                payload["image_urls"] = list(self.image_urls)
        if self.takes_images:
            payload.setdefault("image_urls", list(self.image_urls))
        body: dict[str, Any] = {"model": self.model, "input": payload}
        if self.callback_url:
            body["callBackUrl"] = self.callback_url
        return body

    def fingerprint(self) -> str:
        """Return a stable digest of the request (model included), to tell a retry of the same task from a changed
        one."""
        import hashlib

        canonical = json.dumps(self.body(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def model_error(model: Any, kind: models.Kind | None) -> exc.SeedreamValidationError | None:
    """The refusal of a ``model`` that is not a family model (of ``kind``, when given), or ``None``."""
    allowed = models.models_of(kind) if kind else tuple(models.SPECS)
    spec = models.spec_for(model)
    if spec is not None and (kind is None or spec.kind == kind):
        return None
    if isinstance(model, str) and model.strip() == "None":
        return invalid("model", RENDERED_NONE)
    what = f"a Seedream {kind} model" if kind else "a Seedream model"
    found = f" ({model} makes {'edits' if spec.kind == 'edit' else 'images from text'})" if spec is not None else ""
    return invalid("model", f"must be {what} of kie.ai: one of {', '.join(allowed)}; got {short(model)}{found}")


def build_input(task: TaskRequest, kind: models.Kind | None = None) -> TaskInput:
    """Validate every field of a request against its model's spec and return it ready to send.

    Raises ``SeedreamValidationError`` naming the first bad field (and the model, and what it allows): a model
    outside the family (or not of ``kind``), a field the model does not have, a value outside its limits.
    """
    problem = model_error(task.model, kind)
    if problem is not None:
        raise problem
    spec = models.spec_for(task.model)
    assert spec is not None
    given = {name: getattr(task, name) for name in REQUEST_FIELDS if name not in ENVELOPE_FIELDS}
    for name, value in given.items():
        if value is not None and spec.field(name) is None:
            raise invalid(name, f"model {spec.model} has no such field (its fields: {', '.join(spec.field_names)})")
    values: list[tuple[str, Any]] = []
    image_urls: tuple[str, ...] = ()
    for item in spec.fields:
        value = given.get(item.name)
        if value is None:
            if item.required:
                raise invalid(item.name, f"required by model {spec.model} ({item.limits()})")
            if item.default is None:
                continue
            value = item.default
        checked = check_field(spec.model, item, value)
        if item.type == "urls":
            image_urls = checked
        else:
            values.append((item.name, checked))
    callback_url = task.callback_url
    if callback_url in (None, ""):
        callback_url = None
    else:
        check_http_url("callback_url", callback_url)
    return TaskInput(spec.model, tuple(values), image_urls, callback_url)


def check_field(model: str, spec: models.FieldSpec, value: Any) -> Any:
    """Return ``value`` checked (and read back from its templated text where needed) against one field's spec."""
    name = spec.name
    if isinstance(value, str) and value.strip() == "None" and spec.type != "urls":
        raise invalid(name, RENDERED_NONE)
    if spec.type == "text":
        if not isinstance(value, str):
            raise invalid(name, f"must be a string, got {type(value).__name__}")
        if not value.strip():
            raise invalid(name, f"must not be empty ({spec.limits()} for {model})")
        low, high = int(spec.minimum or 1), int(spec.maximum or 0)
        if not low <= len(value) <= high:
            raise invalid(name, f"is {len(value)} characters long; {model} takes {spec.limits()}")
        return value
    if spec.type == "urls":
        urls = coerce_url_list(name, value)
        low, high = int(spec.minimum or 1), int(spec.maximum or 0)
        if not low <= len(urls) <= high:
            raise invalid(name, f"must hold {low} to {high} URLs for {model}, got {len(urls)}")
        return tuple(check_http_url(f"{name}[{i}]", url) for i, url in enumerate(urls))
    if spec.type == "choice":
        if not isinstance(value, str) or value not in spec.choices:
            raise invalid(name, f"must be one of {spec.limits()} for {model}; got {short(value)}")
        return value
    if spec.type == "switch":
        if not isinstance(value, bool):
            raise invalid(name, f"must be true, false or unset; got {short(value)}")
        return value
    number = _read_number(value, integer=spec.type == "integer")
    if number is None or (spec.minimum is not None and number < spec.minimum) \
            or (spec.maximum is not None and number > spec.maximum):
        raise invalid(name, f"must be {spec.limits()} for {model}; got {short(value)}")
    return number


def _read_number(value: Any, *, integer: bool) -> int | float | None:
    """A number from a value or its templated text (``"3"``); ``None`` when it is not one (booleans are not)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if integer:
        return value if isinstance(value, int) else None
    return value


def _finite_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def check_positive(field_name: str, value: Any, minimum: float = 0.0) -> float:
    """Return ``value`` as a float if it is a number above ``minimum``; raise naming the field otherwise."""
    if not _finite_number(value) or value <= minimum:
        raise invalid(field_name, f"must be a number greater than {minimum:g}, got {short(value)}")
    return float(value)


def check_non_negative(field_name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite number of at least 0; raise naming the field otherwise."""
    if not _finite_number(value) or value < 0:
        raise invalid(field_name, f"must be a number of at least 0, got {short(value)}")
    return float(value)
