"""Settings of the emulator, and the constants it takes from kie.ai's documents (the models' own fields: ``models``)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from seedream_emulator.scenario import Scenario, validate_distribution

#: Input images: "image/jpeg, image/png, image/webp; max 10.0MB" (``input.image_urls`` on every Seedream edit page:
#: 4.5 edit, 5-lite image-to-image, 4.0 edit).
INPUT_MIME_TYPES: tuple[str, ...] = ("image/jpeg", "image/png", "image/webp")
INPUT_MAX_BYTES = 10 * 1024 * 1024

MB = 1024 * 1024

#: Keys a recordInfo answer may carry its message under: live answers and the OpenAPI schema use ``msg``; the Get
#: Task Details prose and examples use ``message``.
RECORD_INFO_MESSAGE_KEYS: tuple[str, ...] = ("msg", "message")


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything a test or benchmark may tune. Durations are *emulated* seconds, multiplied by ``time_scale``.

    :param api_keys: accepted Bearer keys; empty means any non-empty key is accepted.
    :param task_seconds: fixed task duration when neither ``task_seconds_dist`` nor a ``seconds=`` directive applies.
    :param task_seconds_dist: ``{"kind": "lognormal", "median", "sigma", "min", "max"}`` or
        ``{"kind": "uniform", "min", "max"}``; drawn from a RNG seeded with ``seed``.
    :param time_scale: wall seconds per emulated second (0.1 runs everything ten times faster).
    :param seed: seed of the duration RNG (``None``: random).
    :param default_scenario: directive keys applied to prompts that carry no ``[emulator: ...]`` directive.
    :param null_window_seconds: how long a new task answers ``recordInfo is null`` (default 0: no window, since
        live clients that query recordInfo at once work in production); a ``null_window=`` directive overrides it
        per task.
    :param record_info_message_key: the key recordInfo answers carry their message under: ``"msg"`` (live answers
        and kie's OpenAPI schema) or ``"message"`` (the older Get Task Details prose), to test a client reads both.
    :param rate_limits: enforce kie's documented request limits (429 with Retry-After).
    :param create_limit: createTask requests per ``create_window_seconds`` per API key (kie: 20 per 10 s).
    :param record_info_limit: recordInfo requests per ``record_info_window_seconds`` per key (kie: 10 per s).
    :param initial_credits: account balance at start and after a reset.
    :param credits_per_task: price of one result image, charged at createTask for every image the task will make
        (one, or ``max_images`` for Seedream 4.0), for whatever model; ``None`` (default): each model's own price
        (``models``: 6.5 credits for 4.5, 5.5 for 5-lite, 6.5 assumed for 4.0 and 3.0).
    :param result_ttl: lifetime of a result URL after completion (kie: "typically expire after 24 hours").
    :param download_url_ttl: lifetime of a link minted by download-url (kie: 20 minutes).
    :param upload_ttl: lifetime of an uploaded file (kie File Upload API: 3 days).
    :param upload_max_bytes: largest accepted upload (Seedream inputs: 10 MB).
    :param upload_images_only: reject uploads that are not JPEG/PNG/WebP (the only types Seedream accepts).
    :param full_size: serve results at their true size (1K to 4K class) instead of a quarter of it.
    :param callback_timeout: seconds a callback POST may take (not scaled: it is a network timeout).
    :param webhook_hmac_key: when set, callbacks carry kie's ``X-Webhook-Timestamp``/``X-Webhook-Signature``.
    :param public_url: base URL written into result/upload/download links (default: the server's own URL).
    :param image_cache_bytes: memory budget for rendered images.
    :param prerender_results: render a task's result images (in the background) when recordInfo first reports its
        success, rather than when they are downloaded: kie's files exist by the time it says success, and fetching
        one is a transfer, not a render. Benchmarks turn it on, so that the emulator's drawing (about 0.1 s of CPU
        per picture) does not land on the client's download time.
    :param verbose: log every request to stderr.
    """

    api_keys: tuple[str, ...] = ()
    task_seconds: float = 3.0
    task_seconds_dist: Mapping[str, Any] | None = None
    time_scale: float = 1.0
    seed: int | None = None
    default_scenario: Mapping[str, Any] | None = None
    null_window_seconds: float = 0.0
    record_info_message_key: str = "msg"
    rate_limits: bool = True
    create_limit: int = 20
    create_window_seconds: float = 10.0
    record_info_limit: int = 10
    record_info_window_seconds: float = 1.0
    initial_credits: float = 1000.0
    credits_per_task: float | None = None
    result_ttl: float = 24 * 3600.0
    download_url_ttl: float = 20 * 60.0
    upload_ttl: float = 3 * 24 * 3600.0
    upload_max_bytes: int = INPUT_MAX_BYTES
    upload_images_only: bool = True
    full_size: bool = False
    callback_timeout: float = 5.0
    webhook_hmac_key: str | None = None
    public_url: str | None = None
    image_cache_bytes: int = 512 * MB
    prerender_results: bool = False
    verbose: bool = False

    def __post_init__(self) -> None:
        keys = (self.api_keys,) if isinstance(self.api_keys, str) else tuple(self.api_keys or ())
        object.__setattr__(self, "api_keys", tuple(str(key) for key in keys if key))
        for name in (
            "task_seconds",
            "null_window_seconds",
            "result_ttl",
            "download_url_ttl",
            "upload_ttl",
            "initial_credits",
            "callback_timeout",
        ):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"EmulatorConfig.{name} must be a finite number >= 0, got {value!r}")
            object.__setattr__(self, name, value)
        if self.credits_per_task is not None:
            price = float(self.credits_per_task)
            if not math.isfinite(price) or price < 0:
                raise ValueError(f"EmulatorConfig.credits_per_task must be None or a finite number >= 0, got {price!r}")
            object.__setattr__(self, "credits_per_task", price)
        for name in ("time_scale", "create_window_seconds", "record_info_window_seconds"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"EmulatorConfig.{name} must be a finite number > 0, got {value!r}")
            object.__setattr__(self, name, value)
        if self.record_info_message_key not in RECORD_INFO_MESSAGE_KEYS:
            raise ValueError(
                f"EmulatorConfig.record_info_message_key must be one of {', '.join(RECORD_INFO_MESSAGE_KEYS)}, "
                f"got {self.record_info_message_key!r}"
            )
        if self.task_seconds_dist is not None:
            validate_distribution(self.task_seconds_dist)
        if self.default_scenario is not None:
            Scenario.from_mapping(self.default_scenario)

    def rate_limit(self, endpoint: str) -> tuple[int, float] | None:
        """Return kie's limit on ``endpoint`` as (requests, window in emulated seconds), or None if it has none."""
        if endpoint == "createTask":
            return self.create_limit, self.create_window_seconds
        if endpoint == "recordInfo":
            return self.record_info_limit, self.record_info_window_seconds
        return None

    def scaled(self, seconds: float) -> float:
        """Convert emulated seconds to wall seconds."""
        return seconds * self.time_scale

    def updated(self, changes: Mapping[str, Any]) -> EmulatorConfig:
        """Return a copy with ``changes`` applied; unknown field names raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}; known: {', '.join(sorted(names))}")
        return dataclasses.replace(self, **dict(changes))

    def public_dict(self) -> dict[str, Any]:
        """Return the settings as JSON data, with secrets replaced by counts (keys are never echoed)."""
        data = dataclasses.asdict(self)
        data["api_keys"] = len(self.api_keys)
        data["webhook_hmac_key"] = self.webhook_hmac_key is not None
        for name in ("task_seconds_dist", "default_scenario"):
            if data[name] is not None:
                data[name] = dict(data[name])
        return data
