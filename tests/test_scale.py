"""Many concurrent waits in one event loop, against the emulator with kie's rate limits switched on.

These run the real ``SeedreamTaskTrigger.run()`` the way the triggerer does (as tasks of one loop) and check what the
emulator counted: no 429, no second per-second window above kie's 10 recordInfo queries, one client for the key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support import leftover_tasks, use_connection

from airflow_provider_seedream import aio
from airflow_provider_seedream import exceptions as exc
from seedream_emulator import EmulatorConfig, EmulatorServer
from airflow_provider_seedream.hooks.seedream import SeedreamHook
from airflow_provider_seedream.triggers.seedream import SeedreamTaskTrigger

API_KEY = "scale-test-key"
KIE_RECORD_INFO_LIMIT = 10  # per second per key


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(
        api_keys=(API_KEY,),
        task_seconds_dist={"kind": "uniform", "min": 0.3, "max": 1.2},
        seed=5,
        null_window_seconds=0.2,
        rate_limits=True,
        create_limit=1000,  # these tests are about status queries: keep kie's 10 recordInfo/s, not the submit limit
    )
    with EmulatorServer(config, port=0) as server:
        yield server


@pytest.fixture()
def emu(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    emulator.state.reset()
    use_connection(monkeypatch, API_KEY, emulator.url)
    return emulator


def create_tasks(emu: EmulatorServer, count: int, prompt: str = "put it on a white table") -> list[str]:
    body = {"model": "seedream/4.5-edit", "input": {"prompt": prompt,
                                                     "image_urls": [f"{emu.url}/samples/sneaker-1x1.png"],
                                                     "aspect_ratio": "1:1", "quality": "basic"}}
    with httpx.Client(headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        ids = [client.post(f"{emu.url}/api/v1/jobs/createTask", json=body).json()["data"]["taskId"]
               for _ in range(count)]
    assert len(set(ids)) == count
    return ids


async def run_trigger(task_id: str) -> dict[str, Any]:
    events = [event.payload async for event in SeedreamTaskTrigger(task_id, poll_interval=0.2).run()]
    assert len(events) == 1
    return events[0]


async def test_fifty_concurrent_triggers_share_one_client_and_never_hit_the_rate_limit(emu: EmulatorServer) -> None:
    ids = create_tasks(emu, 50)
    tasks = [asyncio.create_task(run_trigger(task_id)) for task_id in ids]
    samples: list[dict[str, tuple[int, int]]] = []

    async def sample() -> None:
        while not all(task.done() for task in tasks):
            samples.append(aio.shared_entries())
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    events = await asyncio.gather(*tasks)
    await sampler

    # One shared entry (one client, one budget) for the key all along; every trigger held a lease on it, and most
    # of the time queries queued for the budget: 50 triggers polling every 0.2 s would want 250 queries/s.
    assert {len(entries) for entries in samples} <= {0, 1}  # 0 before the first lease and after the last
    assert max(leases for entries in samples for leases, _ in entries.values()) >= 50
    assert max(waiting for entries in samples for _, waiting in entries.values()) >= 25
    assert [event["status"] for event in events] == ["success"] * 50
    assert sorted(event["task_id"] for event in events) == sorted(ids)
    stats = emu.state.stats()
    assert stats["rate_limited"]["recordInfo"] == 0
    assert max(stats["per_second"]["recordInfo"].values()) <= KIE_RECORD_INFO_LIMIT
    # The budget, not the triggers' own 0.2 s clocks, set the pace: far fewer than 5 queries per second per trigger.
    assert stats["requests"]["recordInfo"] < 3 * 50
    assert aio.shared_entries() == {}
    assert not leftover_tasks()


async def test_cancelled_triggers_free_their_places_and_leak_nothing(emu: EmulatorServer) -> None:
    ids = create_tasks(emu, 20, "put it on a white table [emulator: seconds=1.5]")
    tasks = {task_id: asyncio.create_task(run_trigger(task_id)) for task_id in ids}
    while emu.state.stats()["requests"]["recordInfo"] < 10:
        await asyncio.sleep(0.05)
    (leases_before, _), = aio.shared_entries().values()
    cancelled, kept = ids[::2], ids[1::2]
    for task_id in cancelled:  # what the triggerer does when a task is cleared or reassigned
        tasks[task_id].cancel()
    await asyncio.sleep(0)
    (leases, waiting), = aio.shared_entries().values()
    # Each trigger holds one lease for its wait and one more while it queries; the cancelled ones hold none now.
    assert 20 <= leases_before <= 40
    assert 10 <= leases <= 20
    assert waiting <= 10

    events = await asyncio.gather(*(tasks[task_id] for task_id in kept))
    assert [event["status"] for event in events] == ["success"] * 10
    assert all(tasks[task_id].cancelled() for task_id in cancelled)
    polls = emu.state.stats()["tasks"]
    # Nobody asked about a cancelled task after its cancellation settled (at most the query in flight).
    before = {task_id: polls[task_id]["polls"] for task_id in cancelled}
    await asyncio.sleep(0.3)
    after = emu.state.stats()["tasks"]
    assert {task_id: after[task_id]["polls"] for task_id in cancelled} == before
    assert emu.state.stats()["rate_limited"]["recordInfo"] == 0
    assert aio.shared_entries() == {}
    assert not leftover_tasks()


async def test_a_429_from_kie_pauses_the_whole_budget_for_its_retry_after(emu: EmulatorServer) -> None:
    ids = create_tasks(emu, 1)
    emu.state.add_faults("recordInfo", [{"kind": "http", "status": 429, "retry_after": 2}])
    hook = SeedreamHook()
    settings = await hook.aget_settings()
    async with aio.lease(settings) as (_, budget):
        with pytest.raises(exc.SeedreamRateLimitError):
            await hook.aget_task(ids[0])
        # Someone else spent the key: this process stops asking for as long as kie said, for every task.
        assert budget.paused_for >= 1.5  # 2 s less the 1/8 s the pacing held anyway
        assert budget.granted == 1
    assert aio.shared_entries() == {}


async def test_a_scarce_budget_asks_first_about_the_task_most_likely_finished(
    emu: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One query per second for four finished tasks. B's trigger runs first and takes the idle budget's grant; the
    # others then queue behind a short pause: C and D were submitted 2 s ago and just now (likely done in ~18 and ~20 s: the typical run is
    # 20 s), A 100 s ago (likely done long since). A is asked about next although its trigger started last, then C,
    # then D. Round-robin would give B, C, D, A.
    use_connection(monkeypatch, API_KEY, emu.url, polls_per_second=1)
    a, b, c, d = create_tasks(emu, 4, "put it on a white table [emulator: seconds=0]")
    await asyncio.sleep(0.3)  # past the emulator's "recordInfo is null" window
    now = time.time()
    order: list[str] = []

    async def wait(task_id: str, started_at: float) -> None:
        trigger = SeedreamTaskTrigger(task_id, poll_interval=0.2, started_at=started_at)
        async for event in trigger.run():
            assert event.payload["status"] == "success"
            order.append(task_id)

    settings = await SeedreamHook().aget_settings()
    async with aio.lease(settings) as (_, budget):  # keeps the budget (and its pacing) alive between the waits
        await wait(b, now)
        budget.pause(3.0)  # hold the next grant until all three have queued, however slow this machine is
        waits = [asyncio.create_task(wait(task_id, started))
                 for task_id, started in ((c, now - 2), (d, now), (a, now - 100))]
        queued_by = time.monotonic() + 2.5
        while budget.waiting < 3 and time.monotonic() < queued_by:
            await asyncio.sleep(0.01)
        assert budget.waiting == 3  # all three compete for the next grant
        await asyncio.gather(*waits)
        assert budget.granted == 4
    names = {b: "b", a: "a", c: "c", d: "d"}
    assert [names[task_id] for task_id in order] == ["b", "a", "c", "d"]
    assert emu.state.stats()["requests"]["recordInfo"] == 4
    assert aio.shared_entries() == {}
