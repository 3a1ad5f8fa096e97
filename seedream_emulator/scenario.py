"""Per-task scenarios: how an emulated task ends, how long it takes, what its result looks like.

Tests choose a scenario without any side channel by putting a directive in the prompt, e.g.
``"make it blue [emulator: outcome=fail, fail_code=500, fail_msg=Internal error, seconds=2.5]"``. The directive is
part of the prompt kie receives (and so of ``param``), which keeps the request itself the single source of truth.
``EmulatorConfig.default_scenario`` (same keys) applies to prompts without a directive.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Ways a task can end (see the module docstring of the package for what each one does).
OUTCOMES: tuple[str, ...] = ("success", "fail", "never", "empty", "bad_result_json", "unknown_state", "slow")
#: Accepted spellings of ``format=`` -> canonical format name.
FORMAT_ALIASES: dict[str, str] = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "webp": "webp"}
DEFAULT_FAIL_CODE = "500"
DEFAULT_FAIL_MSG = "Internal server error, please try again later"
#: ``outcome=slow`` multiplies the duration by this factor.
SLOW_FACTOR = 10.0
#: Directive keys, for error messages.
DIRECTIVE_KEYS: tuple[str, ...] = (
    "outcome", "fail_code", "fail_msg", "seconds", "format", "expire_after", "polls", "null_window"
)

_DIRECTIVE = re.compile(r"\[emulator:([^\]]*)\]", re.IGNORECASE)


@dataclass(frozen=True)
class Scenario:
    """What one task will do.

    :param outcome: one of ``OUTCOMES``.
    :param fail_code: failCode reported by ``outcome=fail`` (a numeric string, as kie reports it).
    :param fail_msg: failMsg reported by ``outcome=fail``.
    :param seconds: task duration in emulated seconds; ``None`` means the configured duration.
    :param format: result image format (png/jpeg/webp).
    :param expire_after: emulated seconds after completion at which the result URL starts answering 403;
        ``None`` means the configured ``result_ttl``.
    :param polls: if set, the task ends on its N-th visible recordInfo poll instead of after ``seconds``.
    :param null_window: emulated seconds after creation during which recordInfo answers ``recordInfo is null``;
        ``None`` means the configured ``null_window_seconds`` (0 by default).
    """

    outcome: str = "success"
    fail_code: str = DEFAULT_FAIL_CODE
    fail_msg: str = DEFAULT_FAIL_MSG
    seconds: float | None = None
    format: str = "png"
    expire_after: float | None = None
    polls: int | None = None
    null_window: float | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Scenario:
        """Build a scenario from directive or config values; raise ``ValueError`` naming the bad key."""
        unknown = sorted(set(values) - set(DIRECTIVE_KEYS))
        if unknown:
            raise ValueError(f"unknown emulator directive key(s) {unknown}; allowed: {', '.join(DIRECTIVE_KEYS)}")
        outcome = str(values.get("outcome", "success")).strip().lower()
        if outcome not in OUTCOMES:
            raise ValueError(f"emulator directive outcome={outcome!r} is not one of {', '.join(OUTCOMES)}")
        fmt = FORMAT_ALIASES.get(str(values.get("format", "png")).strip().lower())
        if fmt is None:
            raise ValueError(f"emulator directive format={values.get('format')!r} is not one of png, jpeg, webp")
        return cls(
            outcome=outcome,
            fail_code=str(values.get("fail_code", DEFAULT_FAIL_CODE)).strip(),
            fail_msg=str(values.get("fail_msg", DEFAULT_FAIL_MSG)).strip(),
            seconds=_optional_number(values, "seconds"),
            format=fmt,
            expire_after=_optional_number(values, "expire_after"),
            polls=_optional_polls(values),
            null_window=_optional_number(values, "null_window"),
        )


def _optional_number(values: Mapping[str, Any], key: str) -> float | None:
    if values.get(key) in (None, ""):
        return None
    try:
        number = float(values[key])
    except (TypeError, ValueError):
        raise ValueError(f"emulator directive {key}={values[key]!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"emulator directive {key}={values[key]!r} must be a finite number >= 0")
    return number


def _optional_polls(values: Mapping[str, Any]) -> int | None:
    number = _optional_number(values, "polls")
    if number is None:
        return None
    if number < 1 or number != int(number):
        raise ValueError(f"emulator directive polls={values['polls']!r} must be a whole number >= 1")
    return int(number)


def parse_directive(prompt: str) -> dict[str, str] | None:
    """Return the key/value pairs of the first ``[emulator: k=v, ...]`` directive in ``prompt``, if any."""
    match = _DIRECTIVE.search(prompt)
    if match is None:
        return None
    values: dict[str, str] = {}
    for item in match.group(1).split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"emulator directive item {item.strip()!r} is not key=value")
        values[key.strip().lower()] = value.strip()
    return values


def scenario_for_prompt(prompt: str, default: Mapping[str, Any] | None) -> Scenario:
    """Return the prompt's directive scenario, else the default scenario, else plain success."""
    directive = parse_directive(prompt)
    if directive is not None:
        return Scenario.from_mapping(directive)
    return Scenario.from_mapping(default or {})


def validate_distribution(dist: Mapping[str, Any]) -> None:
    """Check a ``task_seconds_dist`` mapping early, so a bad benchmark config fails at start, not mid-run."""
    kind = dist.get("kind")
    if kind == "lognormal":
        if float(dist.get("median", 0)) <= 0 or float(dist.get("sigma", -1)) < 0:
            raise ValueError("lognormal task_seconds_dist needs median > 0 and sigma >= 0")
    elif kind == "uniform":
        if float(dist.get("min", -1)) < 0 or float(dist.get("max", -1)) < float(dist.get("min", 0)):
            raise ValueError("uniform task_seconds_dist needs 0 <= min <= max")
    else:
        raise ValueError(f"task_seconds_dist kind must be 'lognormal' or 'uniform', got {kind!r}")


def sample_duration(dist: Mapping[str, Any], rng: random.Random) -> float:
    """Draw one task duration (emulated seconds) from ``dist``, clamped to its optional ``min``/``max``."""
    if dist["kind"] == "uniform":
        return rng.uniform(float(dist["min"]), float(dist["max"]))
    value = float(dist["median"]) * math.exp(float(dist.get("sigma", 0.5)) * rng.gauss(0.0, 1.0))
    low = float(dist.get("min", 0.0))
    high = float(dist.get("max", math.inf))
    return min(max(value, low), high)
