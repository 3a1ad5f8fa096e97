"""Simulate N waits sharing one paced poll budget, to compare priority rules without servers or clocks.

Run by hand (see ``benchmarks/README.md``)::

    .venv/bin/python benchmarks/simulate_budget.py --tasks 1000 --ramp 0 60 300

A discrete-event model of what ``triggerer_scale.py`` measures: each wait asks once at its start, then again after
``schedule.poll_delay`` (the real function); the budget grants one query every ``1/budget`` s to the waiting query
that ranks first (asked-at + priority, ties by arrival). It shows which orders can beat round-robin and which cannot:
when all tasks start together, none can (they are indistinguishable, and round-robin's mean latency is N/(2*budget)).
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEFAULT_DIST, closing_json, command_line, percentile, table  # noqa: E402

from airflow_provider_seedream import schedule  # noqa: E402

Priority = Callable[[float, float], float]  # (elapsed, poll_interval) -> offset in seconds
PRIORITIES: dict[str, Priority] = {
    "round-robin": lambda elapsed, base: 0.0,
    "oldest-first": lambda elapsed, base: -elapsed,
    "young-first": lambda elapsed, base: schedule.poll_priority(elapsed, base),
}


def draw(dist: dict[str, float], rng: random.Random) -> float:
    value = dist["median"] * math.exp(dist.get("sigma", 0.5) * rng.gauss(0.0, 1.0))
    return min(max(value, dist.get("min", 0.0)), dist.get("max", math.inf))


def simulate(tasks: int, budget: float, base: float, ramp: float, priority: Priority, dist: dict[str, float],
             seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    starts = [ramp * index / tasks for index in range(tasks)]
    done_at = [start + draw(dist, rng) for start in starts]
    asks = [(start, index) for index, start in enumerate(starts)]  # (moment a wait asks, task)
    heapq.heapify(asks)
    queue: list[tuple[float, int, int]] = []
    arrival = 0
    next_free = 0.0
    polls = [0] * tasks
    detected = [0.0] * tasks
    remaining = tasks
    now = 0.0
    while remaining:
        grant_at = max(next_free, now) if queue else math.inf
        if asks and asks[0][0] <= grant_at:
            now, index = heapq.heappop(asks)
            heapq.heappush(queue, (now + priority(now - starts[index], base), arrival, index))
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
            heapq.heappush(asks, (now + schedule.poll_delay(now - starts[index], base, rng.random), index))
    latencies = [found - done for found, done in zip(detected, done_at)]
    return {
        "p50_s": percentile(latencies, 0.5) or 0.0,
        "p95_s": percentile(latencies, 0.95) or 0.0,
        "mean_s": statistics.mean(latencies),
        "requests_per_task": sum(polls) / tasks,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--budget", type=float, default=8.0, help="grants per second (default 8)")
    parser.add_argument("--poll-interval", type=float, default=5.0, help="base poll interval (default 5 s)")
    parser.add_argument("--ramp", type=float, nargs="+", default=[0.0, 60.0, 300.0],
                        help="seconds over which the tasks start (default 0 60 300)")
    parser.add_argument("--dist", type=json.loads, default=DEFAULT_DIST, help="lognormal run-time distribution")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    bound = args.tasks / (2 * args.budget)
    rows = [["ramp (s)", "priority", "p50 (s)", "p95 (s)", "mean (s)", "requests/task"]]
    results = []
    for ramp in args.ramp:
        for name, priority in PRIORITIES.items():
            figures = simulate(args.tasks, args.budget, args.poll_interval, ramp, priority, args.dist, args.seed)
            results.append({"ramp": ramp, "priority": name, **figures})
            rows.append([f"{ramp:g}", name, f"{figures['p50_s']:.2f}", f"{figures['p95_s']:.2f}",
                         f"{figures['mean_s']:.2f}", f"{figures['requests_per_task']:.2f}"])
    print(f"simulate_budget: {args.tasks} waits, budget {args.budget:g}/s, base {args.poll_interval:g} s, "
          f"run times {json.dumps(args.dist)}")
    print(f"  command: {command_line()}")
    print(f"  round-robin bound N/(2*budget) = {bound:.2f} s")
    print()
    print(table(rows))
    closing_json({"benchmark": "simulate_budget", "tasks": args.tasks, "budget": args.budget,
                  "poll_interval": args.poll_interval, "round_robin_bound_s": bound, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
