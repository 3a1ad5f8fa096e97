"""The request: what an edit may hold, the checks that run before anything is sent, and the createTask body.

Pure: every input is checked after templating and before any request (a request costs money); a refusal names the
field and the allowed values (``invalid``). ``EditInput`` is the request value the operator, the hook and the batch
pass along, and ``fingerprint()`` tells a retry of the same edit from a changed one.
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_seedream import exceptions as exc

MODEL = "seedream/4.5-edit"


ASPECT_RATIOS = ("1:1", "4:3", "3:4", "16:9", "9:16", "2:3", "3:2", "21:9")


QUALITIES = ("basic", "high")
DEFAULT_ASPECT_RATIO = "1:1"
DEFAULT_QUALITY = "basic"


MAX_PROMPT_CHARS = 3000


MAX_IMAGES = 14


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
    raise invalid(field_name, f"must be a list of 1 to {MAX_IMAGES} URLs, got {type(value).__name__}")


@dataclass(frozen=True)
class EditRequest:
    """An edit as the user asked for it (templated values, not checked yet): the one value the operators, the hook
    and the batch pass along, checked into an ``EditInput`` by ``build_edit_input``."""

    prompt: Any
    image_urls: Any
    aspect_ratio: Any = DEFAULT_ASPECT_RATIO
    quality: Any = DEFAULT_QUALITY
    callback_url: Any = None
    nsfw_checker: Any = None

    @classmethod
    def of(cls, source: Any) -> EditRequest:
        """The request an object's attributes of the same names describe (an operator's templated fields)."""
        return cls(**{name: getattr(source, name) for name in EDIT_FIELDS})


#: The fields of an edit, in order; ``prompt`` and ``image_urls`` have no default.
EDIT_FIELDS = tuple(f.name for f in fields(EditRequest))
REQUIRED_FIELDS = ("prompt", "image_urls")


@dataclass(frozen=True)
class EditInput:
    """A validated Seedream 4.5 edit request, ready to send."""

    prompt: str
    image_urls: tuple[str, ...]
    aspect_ratio: str = DEFAULT_ASPECT_RATIO
    quality: str = DEFAULT_QUALITY
    callback_url: str | None = None
    nsfw_checker: bool | None = None

    def body(self) -> dict[str, Any]:
        """Return the createTask JSON body (``aspect_ratio`` and ``quality`` always sent: the schema requires them)."""
        payload: dict[str, Any] = {
            "prompt": self.prompt,
            "image_urls": list(self.image_urls),
            "aspect_ratio": self.aspect_ratio,
            "quality": self.quality,
        }
        if self.nsfw_checker is not None:
            payload["nsfw_checker"] = self.nsfw_checker
        body: dict[str, Any] = {"model": MODEL, "input": payload}
        if self.callback_url:
            body["callBackUrl"] = self.callback_url
        return body

    def fingerprint(self) -> str:
        """Return a stable digest of the request, to tell a retry of the same edit from a changed one."""
        import hashlib

        canonical = json.dumps(self.body(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def build_edit_input(edit: EditRequest) -> EditInput:
    """Validate every input of an edit and return it; raise ``SeedreamValidationError`` naming the first bad field."""
    prompt, image_urls, aspect_ratio, quality, callback_url, nsfw_checker = (getattr(edit, name) for name in EDIT_FIELDS)
    if not isinstance(prompt, str):
        raise invalid("prompt", f"must be a string, got {type(prompt).__name__}")
    if prompt.strip() == "None":
        raise invalid("prompt", RENDERED_NONE)
    if not prompt.strip():
        raise invalid("prompt", f"must not be empty (1 to {MAX_PROMPT_CHARS} characters)")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise invalid("prompt", f"is {len(prompt)} characters long; at most {MAX_PROMPT_CHARS} are allowed")

    urls = coerce_url_list("image_urls", image_urls)
    if not 1 <= len(urls) <= MAX_IMAGES:
        raise invalid("image_urls", f"must hold 1 to {MAX_IMAGES} URLs, got {len(urls)}")
    checked = tuple(check_http_url(f"image_urls[{i}]", url) for i, url in enumerate(urls))

    if not isinstance(aspect_ratio, str) or aspect_ratio not in ASPECT_RATIOS:
        raise invalid("aspect_ratio", f"must be one of {', '.join(ASPECT_RATIOS)}; got {short(aspect_ratio)}")
    if not isinstance(quality, str) or quality not in QUALITIES:
        raise invalid("quality", f"must be 'basic' (2K) or 'high' (4K); got {short(quality)}")
    if callback_url in (None, ""):
        callback_url = None
    else:
        check_http_url("callback_url", callback_url)
    if nsfw_checker is not None and not isinstance(nsfw_checker, bool):
        raise invalid("nsfw_checker", f"must be true, false or unset; got {short(nsfw_checker)}")
    return EditInput(prompt, checked, aspect_ratio, quality, callback_url, nsfw_checker)


def check_positive(field_name: str, value: Any, minimum: float = 0.0) -> float:
    """Return ``value`` as a float if it is a number above ``minimum``; raise naming the field otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= minimum:
        raise invalid(field_name, f"must be a number greater than {minimum:g}, got {short(value)}")
    return float(value)
