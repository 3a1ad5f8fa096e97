"""createTask pacing shared by every process of one host: kie admits 20 createTask per 10 s per account.

Mapped ``SeedreamEditOperator`` tasks submit from many worker processes at once. Retrying 429s with ``Retry-After``
keeps a burst correct (a refused submit is never billed), but every refusal is a wasted round trip and a late
submit. Here each submit first reserves a moment to leave in a small file shared by the processes of the host (one
file per API key, named by a non-reversible digest, locked with ``flock``): no reserved moment has more than the limit
of others within one window before it, so the submits of one host never exceed kie's rate. Reservations are made
under the lock and waited for outside it, in the order they were made. When a submit's answer is back, its
reservation moves to that moment: kie counts a request when it arrives, which is no later than its answer, so a
loaded machine whose requests leave late (or arrive spread out) cannot crowd the next window.

Limits: the file is per host. Workers on several hosts that share one key each keep their own pace; give each a share
of the limit with the connection extra ``submits_per_10s`` (for example 10 on each of two hosts). Where the file
cannot be used (no ``fcntl``, an unwritable temp directory) the pace holds for the process only.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

#: kie's documented createTask limit: 20 per 10 seconds per account.
KIE_CREATE_LIMIT = 20
KIE_CREATE_WINDOW_SECONDS = 10.0
#: Added to kie's window for clock granularity only. Lateness needs no margin: a submit leaves no sooner than one
#: window after the moment the answer to the submit 20 places before it came back (``settle``), and kie had
#: counted that one by then, since it counts a request when it arrives, which is before its answer. So two submits 20
#: places apart reach kie more than a window apart however late either travels. (0.25 s cost 2.25 s per 200
#: submits for nothing: ``benchmarks/nightly_batch.py``, 0 refusals with either margin.)
WINDOW_MARGIN_SECONDS = 0.05
DIRECTORY_NAME = "airflow-provider-seedream-pacing"


def next_slot(reserved: list[float], now: float, limit: int, window: float) -> float:
    """Return the earliest moment at or after ``now`` with fewer than ``limit`` reservations in the window before it.

    ``reserved`` holds the moments already reserved, in order (some may lie in the future).
    """
    if limit <= 0:
        raise ValueError(f"limit must be positive, got {limit}")
    if len(reserved) < limit:
        return now
    return max(now, reserved[-limit] + window)


#: Reservations further ahead than this are not believed (a foreign or corrupted file), whatever they say.
MAX_AHEAD_SECONDS = 24 * 3600.0


def _believable(raw: object, now: float) -> list[float]:
    """Read the file's reservations, dropping anything that is not a finite moment within a day of now."""
    if not isinstance(raw, list):
        return []
    kept = []
    for value in raw:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and \
                now - MAX_AHEAD_SECONDS < value < now + MAX_AHEAD_SECONDS:
            kept.append(float(value))
    return sorted(kept)


def _locked(path: Path, change: Callable[[list[float]], float], now: float) -> float:
    import fcntl

    # O_NOFOLLOW: the file is ours, never a link someone put in its place.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            try:
                reserved = _believable(json.loads(handle.read() or "[]"), now)
            except ValueError:
                reserved = []  # a torn or foreign file: start afresh rather than fail a submit
            slot = change(reserved)
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(reserved))
            handle.flush()
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return slot


