"""N submissions at once against kie's createTask limit: wall time against the account's rate, failures, duplicates.

Run by hand (see ``benchmarks/README.md``)::

    .venv/bin/python benchmarks/submit_burst.py --tasks 200
    .venv/bin/python benchmarks/submit_burst.py --tasks 200 --pool 20      # as behind an Airflow pool of 20 slots

Each submission is what one mapped ``SeedreamEditOperator`` does in its worker: ``SeedreamHook().submit_task()``
(sync, ``requests``, retrying 429s with ``Retry-After`` and jittered backoff). N threads stand in for N workers and
start together. The emulator (own process) enforces kie's 20 createTask per 10 s per key and rejects, not queues,
what is beyond. Every prompt is unique, so a task created twice for one submission shows up as a duplicate.

``--time-scale`` compresses time (0.1: the 10-second window lasts 1 wall second) and scales the hook's retry base
with it; times are reported in emulated seconds. The default is real time, because ``Retry-After`` is a whole number
of seconds (HTTP allows nothing finer, and the emulator rounds up as a server must): compressed tenfold, that rounding
becomes up to 10 emulated seconds per window, a cost real clients never pay. Compressed runs are still useful to
compare retry policies quickly; judge the 1.15x target at ``--time-scale 1`` (about 100 s for 200 submits).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    Emulator,
    closing_json,
    command_line,
    fmt,
    output_to,
    peak_in_window,
    percentile,
    use_connection,
)

KIE_CREATE_LIMIT = 20
KIE_CREATE_WINDOW = 10.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200, help="submissions started at once (default 200)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="wall seconds per emulated second (default 1: real time; see the module docstring)")
    parser.add_argument("--pool", type=int, default=0,
                        help="at most this many submissions in flight, as an Airflow pool would allow "
                             "(default 0: no pool, all N at once)")
    parser.add_argument("--retry-base", type=float, default=1.0,
                        help="the hook's retry_base in emulated seconds (default 1, the hook's default)")
    parser.add_argument("--submit-timeout", type=float, default=600.0,
                        help="the hook's submit_timeout in emulated seconds (default 600, the hook's default)")
    parser.add_argument("--log", default=os.devnull, help="where the hook's log lines go (default: discarded)")
    return parser.parse_args(argv)


def theoretical_minimum(tasks: int, limit: int = KIE_CREATE_LIMIT, window: float = KIE_CREATE_WINDOW) -> float:
    """Emulated seconds from the burst to the last acceptance at the account's rate.

    ``limit`` go through at once, then ``limit`` more each time the sliding window has moved on by ``window``: the
    N-th acceptance cannot come before ``window * (ceil(N / limit) - 1)``.
    """
    return window * (math.ceil(tasks / limit) - 1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scale = args.time_scale
    with Emulator(scale) as emu:
        emu_config = emu.configure(rate_limits=True)
        use_connection(emu.url)
        from airflow_provider_seedream import request
        from airflow_provider_seedream.hooks.seedream import SeedreamHook


        image = f"{emu.url}/samples/sneaker-1x1.png"
        edits = [request.build_input(request.TaskRequest(f"edit number {index}: put the sneaker on sand",
                                                              [image])) for index in range(args.tasks)]
        # Warm up: connection lookup, imports, one accepted submit (then forget it).
        with output_to(args.log):
            warm = SeedreamHook(retry_base=args.retry_base * scale)
            warm.submit_task(edits[0])
        emu.reset()
        warm.pacer.clear()  # the emulator forgot the warm-up submit; the host's createTask pace must forget it too

        start = threading.Barrier(args.tasks + 1)
        pool = threading.BoundedSemaphore(args.pool) if args.pool > 0 else None
        results: list[dict[str, Any]] = [{} for _ in range(args.tasks)]

        def submit(index: int) -> None:
            hook = SeedreamHook(retry_base=args.retry_base * scale, submit_timeout=args.submit_timeout * scale)
            start.wait()
            try:
                if pool is not None:
                    with pool:
                        task_id = hook.submit_task(edits[index])
                else:
                    task_id = hook.submit_task(edits[index])
                results[index] = {"task_id": task_id, "at": time.monotonic()}
            except Exception as error:  # a failed submission is a figure here, not a crash
                results[index] = {"error": f"{type(error).__name__}: {error}", "at": time.monotonic()}

        threads = [threading.Thread(target=submit, args=(index,), daemon=True) for index in range(args.tasks)]
        with output_to(args.log):
            for thread in threads:
                thread.start()
            start.wait()
            began = time.monotonic()
            for thread in threads:
                thread.join()
        stats = emu.stats()

    accepted = [result for result in results if "task_id" in result]
    failures = [result["error"] for result in results if "error" in result]
    prompts = Counter(task["input"]["prompt"] for task in stats["tasks"].values())
    duplicates = sum(count - 1 for count in prompts.values())
    unknown_ids = {result["task_id"] for result in accepted} - set(stats["created_task_ids"])
    finish = [(result["at"] - began) / scale for result in accepted]
    wall = max(finish, default=0.0)
    minimum = theoretical_minimum(args.tasks)
    ratio = wall / minimum if minimum else None
    requests = stats["requests"]["createTask"]
    refused = stats["rate_limited"]["createTask"]
    created_per_window = _peak_created(stats, KIE_CREATE_WINDOW * scale)

    print(f"submit_burst: {args.tasks} submissions at once; emulator in its own process")
    print(f"  command: {command_line()}")
    print(f"  kie's limit as the emulator enforces it: {emu_config['create_limit']} createTask per "
          f"{emu_config['create_window_seconds']:g} s per key (sliding window), 429 + Retry-After beyond")
    print(f"  time scale {scale:g} (times in emulated seconds); hook retry_base {args.retry_base:g} s, "
          f"submit_timeout {args.submit_timeout:g} s; pool: {args.pool or 'none'}; retry wait: "
          f"the hook as it is")
    print()
    print(f"  accepted                         {len(accepted)}/{args.tasks}")
    print(f"  failed                           {len(failures)}")
    print(f"  duplicates (task created twice)  {duplicates}")
    print(f"  ids not known to the emulator    {len(unknown_ids)}")
    print(f"  createTask requests              {requests} ({refused} answered 429)")
    print(f"  most tasks created in one window {created_per_window} (limit {emu_config['create_limit']})")
    print(f"  last acceptance after            {wall:.1f} s")
    print(f"  theoretical minimum              {minimum:.1f} s  ({KIE_CREATE_LIMIT} at once, then "
          f"{KIE_CREATE_LIMIT} per {KIE_CREATE_WINDOW:g} s)")
    print(f"  ratio                            {fmt(ratio, 3)}  (target: at most 1.15)")
    p50, p95 = fmt(percentile(finish, 0.5), 1), fmt(percentile(finish, 0.95), 1)
    print(f"  acceptance time p50 / p95        {p50} / {p95} s")
    for error in sorted(set(failures))[:5]:
        print(f"  failure: {error}")
    targets = {
        "within_1.15x_of_minimum": ratio is not None and ratio <= 1.15,
        "zero_failures": not failures,
        "zero_duplicates": duplicates == 0 and not unknown_ids,
    }
    for name, met in targets.items():
        print(f"  {'met    ' if met else 'NOT met'}  {name}")
    closing_json({
        "benchmark": "submit_burst",
        "tasks": args.tasks,
        "time_scale": scale,
        "pool": args.pool,
        "retry_base": args.retry_base,
        "accepted": len(accepted),
        "failures": len(failures),
        "duplicates": duplicates,
        "unknown_ids": len(unknown_ids),
        "requests": requests,
        "rate_limited_429": refused,
        "peak_created_per_window": created_per_window,
        "wall_s": wall,
        "theoretical_minimum_s": minimum,
        "ratio": ratio,
        "targets": targets,
    })
    return 0


def _peak_created(stats: dict[str, Any], window: float) -> int:
    return peak_in_window([task["created"] for task in stats["tasks"].values()], window)


if __name__ == "__main__":
    sys.exit(main())
