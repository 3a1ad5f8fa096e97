"""Helpers shared by the benchmarks: the emulator in its own process, time scaling, figures, the closing JSON line.

Not a test utility: benchmarks are run by hand (see ``benchmarks/README.md``) and print their figures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

API_KEY = "benchmark-key"
#: The run-time distribution of a Seedream 4.5 edit used by default (emulated seconds): median 20 s, most between
#: 9 and 45 s, never under 5 s or over 2 minutes. kie publishes no distribution; one real callback reported 51 s.
DEFAULT_DIST = {"kind": "lognormal", "median": 20, "sigma": 0.5, "min": 5, "max": 120}
CREATE_PATH = "/api/v1/jobs/createTask"
RECORD_INFO_PATH = "/api/v1/jobs/recordInfo"


class Emulator:
    """The project's kie.ai emulator, started with its CLI in a separate process (its CPU is not ours).

    :param time_scale: wall seconds per emulated second.
    :param extra_args: more CLI arguments.
    """

    def __init__(self, time_scale: float, extra_args: Sequence[str] = ()) -> None:
        self.time_scale = time_scale
        self._process = subprocess.Popen(
            [sys.executable, "-m", "seedream_emulator", "--port", "0", "--time-scale",
             str(time_scale), "--api-key", API_KEY, "--credits", "1e12", *extra_args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"the emulator did not start: {line!r}")
        self.url = line.split()[-1]
        self.pid = self._process.pid
        self._control = httpx.Client(base_url=self.url, timeout=60)

    def configure(self, **changes: Any) -> dict[str, Any]:
        reply = self._control.post("/_emulator/config", json=changes)
        reply.raise_for_status()
        return reply.json()["config"]

    def reset(self) -> None:
        self._control.post("/_emulator/reset").raise_for_status()

    def stats(self) -> dict[str, Any]:
        reply = self._control.get("/_emulator/stats")
        reply.raise_for_status()
        return reply.json()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._control.close()
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def edit_body(base_url: str, prompt: str) -> dict[str, Any]:
    """Return a valid createTask body for ``seedream/4.5-edit`` whose input image the emulator serves."""
    return {"model": "seedream/4.5-edit", "input": {"prompt": prompt,
                                                     "image_urls": [f"{base_url}/samples/sneaker-1x1.png"],
                                                     "aspect_ratio": "1:1", "quality": "basic"}}


def use_connection(url: str, polls_per_second: float | None = None, typical_run_seconds: float | None = None) -> None:
    """Point the ``seedream_default`` Airflow connection at the emulator (env var: how Airflow 3 resolves it here)."""
    conn: dict[str, Any] = {"conn_type": "seedream", "password": API_KEY, "host": url}
    extra = {"polls_per_second": polls_per_second, "typical_run_seconds": typical_run_seconds}
    if any(value is not None for value in extra.values()):
        conn["extra"] = {key: value for key, value in extra.items() if value is not None}
    os.environ["AIRFLOW_CONN_SEEDREAM_DEFAULT"] = json.dumps(conn)


def scale_poll_budget(time_scale: float) -> None:
    """Compress the poll budget along with the emulator's clock.

    The emulator counts kie's "10 recordInfo per second" per *emulated* second, i.e. per ``time_scale`` wall seconds,
    so a budget of 8 per emulated second is 8 / ``time_scale`` per wall second. The connection form caps
    ``polls_per_second`` at kie's 10, so the budget read from the connection is divided here, in this benchmark
    process only; everything else (hook, trigger, shared client, budget) runs unchanged.
    """
    if time_scale == 1.0:
        return
    from airflow_provider_seedream import connection

    original = connection.settings_from_connection
    if getattr(original, "_benchmark_scaled", False):
        return

    def scaled(**kwargs: Any) -> connection.ConnectionSettings:
        settings = original(**kwargs)
        return dataclasses.replace(settings, polls_per_second=settings.polls_per_second / time_scale)

    scaled._benchmark_scaled = True  # type: ignore[attr-defined]
    connection.settings_from_connection = scaled  # type: ignore[assignment]


def percentile(values: Sequence[float], q: float) -> float | None:
    """Return the ``q``-quantile (0..1) of ``values`` by linear interpolation, or ``None`` if empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def peak_in_window(stamps: Sequence[float], window: float) -> int:
    """Return the largest number of ``stamps`` inside any half-open window ``(t - window, t]``."""
    ordered = sorted(stamps)
    best = start = 0
    for end, stamp in enumerate(ordered):
        while ordered[start] <= stamp - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def peak_in_fixed_windows(stamps: Sequence[float], window: float, origin: float) -> int:
    """Return the largest number of ``stamps`` in one of the consecutive windows ``[origin + k*window, ...)``."""
    counts: dict[int, int] = {}
    for stamp in stamps:
        slot = math.floor((stamp - origin) / window)
        counts[slot] = counts.get(slot, 0) + 1
    return max(counts.values(), default=0)


def rss_bytes() -> int:
    """Resident set size of this process."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:  # pragma: no cover - psutil comes with Airflow
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextlib.contextmanager
def output_to(path: str) -> Iterator[None]:
    """Send file descriptors 1 and 2 to ``path`` for the duration (trigger logs, which Airflow's structlog writes
    to stdout, would otherwise drown the figures); they still cost what logging costs."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, target):
            os.close(fd)


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(rows: Sequence[Sequence[str]]) -> str:
    """Render rows of text as aligned columns (first column left-aligned, the rest right-aligned)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def closing_json(payload: dict[str, Any]) -> None:
    """Print the one JSON line every benchmark ends with."""
    print(json.dumps(payload, sort_keys=True, separators=(",", ":")), flush=True)


def command_line() -> str:
    return " ".join([os.path.relpath(sys.executable), *sys.argv])


def wall() -> float:
    return time.time()
