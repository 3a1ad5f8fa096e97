"""In-memory state of the emulator: tasks and their lifecycle, credits, uploads, links, limits, faults, counters.

One lock guards everything; every operation under it is short (no I/O, no image rendering), so a thousand
concurrent clients contend only briefly. A task's state is a pure function of its creation time, its duration and
the clock (``state_at``), so it progresses with wall-clock time whether or not anyone polls. Side effects of
reaching a terminal state (refunding a failed task, sending the callback) happen once, in ``_settle_locked``,
called both by a background ticker and by every request that reads tasks or credits, so readers never see a
terminal task whose side effects are still pending.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import json
import random
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from seedream_emulator import images
from seedream_emulator.callbacks import CallbackJob, is_loopback_host, post_callback
from seedream_emulator.config import INPUT_MAX_BYTES, INPUT_MIME_TYPES, EmulatorConfig
from seedream_emulator.faults import ENDPOINTS, validate_fault
from seedream_emulator.models import MODELS, Output
from seedream_emulator.scenario import SLOW_FACTOR, Scenario, sample_duration

#: Share of a task's duration spent in each non-terminal state (the rest is ``generating``).
WAITING_SHARE = 0.15
QUEUING_SHARE = 0.15
TERMINAL_STATES = ("success", "fail")
#: Outcomes whose task never reaches a terminal state.
ENDLESS_OUTCOMES = ("never", "unknown_state")


@dataclass(frozen=True)
class ImageSpec:
    """Everything needed to render (or find in the cache) one image: seed, pixel size, format."""

    seed: int
    width: int
    height: int
    fmt: str
    downscale: int = 1

    @property
    def mime_type(self) -> str:
        return images.MIME_TYPES[self.fmt]


@dataclass(frozen=True)
class Lookup:
    """Result of resolving a served URL: an image to render, stored bytes, or an HTTP error status."""

    status: int
    spec: ImageSpec | None = None
    data: bytes | None = None
    mime_type: str | None = None
    reason: str = ""


@dataclass
class Task:
    """One emulated task. Times are wall-clock seconds (``time.time()``), durations wall seconds.

    ``image`` describes the first result image; a task of ``image_count`` images serves ``0.<ext>``, ``1.<ext>``,
    ... of the same size and format, each drawn from its own seed (``images.variant_seed``).
    """

    task_id: str
    body: dict[str, Any]
    param: str
    scenario: Scenario
    outcome: str
    fail_code: str
    fail_msg: str
    created: float
    duration: float
    end: float | None
    image: ImageSpec
    credits: float
    callback_url: str | None
    polls: int = 0
    settled: bool = False
    image_count: int = 1

    @property
    def result_names(self) -> tuple[str, ...]:
        """The file names of the result images, in ``resultUrls`` order."""
        extension = images.EXTENSIONS[self.image.fmt]
        return tuple(f"{index}.{extension}" for index in range(self.image_count))

    def image_named(self, name: str) -> ImageSpec | None:
        """Return the spec of the result image called ``name``, or ``None`` if the task has none of that name."""
        names = self.result_names
        if name not in names:
            return None
        index = names.index(name)
        return dataclasses.replace(self.image, seed=images.variant_seed(self.image.seed, index))


@dataclass
class Upload:
    """A file stored by the File Upload API emulation."""

    data: bytes
    mime_type: str
    uploaded: float
    expires: float


@dataclass
class _DownloadLink:
    task_id: str
    name: str
    expires: float


class SlidingWindow:
    """Per-key sliding-window limiter; rejected requests are not recorded (kie rejects, it does not queue)."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}

    def acquire(self, key: str, now: float, limit: int, window: float) -> float | None:
        """Admit one request, or return the seconds until the window frees a slot."""
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= limit:
            return hits[0] + window - now
        hits.append(now)
        return None


