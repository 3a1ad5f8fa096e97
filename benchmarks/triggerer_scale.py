"""N concurrent waits in one event loop, as the triggerer runs them: ours against a naive baseline.

Run by hand (see ``benchmarks/README.md``)::

    .venv/bin/python benchmarks/triggerer_scale.py --tasks 1000
    .venv/bin/python benchmarks/triggerer_scale.py --tasks 20 --poll-interval 2 --naive-interval 2

Both modes wait for the same N emulator tasks (same seed, same run times), one after the other, in this process:

- ``ours``: N real ``SeedreamTaskTrigger(...).run()`` generators, each an asyncio task of one loop (what the
  triggerer does), sharing the process's client and poll budget.
- ``naive``: what peer triggers do: a fixed-interval loop per task that opens a new ``httpx.AsyncClient`` for every
  poll and treats a 429 like any other miss.

The emulator runs in its own process (its CPU is not counted), started with its CLI; the tasks are created by a
helper process (as workers would) and each wait starts when its task is created. Time is compressed with
``--time-scale``: task run times, kie's rate-limit windows, the poll intervals and the poll budget are all scaled
together, and every figure is reported in emulated seconds, except CPU and memory, which time does not scale.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    API_KEY,
    DEFAULT_DIST,
    RECORD_INFO_PATH,
    Emulator,
    closing_json,
    command_line,
    edit_body,
    fmt,
    peak_in_fixed_windows,
    peak_in_window,
    percentile,
    rss_bytes,
    scale_poll_budget,
    output_to,
    table,
    use_connection,
)

SUBMITTER = str(Path(__file__).resolve().parent / "_submitter.py")
TERMINAL = ("success", "fail")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1000, help="concurrent waits (default 1000)")
    parser.add_argument("--time-scale", type=float, default=0.5,
                        help="wall seconds per emulated second (default 0.5: twice as fast)")
    parser.add_argument("--poll-interval", type=float, default=5.0,
                        help="our trigger's base poll_interval, emulated seconds (default 5, the operator's)")
    parser.add_argument("--naive-interval", type=float, default=5.0,
                        help="the naive baseline's fixed interval, emulated seconds (default 5)")
    parser.add_argument("--budget", type=float, default=8.0,
                        help="polls_per_second in the connection extra (default 8, the provider's default)")
    parser.add_argument("--dist", type=json.loads, default=DEFAULT_DIST,
                        help=f"task run-time distribution, emulated seconds (default {json.dumps(DEFAULT_DIST)})")
    parser.add_argument("--seed", type=int, default=1, help="seed of the run-time draws (default 1)")
    parser.add_argument("--ramp", type=float, default=0.0,
                        help="emulated seconds over which the N tasks are submitted (default 0: all at once)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="give up on a mode after this many emulated seconds (default 300; the slowest task "
                             "ends by 120 s, so only a mode that falls behind runs into it)")
    parser.add_argument("--modes", default="ours,naive", help="comma-separated: ours, naive (default both)")
    parser.add_argument("--typical-run", type=float, default=None,
                        help="typical_run_seconds in the connection extra, emulated seconds (default: the "
                             "provider's default, 20 s, whatever --dist says: the provider is not told the truth)")
    parser.add_argument("--priority", choices=("trigger", "round-robin"), default="trigger",
                        help="trigger: the order the trigger asks for (likely_done_at); round-robin: every query "
                             "ranks by the moment it asked, for comparison (default trigger)")
    parser.add_argument("--dump", metavar="FILE",
                        help="also write FILE anew with one JSON line per task and mode (created, completed, event; "
                             "emulated s from the first submit), e.g. to replay the run in simulate_budget.py")
    parser.add_argument("--trigger-log", default=os.devnull,
                        help="where the triggers' log lines go (default: discarded after formatting)")
    return parser.parse_args(argv)


class Run:
    """What one mode saw: when each task's event came, every request's send time, CPU and memory."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.events: dict[str, tuple[float, str]] = {}
        self.stamps: list[float] = []
        self.lags: list[float] = []
        self.created: dict[str, float] = {}
        self.figures: dict[str, Any] = {}
        self.durations: list[float] = []
        self.rows: list[dict[str, Any]] = []  # one per task, for --dump
        self.weighing = False


