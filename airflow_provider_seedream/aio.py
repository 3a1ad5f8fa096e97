"""One async HTTP client and one poll budget per API key and event loop.

A triggerer runs every trigger of the process in one event loop. If each waiting trigger held its own
``httpx.AsyncClient`` it would also hold its own connection pool and SSL context (about 860 KB each, measured on
Airflow 3.3.2), and N triggers polling on their own clocks would send N/interval requests per second whatever kie's
limit (10 recordInfo queries per second per key). Here all waits for the same key in the same loop lease one client
and draw from one ``PollBudget``, so any number of concurrent waits stays within the budget.

Nothing here blocks the loop or outlives its users: the budget runs no background task while nobody waits, a
cancelled waiter leaves the queue at once, and the client closes when its last lease ends (even when that lease ends
by cancellation, as when the triggerer cancels or reassigns a trigger).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import ssl
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx

from airflow_provider_seedream import connection, limits, wire
from airflow_provider_seedream import exceptions as exc

#: Pause applied to the budget when kie answers 429 without a usable ``Retry-After`` (its recordInfo window is 1 s).
DEFAULT_RATE_LIMIT_PAUSE = 1.0
#: The longest one 429 may pause the budget (``Retry-After`` is held to this), so that every wait for the key resumes.
MAX_PAUSE = limits.MAX_RETRY_AFTER_SECONDS
# Rebuild the queue once this many withdrawn places have piled up (and they outnumber the live ones).
_COMPACT_AFTER = 64


class PollBudget:
    """A pacing limiter: at most ``rate`` grants per second, given to the most urgent waiter first.

    Grants are spaced at least ``1 / rate`` seconds apart (no bursts), so any half-open window of ``w`` seconds
    holds at most ``ceil(rate * w)`` of them: at the default 8/s, 8 per second against kie's 10. Waiters are served
    in the order of (the moment they asked + ``priority``), ties in arrival order: ``priority`` is a time offset in
    seconds, so a constant priority means round-robin and a positive one lets others go first. The trigger passes
    (``schedule.likely_done_at`` - now): the task most likely finished is asked about first. The order only matters
    when callers queue: an idle budget grants at once.

    :param rate: grants per second.
    :param clock: a monotonic clock in seconds; injectable for tests.
    :param sleep: the coroutine that waits for the next free slot; injectable with ``clock``.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._rate = self._check_rate(rate)
        self._clock = clock
        self._sleep = sleep
        self._next_free = -float("inf")
        self._queue: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._live = 0
        self._withdrawn = 0
        self._dispatcher: asyncio.Task[None] | None = None
        self.granted = 0
        self.paused_for = 0.0

    @staticmethod
    def _check_rate(rate: float) -> float:
        if not rate > 0:  # also rejects NaN
            raise ValueError(f"rate must be a positive number of grants per second, got {rate!r}")
        return float(rate)

    @property
    def rate(self) -> float:
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        self._rate = self._check_rate(value)

    @property
    def waiting(self) -> int:
        """How many callers are waiting for a grant now."""
        return self._live

    async def acquire(self, priority: float = 0.0) -> None:
        """Wait for a grant. Cancelling the caller withdraws its place in the queue at once."""
        now = self._clock()
        if not self._live and self._next_free <= now:
            self._grant(now)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (now + priority, next(self._seq), fut))
        self._live += 1
        if self._dispatcher is None:
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())
        try:
            await fut
        except asyncio.CancelledError:
            # Cancelling the caller cancels ``fut`` too; a future that was granted instead is simply not used.
            if fut.cancelled() or fut.cancel():
                self._withdraw()
            raise

    def pause(self, seconds: float) -> None:
        """Give no grant for ``seconds`` (at most ``MAX_PAUSE``) from now: kie said the key's budget is spent."""
        seconds = min(seconds, MAX_PAUSE)
        if seconds > 0:
            now = self._clock()
            resume = now + seconds
            if resume > self._next_free:
                self.paused_for += resume - max(self._next_free, now)
                self._next_free = resume

    def close(self) -> None:
        """Stop dispatching; callers still waiting are cancelled (only used when the last lease ends)."""
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            self._dispatcher = None
        for _, _, fut in self._queue:
            fut.cancel()
        self._queue.clear()
        self._live = 0
        self._withdrawn = 0

    def _grant(self, now: float) -> None:
        self.granted += 1
        self._next_free = max(self._next_free, now) + 1.0 / self._rate

    def _withdraw(self) -> None:
        if self._live > 0:  # after ``close`` there is nothing left to give back
            self._live -= 1
            self._withdrawn += 1
            self._compact()

    def _compact(self) -> None:
        if self._withdrawn > _COMPACT_AFTER and self._withdrawn > self._live:
            self._queue = [entry for entry in self._queue if not entry[2].done()]
            heapq.heapify(self._queue)
            self._withdrawn = 0

    async def _dispatch(self) -> None:
        try:
            while True:
                queue = self._queue
                while queue and queue[0][2].done():  # withdrawn by a cancelled waiter
                    heapq.heappop(queue)
                    self._withdrawn = max(0, self._withdrawn - 1)
                if not queue:
                    return
                now = self._clock()
                if self._next_free > now:
                    await self._sleep(self._next_free - now)
                    continue
                _, _, fut = heapq.heappop(queue)
                fut.set_result(None)
                self._live -= 1
                self._grant(now)
        finally:
            if self._dispatcher is asyncio.current_task():
                self._dispatcher = None