def state_at(task: Task, now: float) -> str:
    """Return the kie state of ``task`` at ``now``: waiting -> queuing -> generating -> success|fail."""
    if task.outcome == "unknown_state":
        return "paused"
    if task.end is not None and now >= task.end:
        return "fail" if task.outcome == "fail" else "success"
    if task.scenario.polls:
        progress = task.polls / task.scenario.polls
    else:
        progress = (now - task.created) / task.duration if task.duration > 0 else 1.0
    if progress < WAITING_SHARE:
        return "waiting"
    if progress < WAITING_SHARE + QUEUING_SHARE:
        return "queuing"
    return "generating"


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


#: kie writes its JSON strings (param, resultJson) without spaces (live answers).
_COMPACT = (",", ":")


def _param(body: Mapping[str, Any]) -> str:
    """recordInfo's ``param``: the createTask body as a JSON string whose ``input`` is itself a JSON string.

    Live answers: ``{"input": "<input as JSON>", "model": ...}`` (double-encoded), compact. Other top-level fields
    of the body (``callBackUrl``) follow, since kie documents ``param`` as the whole request.
    """
    outer: dict[str, Any] = {"input": json.dumps(body["input"], ensure_ascii=False, separators=_COMPACT)}
    outer["model"] = body.get("model")
    outer.update((key, value) for key, value in body.items() if key not in ("input", "model"))
    return json.dumps(outer, ensure_ascii=False, separators=_COMPACT)