class HostPacer:
    """Reserves createTask departures for one API key, shared by every process of the host.

    :param key_digest: a non-reversible name for the key (``ConnectionSettings.budget_key()``).
    :param limit: submits per window (kie: 20).
    :param window: the window in seconds (kie: 10), plus ``WINDOW_MARGIN_SECONDS``.
    :param directory: where the shared files live (default: a folder in the system's temp directory).
    """

    _process_lock = threading.Lock()
    _process_reserved: dict[str, list[float]] = {}

    def __init__(self, key_digest: str, limit: int = KIE_CREATE_LIMIT,
                 window: float = KIE_CREATE_WINDOW_SECONDS + WINDOW_MARGIN_SECONDS,
                 directory: str | os.PathLike[str] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.key_digest = key_digest
        self.limit = int(limit)
        self.window = float(window)
        self.clock = clock
        self.path: Path | None = self._shared_file(Path(directory) if directory else
                                                   Path(tempfile.gettempdir()) / DIRECTORY_NAME)

    def _shared_file(self, directory: Path) -> Path | None:
        """The shared file, if the folder is ours alone (made by this user, no one else may write there)."""
        try:
            import fcntl  # noqa: F401 - POSIX only
            import stat

            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = os.lstat(directory)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
                return None  # someone else's folder, a link, or one others may write to: pace this process only
            return directory / f"{self.key_digest}.json"
        except (ImportError, OSError, AttributeError):
            return None

    @property
    def shared(self) -> bool:
        """Whether the pace holds for the whole host (``False``: for this process only)."""
        return self.path is not None

    def _reserve_in(self, reserved: list[float], replacing: float | None = None) -> float:
        """Reserve the earliest free moment in ``reserved`` (kept sorted, pruned of what left the window) and return it.

        A first reservation queues behind every other one, future ones included (first come, first served).
        ``replacing`` checks a reservation again when its moment has come: it gives up its old place and counts only
        the submits already gone, as they settled (earlier submits may have reached the server later than they left);
        the moment returned is now if the window still has room, else a later one.
        """
        now = self.clock()
        if replacing is not None and replacing in reserved:
            reserved.remove(replacing)
        reserved[:] = sorted(t for t in reserved if t > now - self.window)
        ahead = reserved if replacing is None else [t for t in reserved if t <= now]
        slot = next_slot(ahead, now, self.limit, self.window)
        reserved.append(slot)
        reserved.sort()
        return slot

    def _update(self, change: Callable[[list[float]], float]) -> float:
        with self._process_lock:  # threads of one process, and the fallback when the file cannot be used
            if self.path is not None:
                try:
                    return _locked(self.path, change, self.clock())
                except Exception:  # the shared file failed us: pace this process only, never fail a submit
                    self.path = None
            return change(self._process_reserved.setdefault(self.key_digest, []))

    def reserve(self) -> float:
        """Reserve the next free departure and return it (seconds since the epoch)."""
        return self._update(self._reserve_in)

    def settle(self, slot: float, arrived_by: float) -> None:
        """Move the reservation ``slot`` to ``arrived_by``, the moment the request had surely reached the server."""

        def move(reserved: list[float]) -> float:
            if slot in reserved:
                reserved.remove(slot)
            reserved.append(max(slot, arrived_by))
            reserved.sort()
            return arrived_by

        self._update(move)

    def clear(self) -> None:
        """Forget every reservation for this key (after the server's own window was reset, as in a benchmark)."""

        def forget(reserved: list[float]) -> float:
            reserved.clear()
            return 0.0

        self._update(forget)

    @contextmanager
    def departure(self, sleep: Callable[[float], None] = time.sleep) -> Iterator[float]:
        """Wait for a reserved departure and yield how long that took; wrap the whole request in the block, since
        the reservation moves to the moment the block ends (the answer proves the request had arrived).

        When the reserved moment comes, it is checked again against what the earlier submits settled to (a loaded
        machine's requests can reach the server later than they left), and postponed if the window is still full.
        """
        started = self.clock()
        slot = self.reserve()
        while True:
            delay = min(max(0.0, slot - self.clock()), MAX_AHEAD_SECONDS)
            if delay > 0:
                sleep(delay)
            confirmed = self._update(functools.partial(self._reserve_in, replacing=slot))
            if confirmed <= self.clock() + 0.001:
                slot = confirmed
                break
            slot = confirmed
        try:
            yield self.clock() - started
        finally:
            self.settle(slot, self.clock())
