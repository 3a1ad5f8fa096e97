"""Simulate N waits sharing one paced poll budget, to compare the orders it could serve them in.

Run by hand (see ``benchmarks/README.md``)::

    .venv/bin/python benchmarks/simulate_budget.py --tasks 1000 --ramp 0 2 60 --seeds 20
    .venv/bin/python benchmarks/simulate_budget.py --replay dump.jsonl   # the run times of a triggerer_scale run

A discrete-event model of what ``triggerer_scale.py`` measures, without servers or clocks: each wait asks once at its
start, then again after ``schedule.poll_delay`` (the real function); the budget grants one query every ``1/budget`` s
to the waiting query that ranks first (ties by arrival). The orders compared:

- ``round-robin``: by the moment the query asked;
- ``young-first``: the trigger's order before ``likely_done_at``: a task younger than 4 poll intervals ranks as if
  it asked when it reaches that age;
- ``likely-first``: ``schedule.likely_done_at`` (the trigger's order): the task most likely finished first.

It also prints, per order, the mean detection latency, because the mean has a floor that no order can go below when
the waits start together: every query spent on a task that is still running pushes all later detections back by
``1/budget``, and a query on a task nobody has asked about yet fails with the chance ``S(t)`` that an edit runs
longer than ``t``, which is the best any query can do when nothing tells the tasks apart. Over the burst that adds up
to about ``budget * E[run time]`` failed queries, so the mean latency stays near ``(N - 1) / (2 * budget)``, the
round-robin bound itself, whatever the order; an order can only move latency between tasks (p50 against p95).
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import statistics
import sys
from collections.abc import Callable
from typing import Any
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEFAULT_DIST, closing_json, command_line, percentile, table  # noqa: E402

from airflow_provider_seedream import connection, schedule  # noqa: E402
from seedream_emulator.scenario import sample_duration  # noqa: E402 - the emulator's own draw

# (now, started, last_running, poll_interval, typical_run) -> the query's rank, an absolute time: lowest goes first
Rank = Callable[[float, float, "float | None", float, float], float]
ORDERS: dict[str, Rank] = {
    "round-robin": lambda now, started, last, base, typical: now,
    "young-first": lambda now, started, last, base, typical: now + max(0.0, 4 * base - (now - started)),
    "likely-first": lambda now, started, last, base, typical: schedule.likely_done_at(started, last, typical),
}


def simulate(starts: list[float], done_at: list[float], budget: float, base: float, typical: float, rank: Rank,
             seed: int) -> dict[str, float]:
    """Serve the waits ``starts`` (tasks finishing at ``done_at``) through one budget in the order ``rank`` gives."""
    tasks = len(starts)
    rng = random.Random(seed)
    asks = [(start, index) for index, start in enumerate(starts)]  # (moment a wait asks, task)
    heapq.heapify(asks)
    queue: list[tuple[float, int, int]] = []
    last_running: list[float | None] = [None] * tasks
    arrival = 0
    next_free = -math.inf
    polls = [0] * tasks
    detected = [0.0] * tasks
    remaining = tasks
    now = 0.0
    while remaining:
        grant_at = max(next_free, now) if queue else math.inf
        if asks and asks[0][0] <= grant_at:
            now, index = heapq.heappop(asks)
            key = rank(now, starts[index], last_running[index], base, typical)
            heapq.heappush(queue, (key, arrival, index))
            arrival += 1
            continue
        now = grant_at
        _, _, index = heapq.heappop(queue)
        next_free = now + 1.0 / budget
        polls[index] += 1
        if now >= done_at[index]:
            detected[index] = now
            remaining -= 1
        else:
            last_running[index] = now
            heapq.heappush(asks, (now + schedule.poll_delay(now - starts[index], base, rng.random), index))
    latencies = [found - done for found, done in zip(detected, done_at)]
    return {
        "p50_s": percentile(latencies, 0.5) or 0.0,
        "p95_s": percentile(latencies, 0.95) or 0.0,
        "mean_s": statistics.mean(latencies),
        "requests_per_task": sum(polls) / tasks,
    }


def drawn(tasks: int, ramp: float, dist: dict[str, Any], seed: int) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    starts = [ramp * index / tasks for index in range(tasks)]
    return starts, [start + sample_duration(dist, rng) for start in starts]


def replayed(path: str) -> tuple[list[float], list[float]]:
    """Read the waits of a ``triggerer_scale.py --dump`` file (mode ``ours``): when each began and its task ended."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    rows = [row for row in rows if row["mode"] == "ours" and row["completed"] is not None]
    return [row["created"] for row in rows], [row["completed"] for row in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--budget", type=float, default=8.0, help="grants per second (default 8)")
    parser.add_argument("--poll-interval", type=float, default=5.0, help="base poll interval (default 5 s)")
    parser.add_argument("--typical-run", type=float, default=connection.DEFAULT_TYPICAL_RUN_SECONDS,
                        help="typical_run_seconds the waits assume (default: the provider's, 20 s)")
    parser.add_argument("--ramp", type=float, nargs="+", default=[0.0, 2.0, 60.0],
                        help="seconds over which the tasks start (default 0 2 60)")
    parser.add_argument("--dist", type=json.loads, default=DEFAULT_DIST,
                        help="run-time distribution, as the emulator's --task-seconds-dist takes it")
    parser.add_argument("--seed", type=int, default=1, help="first seed of the run-time draws (default 1)")
    parser.add_argument("--seeds", type=int, default=1, help="draws per row, seeds seed..seed+N-1 (default 1)")
    parser.add_argument("--replay", metavar="FILE",
                        help="instead of drawing, use the starts and completions of a triggerer_scale.py --dump")
    args = parser.parse_args(argv)

    if args.replay:
        starts, done_at = replayed(args.replay)
        scenarios = [(f"replay of {Path(args.replay).name}", [(starts, done_at)])]
        tasks = len(starts)
    else:
        tasks = args.tasks
        scenarios = [(f"{ramp:g}", [drawn(tasks, ramp, args.dist, seed)
                                   for seed in range(args.seed, args.seed + args.seeds)]) for ramp in args.ramp]
    bound = tasks / (2 * args.budget)
    rows = [["starts over (s)", "order", "p50 (s)", "p95 (s)", "mean (s)", "requests/task", "p50 <= bound"]]
    results = []
    for label, draws in scenarios:
        for name, rank in ORDERS.items():
            runs = [simulate(starts, done_at, args.budget, args.poll_interval, args.typical_run, rank, args.seed)
                    for starts, done_at in draws]
            figures = {key: statistics.mean(run[key] for run in runs) for key in runs[0]}
            met = sum(run["p50_s"] <= bound for run in runs)
            results.append({"starts": label, "order": name, "draws": len(runs), "p50_at_or_below_bound": met,
                            **figures})
            rows.append([label, name, f"{figures['p50_s']:.2f}", f"{figures['p95_s']:.2f}",
                         f"{figures['mean_s']:.2f}", f"{figures['requests_per_task']:.2f}", f"{met}/{len(runs)}"])
    print(f"simulate_budget: {tasks} waits, budget {args.budget:g}/s, base {args.poll_interval:g} s, typical run "
          f"assumed {args.typical_run:g} s, run times {'replayed' if args.replay else json.dumps(args.dist)}")
    print(f"  command: {command_line()}")
    print(f"  round-robin bound N/(2*budget) = {bound:.2f} s; figures are means over {args.seeds} draw(s) per row "
          "unless replayed")
    print()
    print(table(rows))
    closing_json({"benchmark": "simulate_budget", "tasks": tasks, "budget": args.budget,
                  "poll_interval": args.poll_interval, "typical_run": args.typical_run,
                  "round_robin_bound_s": bound, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