class _Shared:
    """The client and budget of one key in one loop, and how many leases hold them."""

    __slots__ = ("client", "budget", "leases")

    def __init__(self, client: httpx.AsyncClient, budget: PollBudget) -> None:
        self.client = client
        self.budget = budget
        self.leases = 0


# event loop -> budget key -> shared entry. Futures and clients belong to one loop, so the loop is part of the key;
# a loop that is gone takes its entries with it.
_REGISTRY: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Shared]] = weakref.WeakKeyDictionary()
# Clients being closed after their last lease: held here so that a cancelled leaseholder cannot orphan the close.
_CLOSING: set[asyncio.Task[None]] = set()


def _rate_limit_listener(budget: PollBudget) -> Callable[[httpx.Response], Awaitable[None]]:
    """Return a response hook that pauses ``budget`` when kie answers a status query with HTTP 429.

    The budget only knows this process's queries; a 429 means other processes (workers poking, another triggerer)
    spend the same key, so this process backs off for as long as kie asks.
    """

    async def on_response(response: httpx.Response) -> None:
        if response.status_code == 429 and response.request.url.path.endswith(wire.RECORD_INFO_PATH):
            retry_after = wire.parse_retry_after(response.headers.get("Retry-After"))
            budget.pause(retry_after if retry_after is not None else DEFAULT_RATE_LIMIT_PAUSE)

    return on_response


_SSL_CONTEXT: ssl.SSLContext | None = None


def _ssl_context() -> ssl.SSLContext:
    """Return the process's TLS context (what ``httpx.AsyncClient()`` would build for itself, built once).

    Loading the CA bundle costs about 20 ms of CPU: paid once per process, off the event loop (see ``lease``), instead
    of once per client. A context is safe to share between clients, threads and loops.
    """
    global _SSL_CONTEXT
    if _SSL_CONTEXT is None:
        _SSL_CONTEXT = httpx.create_ssl_context()
    return _SSL_CONTEXT


def _new_client(settings: connection.ConnectionSettings, budget: PollBudget) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        headers=settings.headers,
        verify=_ssl_context(),
        timeout=httpx.Timeout(settings.timeout, connect=connection.CONNECT_TIMEOUT_SECONDS),
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
        follow_redirects=False,
        trust_env=not settings.direct,  # a plain-http (loopback) base is never reached through a proxy
        event_hooks={"response": [_rate_limit_listener(budget)]},
    )


async def _close(shared: _Shared) -> None:
    shared.budget.close()
    await shared.client.aclose()


