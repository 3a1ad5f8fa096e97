"""One async HTTP client and one poll budget per API key and event loop.

A triggerer runs every trigger of the process in one event loop. If each waiting trigger held its own
``httpx.AsyncClient`` it would also hold its own connection pool and SSL context (about 860 KB each, measured on
Airflow 3.3.2), and N triggers polling on their own clocks would send N/interval requests per second whatever kie's
limit (10 recordInfo queries per second per key). Here all waits for the same key in the same loop lease one client
and draw from one ``PollBudget``, so any number of concurrent waits stays within the budget.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from airflow_provider_seedream.core import ConnectionSettings


class PollBudget:
    """A pacing limiter: at most ``rate`` grants per second, given to the most urgent waiter first.

    Grants are spaced ``1 / rate`` seconds apart (no bursts), so every 1-second window holds at most ``rate`` of
    them. Waiters are served by ascending ``priority`` (lower is sooner), then in arrival order.

    :param rate: grants per second.
    :param clock: a monotonic clock, injectable for tests.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._clock = clock
        self._next_free = 0.0
        self._queue: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._dispatcher: asyncio.Task[None] | None = None
        self.granted = 0

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, fut in self._queue if not fut.done())

    async def acquire(self, priority: float = 0.0) -> None:
        """Wait for a grant. Cancelling the caller withdraws its place in the queue."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (priority, next(self._seq), fut))
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())
        try:
            await fut
        except asyncio.CancelledError:
            fut.cancel()
            raise

    async def _dispatch(self) -> None:
        while self._queue:
            now = self._clock()
            if self._next_free > now:
                await asyncio.sleep(self._next_free - now)
                continue
            _, _, fut = heapq.heappop(self._queue)
            if fut.done():  # withdrawn by a cancelled waiter
                continue
            fut.set_result(None)
            self.granted += 1
            self._next_free = max(self._next_free, now) + 1.0 / self.rate


@dataclass
class _Shared:
    client: httpx.AsyncClient
    budget: PollBudget
    leases: int = 0
    closing: set[asyncio.Task[None]] = field(default_factory=set)


# event loop -> budget key -> shared entry. Futures and clients belong to one loop, so the loop is part of the key;
# a loop that is gone takes its entries with it.
_REGISTRY: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Shared]] = weakref.WeakKeyDictionary()

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def _new_client(settings: ConnectionSettings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        headers=settings.headers,
        timeout=DEFAULT_TIMEOUT,
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
        follow_redirects=False,
    )


@asynccontextmanager
async def lease(settings: ConnectionSettings) -> AsyncIterator[tuple[httpx.AsyncClient, PollBudget]]:
    """Lend the shared client and budget for ``settings``'s key; the client closes when its last lease ends."""
    loop = asyncio.get_running_loop()
    entries = _REGISTRY.setdefault(loop, {})
    key = settings.budget_key()
    shared = entries.get(key)
    if shared is None or shared.client.is_closed:
        shared = _Shared(client=_new_client(settings), budget=PollBudget(settings.polls_per_second))
        entries[key] = shared
    shared.leases += 1
    try:
        yield shared.client, shared.budget
    finally:
        shared.leases -= 1
        if shared.leases == 0 and entries.get(key) is shared:
            del entries[key]
            # Closing must not be skipped when the leaseholder was cancelled; shield it from that cancellation.
            await asyncio.shield(shared.client.aclose())


def shared_entries() -> dict[str, tuple[int, int]]:
    """Return, for the running loop, each budget key's (leases, waiting) counts: for tests and benchmarks."""
    entries = _REGISTRY.get(asyncio.get_running_loop(), {})
    return {key: (entry.leases, entry.budget.waiting) for key, entry in entries.items()}