class EmulatorState:
    """All mutable emulator state behind one lock; the HTTP layer calls these methods and nothing else.

    :param config: initial settings (``update_config`` swaps them at run time).
    :param clock: wall clock in seconds; injectable so the state machine can be driven without sleeping.
    """

    def __init__(self, config: EmulatorConfig | None = None, clock: Callable[[], float] = time.time) -> None:
        self._config = config or EmulatorConfig()
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._rng = random.Random(self._config.seed)
        self._base_url = "http://127.0.0.1"
        self._own_netlocs: set[str] = set()
        self._own_port: int | None = None
        self._generation = 0
        self._ticker: threading.Thread | None = None
        self._stopping = False
        self.images = images.ImageCache(self._config.image_cache_bytes)
        self._clear_locked()

    # ------------------------------------------------------------------ setup and control

    def _clear_locked(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._created_ids: list[str] = []
        self._due: list[tuple[float, int, str]] = []
        self._seq = 0
        self._balance = self._config.initial_credits
        self._uploads: dict[str, Upload] = {}
        self._links: dict[str, _DownloadLink] = {}
        self._faults: dict[str, deque[dict[str, Any]]] = {name: deque() for name in ENDPOINTS}
        self._limiters: dict[str, SlidingWindow] = {}  # one per rate-limited endpoint, made on first use
        self._requests: Counter[str] = Counter()
        self._responses: dict[str, Counter[int]] = {}
        self._per_second: dict[str, Counter[int]] = {}
        self._rate_limited: Counter[str] = Counter()
        self._faults_served: dict[str, Counter[str]] = {}
        self._key_hashes: set[str] = set()
        self._auth_failures = 0
        self._callbacks: list[dict[str, Any]] = []

    @property
    def config(self) -> EmulatorConfig:
        """The settings in force (immutable; replace them with ``update_config``)."""
        return self._config

    def update_config(self, changes: Mapping[str, Any]) -> EmulatorConfig:
        """Apply config changes at run time; tasks already created keep their durations."""
        with self._lock:
            self._config = self._config.updated(changes)
            if "seed" in changes:
                self._rng = random.Random(self._config.seed)
            return self._config

    def reset(self) -> None:
        """Forget tasks, uploads, links, counters, faults and limits; restore the initial balance."""
        with self._lock:
            self._generation += 1
            self._clear_locked()
            self._rng = random.Random(self._config.seed)
        self.images.clear()

    def set_server_address(self, base_url: str, host: str, port: int) -> None:
        """Tell the state where it is served, so it can mint URLs and recognise links to itself."""
        with self._lock:
            self._base_url = (self._config.public_url or base_url).rstrip("/")
            self._own_port = port
            self._own_netlocs = {urlsplit(self._base_url).netloc.lower(), f"{host}:{port}".lower()}

    @property
    def base_url(self) -> str:
        return self._base_url

    # ------------------------------------------------------------------ ticker (callbacks without polling)

    def start_ticker(self) -> None:
        """Settle due tasks in the background so callbacks fire even when nobody polls."""
        with self._lock:
            if self._ticker is not None:
                return
            self._stopping = False
            self._ticker = threading.Thread(target=self._tick_forever, name="seedream-emulator-ticker", daemon=True)
        self._ticker.start()

    def stop_ticker(self) -> None:
        """Stop the background ticker and wait for it."""
        with self._wake:
            self._stopping = True
            ticker, self._ticker = self._ticker, None
            self._wake.notify_all()
        if ticker is not None:
            ticker.join(timeout=5)

    def _tick_forever(self) -> None:
        while True:
            with self._wake:
                if self._stopping:
                    return
                now = self._clock()
                jobs = self._settle_locked(now)
                if not jobs:
                    wait = self._due[0][0] - now if self._due else 1.0
                    self._wake.wait(min(max(wait, 0.005), 1.0))
                    continue
            self._dispatch(jobs)

    def _dispatch(self, jobs: Iterable[CallbackJob]) -> None:
        for job in jobs:
            threading.Thread(target=self._deliver, args=(job,), name="seedream-emulator-callback", daemon=True).start()

    def _deliver(self, job: CallbackJob) -> None:
        config = self._config
        record = post_callback(job, config.callback_timeout, config.webhook_hmac_key)
        record["at"] = self._clock()
        with self._lock:
            if job.generation == self._generation:
                self._callbacks.append(record)

    # ------------------------------------------------------------------ settlement

    def _settle_locked(self, now: float) -> list[CallbackJob]:
        """Apply the one-time effects of tasks that reached their end: refund failures, queue callbacks."""
        jobs: list[CallbackJob] = []
        while self._due and self._due[0][0] <= now:
            _, _, task_id = heapq.heappop(self._due)
            task = self._tasks.get(task_id)
            if task is None or task.settled:
                continue
            task.settled = True
            if task.outcome == "fail":
                self._balance = round(self._balance + task.credits, 6)
                task.credits = 0.0
            if task.callback_url:
                jobs.append(self._callback_job(task))
        return jobs

    def _callback_job(self, task: Task) -> CallbackJob:
        assert task.end is not None
        data = self._record_data(task, task.end)
        # The newest callback schema carries two fields recordInfo answers do not have (market callback schema).
        data["updateTime"] = _ms(self._update_time(task, data["state"]))
        data["creditsConsumed"] = 0 if data["state"] == "fail" else task.credits
        if data["state"] == "success":
            payload = {"code": 200, "msg": "Playground task completed successfully.", "data": data}
        else:
            payload = {"code": 501, "msg": "Playground task failed.", "data": data}
        return CallbackJob(
            url=task.callback_url or "", payload=payload, task_id=task.task_id, generation=self._generation
        )

    def _schedule_locked(self, task: Task) -> None:
        assert task.end is not None
        self._seq += 1
        heapq.heappush(self._due, (task.end, self._seq, task.task_id))
        self._wake.notify_all()

    # ------------------------------------------------------------------ counters, auth, limits, faults

    def count_request(self, endpoint: str) -> None:
        """Count one received request (whatever its fate) in the totals and the per-second histogram."""
        second = int(self._clock())
        with self._lock:
            self._requests[endpoint] += 1
            self._per_second.setdefault(endpoint, Counter())[second] += 1

    def count_response(self, endpoint: str, code: int) -> None:
        """Count the code an endpoint answered with (body code for 200 envelopes, else HTTP status)."""
        with self._lock:
            self._responses.setdefault(endpoint, Counter())[code] += 1
            if code == 429:
                self._rate_limited[endpoint] += 1

    def check_key(self, authorization: str | None) -> str | None:
        """Return a hash identifying the caller's key if it is accepted, else ``None``.

        Keys are only ever kept as hashes: stats report how many distinct keys were seen, never the keys.
        """
        scheme, _, key = (authorization or "").strip().partition(" ")
        key = key.strip()
        with self._lock:
            if scheme.lower() != "bearer" or not key:
                self._auth_failures += 1
                return None
            digest = hashlib.sha256(key.encode()).hexdigest()
            self._key_hashes.add(digest)
            if self._config.api_keys and key not in self._config.api_keys:
                self._auth_failures += 1
                return None
            return digest

    def acquire_rate(self, endpoint: str, key_hash: str) -> float | None:
        """Admit a request under kie's documented limits, or return wall seconds until a slot frees."""
        config = self._config
        rule = config.rate_limit(endpoint)
        if not config.rate_limits or rule is None:
            return None
        limit, window = rule
        with self._lock:
            limiter = self._limiters.setdefault(endpoint, SlidingWindow())
            return limiter.acquire(key_hash, self._clock(), limit, config.scaled(window))

    def add_faults(self, endpoint: str, faults: Iterable[Mapping[str, Any]]) -> int:
        """Queue faults for an endpoint (validated first: all or none); return how many are pending there."""
        specs = [validate_fault(endpoint, fault) for fault in faults]
        with self._lock:
            self._faults[endpoint].extend(specs)
            return len(self._faults[endpoint])

    def take_fault(self, endpoint: str) -> dict[str, Any] | None:
        """Pop the next queued fault for ``endpoint``, recording that it was served."""
        with self._lock:
            queue = self._faults.get(endpoint)
            if not queue:
                return None
            fault = queue.popleft()
            self._faults_served.setdefault(endpoint, Counter())[fault["kind"]] += 1
            return fault

    def pending_faults(self) -> dict[str, int]:
        """How many faults are still queued, per endpoint."""
        with self._lock:
            return {name: len(queue) for name, queue in self._faults.items() if queue}

    # ------------------------------------------------------------------ tasks

    def create_task(self, body: dict[str, Any], scenario: Scenario) -> str | None:
        """Create a task from a validated body and charge for it; ``None`` when the credits do not cover it.

        The price is per result image (kie's pricing is "per image"), so a Seedream 4.0 task asking for
        ``max_images`` images is charged for that many.
        """
        now = self._clock()
        spec = MODELS[body["model"]]
        output = spec.output(body["input"])
        with self._lock:
            config = self._config
            per_image = spec.credits_per_image if config.credits_per_task is None else config.credits_per_task
            price = round(per_image * output.count, 6)
            if self._balance + 1e-9 < price:
                return None
            self._balance = round(self._balance - price, 6)
            task = self._new_task_locked(body, output, scenario, now, config, price)
            self._tasks[task.task_id] = task
            self._created_ids.append(task.task_id)
            if task.end is not None:
                self._schedule_locked(task)
            return task.task_id

    def _new_task_locked(
        self,
        body: dict[str, Any],
        output: Output,
        scenario: Scenario,
        now: float,
        config: EmulatorConfig,
        price: float,
    ) -> Task:
        data = body["input"]
        outcome, fail_code, fail_msg = scenario.outcome, scenario.fail_code, scenario.fail_msg
        problem = self._inputs_problem_locked(data.get("image_urls") or (), now)
        if problem is not None and outcome not in ENDLESS_OUTCOMES:
            outcome, fail_code, fail_msg = "fail", "422", problem
        duration = config.scaled(self._emulated_duration(scenario, config))
        endless = outcome in ENDLESS_OUTCOMES or scenario.polls is not None
        width, height = images.result_size(output.aspect_ratio, output.long_side, config.full_size)
        return Task(
            task_id=uuid.uuid4().hex,
            body=body,
            param=_param(body),
            scenario=scenario,
            outcome=outcome,
            fail_code=fail_code,
            fail_msg=fail_msg,
            created=now,
            duration=duration,
            end=None if endless else now + duration,
            image=ImageSpec(
                images.seed_from_text(data["prompt"]),
                width,
                height,
                scenario.format,
                downscale=1 if config.full_size else images.DOWNSCALE,
            ),
            credits=price,
            callback_url=body.get("callBackUrl"),
            image_count=output.count,
        )

    def _emulated_duration(self, scenario: Scenario, config: EmulatorConfig) -> float:
        if scenario.seconds is not None:
            seconds = scenario.seconds
        elif config.task_seconds_dist is not None:
            seconds = sample_duration(config.task_seconds_dist, self._rng)
        else:
            seconds = config.task_seconds
        return seconds * SLOW_FACTOR if scenario.outcome == "slow" else seconds

    def record_info(self, task_id: str) -> dict[str, Any] | None:
        """Return recordInfo ``data`` for a task, or ``None`` if unknown or still inside the null window."""
        now = self._clock()
        with self._lock:
            jobs = self._settle_locked(now)
            task = self._tasks.get(task_id)
            visible = task is not None and now - task.created >= self._null_window(task)
            data = None
            if task is not None and visible:
                task.polls += 1
                if (
                    task.scenario.polls
                    and task.polls >= task.scenario.polls
                    and task.end is None
                    and task.outcome not in ENDLESS_OUTCOMES
                ):
                    task.end = now
                    self._schedule_locked(task)
                    jobs += self._settle_locked(now)
                data = self._record_data(task, now)
        self._dispatch(jobs)
        return data

    def _null_window(self, task: Task) -> float:
        """Wall seconds after creation during which ``task`` answers ``recordInfo is null``."""
        window = task.scenario.null_window
        return self._config.scaled(self._config.null_window_seconds if window is None else window)

    def _record_data(self, task: Task, now: float) -> dict[str, Any]:
        """Build recordInfo's ``data`` (also the base of a callback's), shaped like live recordInfo answers.

        Live answers (nano-banana-2, March 2026): failCode/failMsg ``null`` unless failed, costTime ``null`` until
        done and then in seconds, no updateTime and no creditsConsumed.
        """
        state = state_at(task, now)
        done = state in TERMINAL_STATES and task.end is not None
        return {
            "taskId": task.task_id,
            "model": task.body.get("model"),
            "state": state,
            "param": task.param,
            "resultJson": self._result_json(task) if state == "success" else "",
            "failCode": task.fail_code if state == "fail" else None,
            "failMsg": task.fail_msg if state == "fail" else None,
            # Seconds (live answers: 274 for 273.9 s; a real seedream/4.5-edit callback: 51); the older Get Task
            # Details page says milliseconds.
            "costTime": round(task.end - task.created) if done and task.end is not None else None,
            "completeTime": _ms(task.end) if done and task.end is not None else None,
            "createTime": _ms(task.created),
        }

    def _update_time(self, task: Task, state: str) -> float:
        if state in TERMINAL_STATES and task.end is not None:
            return task.end
        if state == "queuing" and not task.scenario.polls:
            return task.created + WAITING_SHARE * task.duration
        if state == "generating" and not task.scenario.polls:
            return task.created + (WAITING_SHARE + QUEUING_SHARE) * task.duration
        return task.created

    def _result_urls(self, task: Task) -> list[str]:
        if task.outcome == "empty":
            return []
        return [f"{self._base_url}/results/{task.task_id}/{name}" for name in task.result_names]

    def _result_json(self, task: Task) -> str:
        text = json.dumps({"resultUrls": self._result_urls(task)}, separators=_COMPACT)
        # A resultJson that is cut off mid-string: valid for nobody's JSON parser.
        return text[: len(text) - 3] if task.outcome == "bad_result_json" else text

    # ------------------------------------------------------------------ credits

    def balance(self) -> float:
        """Return the account balance after settling due tasks (failed tasks are refunded)."""
        now = self._clock()
        with self._lock:
            jobs = self._settle_locked(now)
            balance = self._balance
        self._dispatch(jobs)
        return balance

    def set_balance(self, balance: float) -> None:
        """Set the account balance (e.g. below the task price, to provoke code 402)."""
        with self._lock:
            self._balance = float(balance)

    # ------------------------------------------------------------------ served files

    def is_own_url(self, url: str) -> bool:
        """Tell whether ``url`` points at this emulator (loopback host on our port, or our public URL)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        if parts.netloc.lower() in self._own_netlocs:
            return True
        return is_loopback_host(parts.hostname) and port is not None and port == self._own_port

    def result_specs(self, task_id: str) -> list[ImageSpec]:
        """Return the specs of a succeeded task's result images, or nothing (unknown, not succeeded)."""
        now = self._clock()
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or state_at(task, now) != "success" or task.outcome == "empty":
                return []
            specs = [task.image_named(name) for name in task.result_names]
        return [spec for spec in specs if spec is not None]

    def result_asset(self, task_id: str, name: str) -> Lookup:
        """Resolve ``/results/<taskId>/<name>``: 404 unknown/not finished, 403 expired, else the image."""
        now = self._clock()
        with self._lock:
            return self._result_asset_locked(task_id, name, now)

    def _result_asset_locked(self, task_id: str, name: str, now: float) -> Lookup:
        task = self._tasks.get(task_id)
        spec = None if task is None else task.image_named(name)
        if task is None or spec is None or state_at(task, now) != "success" or task.outcome == "empty":
            return Lookup(404, reason="no such result")
        assert task.end is not None
        ttl = task.scenario.expire_after if task.scenario.expire_after is not None else self._config.result_ttl
        if now >= task.end + self._config.scaled(ttl):
            return Lookup(403, reason="result URL expired")
        return Lookup(200, spec=spec)

    def mint_download_url(self, url: str) -> str | None:
        """Return a fresh temporary link for a result URL this emulator produced (expired ones too)."""
        try:
            path = urlsplit(url).path
        except ValueError:
            return None
        if not self.is_own_url(url) or not path.startswith("/results/"):
            return None
        task_id, _, name = path[len("/results/") :].partition("/")
        now = self._clock()
        with self._lock:
            task = self._tasks.get(task_id)
            if (
                task is None
                or task.image_named(name) is None
                or state_at(task, now) != "success"
                or task.outcome == "empty"
            ):
                return None
            token = secrets.token_hex(16)
            expires = now + self._config.scaled(self._config.download_url_ttl)
            self._links[token] = _DownloadLink(task_id=task_id, name=name, expires=expires)
            return f"{self._base_url}/dl/{token}/{name}"

    def download_asset(self, token: str, name: str) -> Lookup:
        """Resolve ``/dl/<token>/<name>``: 404 unknown, 403 expired, else the task's image."""
        now = self._clock()
        with self._lock:
            link = self._links.get(token)
            if link is None or link.name != name:
                return Lookup(404, reason="no such download link")
            if now >= link.expires:
                return Lookup(403, reason="download link expired")
            task = self._tasks.get(link.task_id)
            spec = None if task is None else task.image_named(link.name)
            if spec is None:
                return Lookup(404, reason="no such result")
            return Lookup(200, spec=spec)

    def store_upload(self, upload_path: str, file_name: str, data: bytes, mime_type: str) -> dict[str, Any]:
        """Store an uploaded file (same path overwrites, as kie documents) and return the response ``data``."""
        now = self._clock()
        file_path = f"{upload_path}/{file_name}"
        with self._lock:
            expires = now + self._config.scaled(self._config.upload_ttl)
            self._uploads[file_path] = Upload(data=data, mime_type=mime_type, uploaded=now, expires=expires)
            base = self._base_url
        return {
            "fileName": file_name,
            "filePath": file_path,
            "downloadUrl": f"{base}/files/{quote(file_path)}",
            "fileSize": len(data),
            "mimeType": mime_type,
            "uploadedAt": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z",
        }

    def get_upload(self, file_path: str) -> Lookup:
        """Resolve ``/files/<filePath>``: 404 unknown or past its retention, else the stored bytes."""
        now = self._clock()
        with self._lock:
            upload = self._uploads.get(file_path)
            if upload is None or now >= upload.expires:
                return Lookup(404, reason="no such file")
            return Lookup(200, data=upload.data, mime_type=upload.mime_type)

    def _inputs_problem_locked(self, urls: Iterable[str], now: float) -> str | None:
        """Return why kie could not fetch one of the inputs, for inputs served by this emulator.

        Foreign hosts are assumed fetchable: the emulator never goes to the network.
        """
        for url in urls:
            if not self.is_own_url(url):
                continue
            reason = self._own_input_problem_locked(unquote(urlsplit(url).path), now)
            if reason is not None:
                return f"Failed to download image from {url}: {reason}"
        return None

    def _own_input_problem_locked(self, path: str, now: float) -> str | None:
        if path.startswith("/samples/"):
            return None if images.find_sample(path[len("/samples/") :]) else "HTTP 404 Not Found"
        if path.startswith("/files/"):
            upload = self._uploads.get(path[len("/files/") :])
            if upload is None or now >= upload.expires:
                return "HTTP 404 Not Found"
            if upload.mime_type not in INPUT_MIME_TYPES:
                return f"unsupported image type {upload.mime_type}"
            if len(upload.data) > INPUT_MAX_BYTES:
                return "image is larger than 10MB"
            return None
        if path.startswith("/results/"):
            task_id, _, name = path[len("/results/") :].partition("/")
            lookup = self._result_asset_locked(task_id, name, now)
            return None if lookup.status == 200 else f"HTTP {lookup.status}"
        if path.startswith("/dl/"):
            token, _, name = path[len("/dl/") :].partition("/")
            link = self._links.get(token)
            return None if link is not None and link.name == name and now < link.expires else "HTTP 403 Forbidden"
        return "HTTP 404 Not Found"

    # ------------------------------------------------------------------ stats

    def stats(self) -> dict[str, Any]:
        """Return a JSON-ready snapshot of counters and tasks (no API key is ever included)."""
        now = self._clock()
        with self._lock:
            jobs = self._settle_locked(now)
            snapshot = {
                "requests": {name: self._requests.get(name, 0) for name in ENDPOINTS},
                "responses": {name: dict(codes) for name, codes in self._responses.items()},
                "tasks": {task_id: self._task_summary(task, now) for task_id, task in self._tasks.items()},
                "created_task_ids": list(self._created_ids),
                "per_second": {name: dict(sorted(c.items())) for name, c in self._per_second.items()},
                "rate_limited": {name: self._rate_limited.get(name, 0) for name in ENDPOINTS},
                "faults_served": {name: dict(kinds) for name, kinds in self._faults_served.items()},
                "faults_pending": {name: len(queue) for name, queue in self._faults.items() if queue},
                "auth_keys_seen_count": len(self._key_hashes),
                "auth_failures": self._auth_failures,
                "callbacks": [dict(record) for record in self._callbacks],
                "credits": self._balance,
                "uploads": len(self._uploads),
                "download_links": len(self._links),
                "config": self._config.public_dict(),
            }
        self._dispatch(jobs)
        return snapshot

    def _task_summary(self, task: Task, now: float) -> dict[str, Any]:
        state = state_at(task, now)
        return {
            "state": state,
            "model": task.body.get("model"),
            "images": task.image_count,
            "outcome": task.outcome,
            "created": task.created,
            "completed": task.end if state in TERMINAL_STATES else None,
            "seconds": task.duration,
            "polls": task.polls,
            "input": task.body.get("input"),
            "callBackUrl": task.callback_url,
            "creditsConsumed": 0 if state == "fail" else task.credits,
        }

    def task_ids(self) -> list[str]:
        """Return the ids of all created tasks, oldest first (assert "no duplicate createTask" with it)."""
        with self._lock:
            return list(self._created_ids)