@asynccontextmanager
async def lease(settings: connection.ConnectionSettings) -> AsyncIterator[tuple[httpx.AsyncClient, PollBudget]]:
    """Lend the shared client and budget for ``settings``'s key; the client closes when its last lease ends.

    Leases nest and are cheap: hold one for a whole wait so that the client is not reopened between polls. When two
    connections name the same key with different ``polls_per_second``, the budget keeps the lower rate.
    """
    loop = asyncio.get_running_loop()
    entries = _REGISTRY.setdefault(loop, {})
    key = settings.budget_key()
    shared = entries.get(key)
    if (shared is None or shared.client.is_closed) and _SSL_CONTEXT is None:
        await asyncio.to_thread(_ssl_context)
        shared = entries.get(key)  # another lease may have created the entry meanwhile
    if shared is None or shared.client.is_closed:
        budget = PollBudget(settings.polls_per_second)
        shared = _Shared(client=_new_client(settings, budget), budget=budget)
        entries[key] = shared
    elif settings.polls_per_second < shared.budget.rate:
        shared.budget.rate = settings.polls_per_second
    shared.leases += 1
    try:
        yield shared.client, shared.budget
    finally:
        shared.leases -= 1
        if shared.leases == 0 and entries.get(key) is shared:
            del entries[key]
            closing = loop.create_task(_close(shared))
            _CLOSING.add(closing)
            closing.add_done_callback(_CLOSING.discard)
            # Closing must not be skipped when the leaseholder was cancelled; shield it from that cancellation.
            await asyncio.shield(closing)


def shared_entries() -> dict[str, tuple[int, int]]:
    """Return, for the running loop, each budget key's (leases, waiting) counts: for tests and benchmarks."""
    entries = _REGISTRY.get(asyncio.get_running_loop(), {})
    return {key: (entry.leases, entry.budget.waiting) for key, entry in entries.items()}


async def acquire_before(budget: PollBudget, priority: float, deadline: float | None) -> None:
    """Wait for a grant of ``budget``, but not past ``deadline`` (seconds since the epoch; ``None``: no end).

    Past the deadline it raises a transient ``SeedreamRateLimitError`` (the query was never sent), which a waiter
    turns into its timeout event: a budget paused by a 429 never holds a wait beyond its own deadline.
    """
    if deadline is None:
        await budget.acquire(priority)
        return
    remaining = deadline - time.time()
    try:
        await asyncio.wait_for(budget.acquire(priority), max(0.0, remaining))
    except (TimeoutError, asyncio.TimeoutError):
        raise exc.SeedreamRateLimitError("the poll budget for this key had no slot before the wait's deadline "
                                         "(kie asked to slow down); the query was not sent", code=None) from None


def transport_error(error: httpx.TransportError, what: str) -> exc.SeedreamTransportError:
    """Classify an ``httpx`` failure by whether the request may have reached the server."""
    sent = not isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
    return exc.SeedreamTransportError(f"{what}: no answer from kie.ai ({type(error).__name__})", sent=sent)


async def fetch(client: httpx.AsyncClient, url: str, what: str, *, timeout: float,
                connect_timeout: float = connection.CONNECT_TIMEOUT_SECONDS, cap: int = limits.MAX_JSON_BYTES,
                **kwargs: object) -> limits.Answer:
    """GET ``url`` and read the whole answer within ``timeout`` seconds and ``cap`` bytes, without blocking the loop.

    Raises ``SeedreamTransportError`` (no whole answer in time) or ``SeedreamResponseError`` (past the cap).
    """

    async def exchange() -> limits.Answer:
        per_request = httpx.Timeout(timeout, connect=min(connect_timeout, timeout))
        async with client.stream("GET", url, timeout=per_request, **kwargs) as response:  # type: ignore[arg-type]
            body = limits.open_body(response.headers, cap)
            async for chunk in response.aiter_raw(limits.READ_CHUNK_BYTES):
                body.feed(chunk)
            return limits.Answer(response.status_code, body.finish(), response.headers.get("Retry-After"))

    try:
        return await asyncio.wait_for(exchange(), timeout)
    except (TimeoutError, asyncio.TimeoutError):
        raise exc.SeedreamTransportError(limits.too_slow(what, timeout), sent=True) from None
    except (limits.BodyTooLarge, limits.BodyUndecodable) as error:
        raise exc.SeedreamResponseError(f"{what}: {error}") from None
    except httpx.TransportError as error:
        raise transport_error(error, what) from None