def ideal_fixed_poller(durations: list[float], interval: float) -> dict[str, Any]:
    """Figures of a fixed-interval poller with no CPU cost and no rate limit: a query at 0, interval, 2*interval...

    The naive baseline measured above is this poller plus what its per-poll client and 429s cost; this column
    shows what a fixed interval costs by itself.
    """
    requests = []
    latencies = []
    for duration in durations:
        polls_after_start = math.ceil(duration / interval - 1e-9)
        requests.append(polls_after_start + 1)
        latencies.append(polls_after_start * interval - duration)
    return {
        "requests_per_task": sum(requests) / max(1, len(requests)),
        "latency_p50_s": percentile(latencies, 0.5),
        "latency_p95_s": percentile(latencies, 0.95),
        "latency_max_s": max(latencies, default=None),
    }


async def loop_lag_monitor(run: Run, stop: asyncio.Event, tick: float = 0.05) -> None:
    """Measure how late the loop wakes a 50 ms sleeper: a blocked loop delays every trigger."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = loop.time()
        await asyncio.sleep(tick)
        if not run.weighing:  # the benchmark's own gc.collect() while weighing is not the triggers' doing
            run.lags.append(max(0.0, loop.time() - started - tick))


async def ours_wait(run: Run, task_id: str, started_at: float, poll_interval: float, deadline: float) -> None:
    from airflow_provider_seedream.triggers.seedream import SeedreamTaskTrigger

    trigger = SeedreamTaskTrigger(task_id, poll_interval=poll_interval, started_at=started_at, deadline=deadline)
    async for event in trigger.run():
        run.events[task_id] = (time.time(), event.payload["status"])


async def naive_wait(run: Run, task_id: str, url: str, interval: float) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    while True:
        state = None
        async with httpx.AsyncClient(headers=headers, timeout=30.0) as client:
            run.stamps.append(time.monotonic())
            try:
                response = await client.get(url + RECORD_INFO_PATH, params={"taskId": task_id})
                state = ((response.json() or {}).get("data") or {}).get("state")
            except (httpx.HTTPError, ValueError, AttributeError):
                pass
        if state in TERMINAL:
            run.events[task_id] = (time.time(), state)
            return
        await asyncio.sleep(interval)


async def run_mode(mode: str, args: argparse.Namespace, emu: Emulator) -> Run:
    scale = args.time_scale
    run = Run(mode)
    emu.reset()
    gc.collect()
    rss_before = rss_bytes()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    monitor = loop.create_task(loop_lag_monitor(run, stop))
    tasks: dict[str, asyncio.Task[None]] = {}
    budget = None

    from airflow_provider_seedream import aio
    from airflow_provider_seedream.hooks.seedream import SeedreamHook

    lease = None
    if mode == "ours":
        # Hold a lease for the whole mode: the triggers join it (same key), and it lets us time-stamp every request
        # the shared client sends without touching the trigger.
        settings = await SeedreamHook().aget_settings()
        lease = aio.lease(settings)
        client, budget = await lease.__aenter__()

        async def stamp(request: httpx.Request) -> None:
            run.stamps.append(time.monotonic())

        client.event_hooks = {**client.event_hooks, "request": [stamp]}

    cpu_before = time.process_time()
    started = time.monotonic()
    submitter = await asyncio.create_subprocess_exec(
        sys.executable, SUBMITTER, emu.url, API_KEY, str(args.tasks), str(args.ramp * scale),
        stdout=asyncio.subprocess.PIPE,
    )
    assert submitter.stdout is not None
    deadline = time.time() + args.timeout * scale
    while line := await submitter.stdout.readline():
        task_id, created = line.decode().split()
        run.created[task_id] = float(created)
        if mode == "ours":
            wait = ours_wait(run, task_id, float(created), args.poll_interval * scale, deadline)
        else:
            wait = naive_wait(run, task_id, emu.url, args.naive_interval * scale)
        tasks[task_id] = loop.create_task(wait)
    if await submitter.wait() != 0 or len(tasks) != args.tasks:
        raise RuntimeError(f"the submitter created {len(tasks)} of {args.tasks} tasks")

    # Let every wait reach its first await (queued for the budget, sleeping, or mid-request), then weigh them.
    for _ in range(20):
        await asyncio.sleep(0)
    run.weighing = True
    gc.collect()
    waiting = sum(1 for task in tasks.values() if not task.done())
    rss_parked = rss_bytes()
    await asyncio.sleep(0.1)
    run.weighing = False

    remaining = max(0.0, deadline - time.time())
    _, pending = await asyncio.wait(tasks.values(), timeout=remaining)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    cpu = time.process_time() - cpu_before
    elapsed = time.monotonic() - started
    if lease is not None:
        await lease.__aexit__(None, None, None)
    stop.set()
    await monitor
    stats = emu.stats()

    run.durations = [(task["completed"] - task["created"]) / scale for task in stats["tasks"].values()
                     if task["completed"] is not None]
    origin = min(run.created.values(), default=0.0)
    for task_id, created in run.created.items():
        completed = stats["tasks"][task_id]["completed"]
        event = run.events.get(task_id)
        run.rows.append({
            "mode": mode,
            "priority": args.priority if mode == "ours" else None,
            "task": task_id,
            "created": (created - origin) / scale,
            "completed": None if completed is None else (completed - origin) / scale,
            "event": None if event is None else (event[0] - origin) / scale,
        })
    latencies = []
    for task_id, (event_at, _) in run.events.items():
        completed = stats["tasks"][task_id]["completed"]
        if completed is not None:
            latencies.append(max(0.0, event_at - completed) / scale)
    requests = stats["requests"]["recordInfo"]
    statuses = [status for _, status in run.events.values()]
    run.figures = {
        "tasks": args.tasks,
        "detected": statuses.count("success") + statuses.count("fail"),
        "detected_of": f"{statuses.count('success') + statuses.count('fail')}/{args.tasks}",
        "other_events": len(statuses) - statuses.count("success") - statuses.count("fail"),
        "undetected": len(pending),
        "requests": requests,
        "requests_per_task": requests / args.tasks,
        "rate_limited_429": stats["rate_limited"]["recordInfo"],
        "peak_rps_sliding": peak_in_window(run.stamps, scale),
        "peak_rps_fixed": peak_in_fixed_windows(run.stamps, scale, started),
        "latency_p50_s": percentile(latencies, 0.5),
        "latency_p95_s": percentile(latencies, 0.95),
        "latency_max_s": max(latencies, default=None),
        "latency_mean_s": sum(latencies) / len(latencies) if latencies else None,
        "cpu_ms_per_poll": 1000.0 * cpu / max(1, len(run.stamps)),
        "cpu_s": cpu,
        "rss_per_waiting_trigger_kb": (rss_parked - rss_before) / 1024 / max(1, waiting),
        "waiting_when_weighed": waiting,
        "loop_lag_p99_ms": 1000.0 * (percentile(run.lags, 0.99) or 0.0),
        "loop_lag_max_ms": 1000.0 * max(run.lags, default=0.0),
        "duration_s": elapsed / scale,
        "submit_spread_s": (max(run.created.values()) - min(run.created.values())) / scale if run.created else 0.0,
    }
    if budget is not None:
        run.figures["budget_paused_s"] = budget.paused_for / scale
    return run


async def warm_up(emu: Emulator, args: argparse.Namespace) -> None:
    """Run one wait to completion first, so one-off imports and caches are not counted as per-trigger cost."""
    from airflow_provider_seedream.triggers.seedream import SeedreamTaskTrigger

    body = edit_body(emu.url, "warm up [emulator: seconds=0]")
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        task_id = (await client.post(emu.url + "/api/v1/jobs/createTask", json=body)).json()["data"]["taskId"]
    await asyncio.sleep(1.0 * args.time_scale)  # past the "recordInfo is null" window
    async for _ in SeedreamTaskTrigger(task_id, poll_interval=args.poll_interval * args.time_scale).run():
        pass


async def main_async(args: argparse.Namespace, emu: Emulator) -> dict[str, Run]:
    await warm_up(emu, args)
    runs: dict[str, Run] = {}
    for mode in [mode.strip() for mode in args.modes.split(",") if mode.strip()]:
        if mode not in ("ours", "naive"):
            raise SystemExit(f"unknown mode {mode!r}")
        runs[mode] = await run_mode(mode, args, emu)
    return runs


def report(args: argparse.Namespace, runs: dict[str, Run], emu_config: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_seedream import connection, waitstate

    typical_run = args.typical_run if args.typical_run is not None else connection.DEFAULT_TYPICAL_RUN_SECONDS
    bound = args.tasks / (2 * args.budget)
    columns: dict[str, dict[str, Any]] = {mode: run.figures for mode, run in runs.items()}
    any_run = next(iter(runs.values()))
    ideal_name = f"fixed {args.naive_interval:g} s, ideal"
    ideal = ideal_fixed_poller(any_run.durations, args.naive_interval)
    columns[ideal_name] = ideal

    def cell(figures: dict[str, Any], key: str, render: Any) -> str:
        return render(figures[key]) if figures.get(key) is not None else "-"

    labels: list[tuple[str, str, Any]] = [
        ("detected / tasks", "detected_of", str),
        ("undetected at timeout", "undetected", str),
        ("peak req/s, sliding 1 s windows", "peak_rps_sliding", str),
        ("peak req/s, fixed 1 s windows", "peak_rps_fixed", str),
        ("HTTP 429 answers", "rate_limited_429", str),
        ("detection latency p50 (s) *", "latency_p50_s", fmt),
        ("detection latency p95 (s) *", "latency_p95_s", fmt),
        ("detection latency max (s) *", "latency_max_s", fmt),
        ("detection latency mean (s) *", "latency_mean_s", fmt),
        ("requests per task", "requests_per_task", fmt),
        ("CPU ms per poll", "cpu_ms_per_poll", lambda v: fmt(v, 3)),
        ("RSS per waiting trigger (KB)", "rss_per_waiting_trigger_kb", lambda v: fmt(v, 1)),
        ("  (waits alive when weighed)", "waiting_when_weighed", str),
        ("event-loop lag p99 (ms wall)", "loop_lag_p99_ms", lambda v: fmt(v, 0)),
        ("event-loop lag max (ms wall)", "loop_lag_max_ms", lambda v: fmt(v, 0)),
        ("run length (s)", "duration_s", lambda v: fmt(v, 1)),
        ("first to last submit (s)", "submit_spread_s", lambda v: fmt(v, 1)),
    ]
    rows = [["", *columns]]
    for label, key, render in labels:
        rows.append([label, *(cell(figures, key, render) for figures in columns.values())])
    print(f"triggerer_scale: {args.tasks} concurrent waits in one event loop; emulator in its own process")
    print(f"  command: {command_line()}")
    print(f"  run times: {json.dumps(args.dist)} (emulated s), seed {args.seed}; all tasks submitted over "
          f"{args.ramp:g} s, each wait starts when its task is created")
    print(f"  time scale {args.time_scale:g}: run times, kie's windows, poll intervals and the budget are compressed "
          f"together; every time below is in emulated seconds except CPU, RSS and loop lag")
    print(f"  ours: SeedreamTaskTrigger.run(), poll_interval {args.poll_interval:g} s, budget {args.budget:g}/s per "
          f"key, priority '{args.priority}', typical_run_seconds {typical_run:g}")
    print(f"  naive: a new httpx.AsyncClient per poll, fixed {args.naive_interval:g} s, a 429 is just another miss")
    print(f"  '{ideal_name}': the same fixed poll computed from the run times, with no CPU cost and no rate limit")
    print(f"  kie's limit as the emulator enforces it: {emu_config['record_info_limit']} recordInfo per "
          f"{emu_config['record_info_window_seconds']:g} s per key (sliding window); 429 beyond")
    print()
    print(table(rows))
    print("  * over the tasks detected before the timeout; tasks never detected are not in these figures")
    print()
    print(f"round-robin bound N/(2*budget) = {args.tasks}/(2*{args.budget:g}) = {bound:.2f} s")
    targets: dict[str, bool] = {}
    ours = runs.get("ours")
    if ours is not None:
        f = ours.figures
        groups = {
            "N = 1000": {
                "zero_429": f["rate_limited_429"] == 0,
                "peak_rate_within_budget": f["peak_rps_sliding"] <= args.budget,
                "everything_detected": f["detected"] == args.tasks,
                "p50_at_or_below_round_robin_bound":  # over every task: a p50 of the early few proves nothing
                    f["detected"] == args.tasks and f["latency_p50_s"] is not None and f["latency_p50_s"] <= bound,
                "rss_under_20_kb_per_waiting_trigger": f["rss_per_waiting_trigger_kb"] < 20.0,
            },
            "N = 20": {
                "p95_under_3_s": f["latency_p95_s"] is not None and f["latency_p95_s"] < 3.0,
                f"fewer_requests_per_task_than_fixed_{args.naive_interval:g}_s":
                    f["requests_per_task"] < ideal["requests_per_task"],
            },
        }
        if "naive" in runs:
            groups["N = 1000"]["cpu_per_poll_at_most_a_third_of_naive"] = \
                f["cpu_ms_per_poll"] <= runs["naive"].figures["cpu_ms_per_poll"] / 3
        print(f"targets of the issue, evaluated on this run (N = {args.tasks}):")
        for group, checks in groups.items():
            print(f"  set for {group}:")
            for name, met in checks.items():
                print(f"    {'met    ' if met else 'NOT met'}  {name}")
                targets[name] = met
    return {
        "benchmark": "triggerer_scale",
        "tasks": args.tasks,
        "time_scale": args.time_scale,
        "poll_interval": args.poll_interval,
        "naive_interval": args.naive_interval,
        "budget": args.budget,
        "priority": args.priority,
        "typical_run_seconds": typical_run,
        "ramp": args.ramp,
        "dist": args.dist,
        "seed": args.seed,
        "round_robin_bound_s": bound,
        **{mode: run.figures for mode, run in runs.items()},
        "ideal_fixed": ideal,
        "targets": targets,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scale = args.time_scale
    with Emulator(scale, ["--task-seconds-dist", json.dumps(args.dist), "--seed", str(args.seed)]) as emu:
        # Submits are not what this benchmark measures (see submit_burst.py): let them all in at once. kie's
        # recordInfo limit (10 per emulated second per key) stays on.
        emu_config = emu.configure(create_limit=10 ** 6)
        from airflow_provider_seedream import connection, waitstate

        typical_run = args.typical_run if args.typical_run is not None else connection.DEFAULT_TYPICAL_RUN_SECONDS
        use_connection(emu.url, args.budget, typical_run * scale)
        scale_poll_budget(scale)
        if args.priority == "round-robin":
            # Rank every query at the moment it asks: the budget then serves them in the order they asked.
            waitstate.likely_done_at = lambda started, last_running, typical: time.time()  # type: ignore[assignment]
        with output_to(args.trigger_log):
            runs = asyncio.run(main_async(args, emu))
    if args.dump:  # this run's rows only: a replay of the file replays this run
        Path(args.dump).write_text("".join(json.dumps(row) + "\n" for run in runs.values() for row in run.rows),
                                   encoding="utf-8")
    closing_json(report(args, runs, emu_config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
