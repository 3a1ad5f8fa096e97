"""The shared poll budget and client (``airflow_provider_seedream.aio``).

Budget tests drive time with a manual clock: nothing sleeps, every assertion is about counts and orderings.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import random
import threading

import pytest
from support import leftover_tasks

from airflow_provider_seedream import aio, connection
from airflow_provider_seedream.aio import PollBudget


class ManualClock:
    """A virtual monotonic clock: sleeps end only when the test advances time past them."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._seq), fut))
        await fut

    @staticmethod
    async def settle() -> None:
        for _ in range(10):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking each sleeper at its own moment, in order."""
        target = self.now + seconds
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            wake, _, fut = heapq.heappop(self._sleepers)
            if fut.done():  # the sleeper was cancelled
                continue
            self.now = max(self.now, wake)
            fut.set_result(None)
            await self.settle()
        self.now = target
        await self.settle()


def budget_with_clock(rate: float) -> tuple[PollBudget, ManualClock]:
    clock = ManualClock()
    return PollBudget(rate, clock=clock, sleep=clock.sleep), clock


# ---------------------------------------------------------------------------------------------------- the budget


@pytest.mark.parametrize("rate", [8.0, 2.5])
async def test_many_waiters_never_exceed_the_rate_over_any_window(rate: float) -> None:
    budget, clock = budget_with_clock(rate)
    grants: list[float] = []
    rng = random.Random(7)

    async def waiter() -> None:
        for _ in range(5):
            await budget.acquire(priority=rng.uniform(0.0, 3.0))
            grants.append(clock())

    tasks = [asyncio.create_task(waiter()) for _ in range(120)]
    await clock.advance(5 * 120 / rate + 5)
    await asyncio.gather(*tasks)

    assert len(grants) == 600 == budget.granted
    grants.sort()
    per_window = int(rate) if rate == int(rate) else int(rate) + 1  # ceil(rate): most grants in any 1 s window
    for earlier, later in zip(grants, grants[per_window:]):
        assert later - earlier >= 1.0 - 1e-9
    # Pacing, not idling: the whole lot took as long as the rate demands and no longer.
    assert grants[-1] == pytest.approx((600 - 1) / rate)
    assert budget.waiting == 0
    assert not leftover_tasks()


async def test_waiters_are_served_by_priority_then_arrival() -> None:
    budget, clock = budget_with_clock(1.0)
    await budget.acquire()  # takes the slot at t=0: everyone below has to queue
    order: list[str] = []

    async def waiter(name: str, priority: float) -> None:
        await budget.acquire(priority)
        order.append(name)

    tasks = [asyncio.create_task(waiter(name, priority))
             for name, priority in [("a", 3.0), ("b", 0.0), ("c", 2.0), ("d", 0.0), ("e", 1.0)]]
    await clock.settle()
    assert budget.waiting == 5
    await clock.advance(10)
    await asyncio.gather(*tasks)
    assert order == ["b", "d", "e", "c", "a"]


async def test_priority_is_a_time_offset_from_the_moment_a_waiter_asked() -> None:
    # A asks at t=0 but yields 1.5 s (ranks at 1.5); B asks at t=1 without yielding (ranks at 1.0): B goes first.
    # Then C asks at t=2.5 and ranks after A, which has been waiting since before C asked.
    budget, clock = budget_with_clock(0.5)  # one grant every 2 s
    await budget.acquire()
    order: list[str] = []

    async def waiter(name: str, priority: float) -> None:
        await budget.acquire(priority)
        order.append(name)

    a = asyncio.create_task(waiter("A", 1.5))
    await clock.advance(1.0)
    b = asyncio.create_task(waiter("B", 0.0))
    await clock.advance(1.5)
    c = asyncio.create_task(waiter("C", 0.0))
    await clock.advance(10)
    await asyncio.gather(a, b, c)
    assert order == ["B", "A", "C"]


async def test_an_idle_budget_grants_without_suspending_the_caller() -> None:
    budget, _ = budget_with_clock(8.0)
    coro = budget.acquire()
    with pytest.raises(StopIteration):  # finished on the first step: no future, no task, no context switch
        coro.send(None)
    assert budget.granted == 1
    assert not leftover_tasks()


async def test_cancelling_a_waiter_gives_its_place_to_the_next_and_leaves_nothing_behind() -> None:
    budget, clock = budget_with_clock(1.0)
    await budget.acquire()
    served: list[str] = []

    async def waiter(name: str) -> None:
        await budget.acquire()
        served.append(name)

    first, second, third = (asyncio.create_task(waiter(name)) for name in ("first", "second", "third"))
    await clock.settle()
    assert budget.waiting == 3
    second.cancel()
    await clock.settle()
    assert budget.waiting == 2
    assert second.cancelled()

    await clock.advance(1.0)  # the slot at t=1 goes to "first" ...
    assert served == ["first"]
    await clock.advance(1.0)  # ... and the one at t=2 to "third", not to the cancelled "second".
    assert served == ["first", "third"]
    await asyncio.gather(first, third)
    assert budget.granted == 3
    assert not leftover_tasks()


async def test_when_every_waiter_is_cancelled_no_task_is_left_running() -> None:
    budget, clock = budget_with_clock(1.0)
    await budget.acquire()
    tasks = [asyncio.create_task(budget.acquire()) for _ in range(50)]
    await clock.settle()
    assert budget.waiting == 50
    for task in tasks:
        task.cancel()
    await clock.advance(2.0)
    assert budget.waiting == 0
    assert budget.granted == 1
    assert not leftover_tasks()


async def test_withdrawn_places_do_not_pile_up_in_the_queue() -> None:
    budget, clock = budget_with_clock(0.01)  # so slow that nothing is granted during the test
    await budget.acquire()
    keep = [asyncio.create_task(budget.acquire()) for _ in range(10)]
    for _ in range(5):  # triggers come and go while the budget is exhausted
        churn = [asyncio.create_task(budget.acquire()) for _ in range(200)]
        await clock.settle()
        for task in churn:
            task.cancel()
        await clock.settle()
    assert budget.waiting == 10
    assert len(budget._queue) < 10 + 2 * aio._COMPACT_AFTER  # not 1010
    for task in keep:
        task.cancel()
    await clock.advance(200)
    assert not leftover_tasks()


async def test_pause_holds_every_grant_back_for_as_long_as_asked() -> None:
    budget, clock = budget_with_clock(8.0)
    await budget.acquire()
    budget.pause(3.0)
    budget.pause(1.0)  # a shorter pause inside a longer one changes nothing
    assert budget.paused_for == pytest.approx(3.0 - 0.125)  # the first 1/8 s was the pacing's anyway
    got: list[float] = []

    async def waiter() -> None:
        await budget.acquire()
        got.append(clock())

    tasks = [asyncio.create_task(waiter()) for _ in range(3)]
    await clock.advance(2.9)
    assert got == []
    await clock.advance(1.0)
    await asyncio.gather(*tasks)
    assert got == pytest.approx([3.0, 3.125, 3.25])


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan")])
def test_a_non_positive_rate_is_rejected(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        PollBudget(rate)


# ---------------------------------------------------------------------------------------------------- leases


def settings(key: str = "key-1", rate: float = 8.0, port: int = 9) -> connection.ConnectionSettings:
    return connection.ConnectionSettings(base_url=f"http://127.0.0.1:{port}", api_key=key, polls_per_second=rate)


async def test_one_client_and_one_budget_per_key_shared_by_nested_leases() -> None:
    async with aio.lease(settings()) as (client_a, budget_a):
        async with aio.lease(settings()) as (client_b, budget_b):
            assert client_a is client_b
            assert budget_a is budget_b
            assert aio.shared_entries() == {settings().budget_key(): (2, 0)}
        assert not client_a.is_closed  # the outer lease still holds it
        assert aio.shared_entries() == {settings().budget_key(): (1, 0)}
    assert client_a.is_closed
    assert aio.shared_entries() == {}
    assert not leftover_tasks()


async def test_different_keys_get_different_clients_and_budgets() -> None:
    async with aio.lease(settings("key-1")) as (client_a, budget_a), \
            aio.lease(settings("key-2")) as (client_b, budget_b):
        assert client_a is not client_b
        assert budget_a is not budget_b
        assert client_a.headers["Authorization"] == "Bearer key-1"
        assert client_b.headers["Authorization"] == "Bearer key-2"
        assert len(aio.shared_entries()) == 2
    assert aio.shared_entries() == {}


async def test_the_key_never_appears_in_the_registry() -> None:
    async with aio.lease(settings("secret-key-123")):
        assert "secret-key-123" not in json.dumps(aio.shared_entries())


async def test_a_new_lease_after_the_last_one_ended_gets_a_fresh_client() -> None:
    async with aio.lease(settings()) as (first, _):
        pass
    async with aio.lease(settings()) as (second, _):
        assert second is not first
        assert not second.is_closed


async def test_the_budget_keeps_the_lowest_rate_asked_for_one_key() -> None:
    async with aio.lease(settings(rate=8.0)) as (_, budget):
        async with aio.lease(settings(rate=3.0)):
            assert budget.rate == 3.0
        async with aio.lease(settings(rate=9.0)):
            assert budget.rate == 3.0


async def test_cancelling_the_last_leaseholder_still_closes_the_client() -> None:
    holding = asyncio.Event()
    seen: list[object] = []

    async def wait_forever() -> None:
        async with aio.lease(settings()) as (client, budget):
            seen.append(client)
            await budget.acquire()
            holding.set()
            await budget.acquire()  # 1/8 s away: the cancellation lands while this waits in the queue
            await asyncio.sleep(3600)

    task = asyncio.create_task(wait_forever())
    await holding.wait()
    assert aio.shared_entries() == {settings().budget_key(): (1, 1)}
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen[0].is_closed  # type: ignore[attr-defined]
    assert aio.shared_entries() == {}
    await asyncio.sleep(0)
    assert not leftover_tasks()
    assert not aio._CLOSING


def test_each_event_loop_gets_its_own_client() -> None:
    # The triggerer runs one loop; a trigger reassigned to another triggerer lands in another process and loop.
    clients: list[object] = []
    barrier = threading.Barrier(2)

    async def hold() -> None:
        async with aio.lease(settings()) as (client, _):
            clients.append(client)
            await asyncio.to_thread(barrier.wait, 10)

    threads = [threading.Thread(target=asyncio.run, args=(hold(),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(clients) == 2
    assert clients[0] is not clients[1]
    assert all(client.is_closed for client in clients)  # type: ignore[attr-defined]
