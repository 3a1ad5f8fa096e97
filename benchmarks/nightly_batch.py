"""A night's batch on a real Airflow stack: N edits submitted, waited for and stored, against kie's limits.

Run by hand (see ``benchmarks/README.md``)::

    .venv/bin/python benchmarks/nightly_batch.py --tasks 200 --layout batch
    .venv/bin/python benchmarks/nightly_batch.py --tasks 200 --layout mapped --runs 5
    .venv/bin/python benchmarks/nightly_batch.py --tasks 200 --layout pair

Starts the emulator (its own process, kie's limits on: 20 createTask per 10 s, 10 recordInfo per s per key, refusals
answered 429 with Retry-After) and a real Airflow stack on a fresh home (API server, scheduler, DAG processor,
triggerer; LocalExecutor, SQLite), the harness of the end-to-end tests but with Airflow's defaults for the
components' loops and task heartbeats, then triggers ``--runs`` DAG runs one after the other, each editing N photos
and storing every result under one output folder. Layouts:

- ``batch``: one ``SeedreamBatchEditOperator`` with N edits (one worker submits, one deferral waits, one resume
  stores).
- ``batch-blocking``: the same with ``deferrable=False``: the worker waits, storing each image as its task succeeds.
- ``mapped``: one mapped deferrable ``SeedreamEditOperator(wait_for_completion=True)`` per photo, no ``output_path``
  (the triggerer ends each task: one worker run per photo; nothing is stored).
- ``mapped-store``: the same with ``output_path`` (each task resumes on a worker to store its image).
- ``pair``: a mapped ``SeedreamEditOperator`` (submit only), then a mapped deferrable ``SeedreamTaskSensor`` with
  ``output_path``.

In the layouts that store results, the emulator renders each result picture when it first reports the task's success
(``prerender_results``), as kie's files exist by then: downloading one is a transfer, not 0.1 s of the emulator's
drawing on the same 2 cores. Where nothing is downloaded, nothing is drawn. The DAG file holds only the layout
measured.

Run times are drawn by the emulator around ``--run-seconds`` (lognormal, sigma 0.25, clipped to 0.5x..2x). For each
run it prints: wall time (DAG run start to end, from the metadata DB), the floor, their ratio, the same from the
first createTask the emulator received, createTask calls and 429s, recordInfo 429s, task instances failed at the end
and retried on the way, worker runs (task log "starting" lines: a deferred task that resumes runs twice), images
stored, and the CPU seconds each part of the stack spent meanwhile (``CpuMeter``). The floor is the earliest this
run's own tasks could all have finished at the account's rate: the k-th createTask (k from 0, in the order kie
accepted them) cannot be accepted before 10 * floor(k / 20) s after the first, and each task takes the run time the
emulator drew for it, so floor = max over k of that moment plus its run time. Ends with one JSON line.

The stack caches bytecode, as a provider installed by pip has it; ``--no-bytecode`` keeps this machine's
``PYTHONDONTWRITEBYTECODE=1``, under which every task process compiles the editable provider from source.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))
sys.path.insert(0, str(HERE.parent / "tests"))

from _common import closing_json, command_line, fmt  # noqa: E402
from seedream_stack import FINISHED_RUN_STATES, AirflowStack, EmulatorProcess, wait_for  # noqa: E402
from support import conn_json  # noqa: E402

API_KEY = "benchmark-key"
KIE_CREATE_LIMIT = 20
KIE_CREATE_WINDOW = 10.0
LAYOUTS = {"batch": "nightly_batch", "batch-blocking": "nightly_batch_blocking", "mapped": "nightly_mapped", "mapped-store": "nightly_mapped_store",
           "pair": "nightly_pair"}

DAG_FILE = '''
"""The three layouts of a night's batch, for benchmarks/nightly_batch.py."""
import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_seedream.operators.seedream import SeedreamBatchEditOperator, SeedreamEditOperator
from airflow_provider_seedream.sensors.seedream import SeedreamTaskSensor

IMAGE_URL = os.environ["SEEDREAM_EXAMPLE_IMAGE_URL"]
OUTPUT = os.environ["SEEDREAM_EXAMPLE_OUTPUT_DIR"]
# Each operator's own default unless the benchmark was given --poll-interval.
POLL = ({"poll_interval": float(os.environ["SEEDREAM_EXAMPLE_POLL_INTERVAL"])}
        if "SEEDREAM_EXAMPLE_POLL_INTERVAL" in os.environ else {})
POKE = {"poke_interval": POLL["poll_interval"]} if POLL else {}
# The batch operator's own default (0: defer at once) unless the benchmark was given --defer-after.
LINGER = ({"defer_after": float(os.environ["SEEDREAM_EXAMPLE_DEFER_AFTER"])}
          if "SEEDREAM_EXAMPLE_DEFER_AFTER" in os.environ else {})
COMMON = {
    "schedule": None,
    "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"),
    "catchup": False,
    "params": {"count": Param(200, type="integer"), "tag": Param("night", type="string")},
}
RETRIES = {"retries": 2, "retry_delay": timedelta(seconds=2)}


def photos(params):
    return [f"Put product {params['tag']}-{i} on a white marble table" for i in range(params["count"])]


with DAG("nightly_batch", **COMMON):
    @task
    def edits(params=None):
        return [{"prompt": prompt, "image_urls": [IMAGE_URL]} for prompt in photos(params)]

    SeedreamBatchEditOperator(task_id="batch", edits=edits(), output_path=OUTPUT, **POLL, **LINGER,
                              timeout=3600, **RETRIES)

with DAG("nightly_batch_blocking", **COMMON):
    @task
    def edits(params=None):
        return [{"prompt": prompt, "image_urls": [IMAGE_URL]} for prompt in photos(params)]

    SeedreamBatchEditOperator(task_id="batch", edits=edits(), output_path=OUTPUT, **POLL,
                              timeout=3600, deferrable=False, **RETRIES)

with DAG("nightly_mapped", **COMMON):
    @task
    def prompts(params=None):
        return photos(params)

    SeedreamEditOperator.partial(task_id="edit", image_urls=[IMAGE_URL], wait_for_completion=True, deferrable=True,
                                 **POLL, timeout=3600, **RETRIES).expand(prompt=prompts())

with DAG("nightly_mapped_store", **COMMON):
    @task
    def prompts(params=None):
        return photos(params)

    SeedreamEditOperator.partial(task_id="edit", image_urls=[IMAGE_URL], wait_for_completion=True, deferrable=True,
                                 output_path=OUTPUT, **POLL, timeout=3600, **RETRIES
                                 ).expand(prompt=prompts())

with DAG("nightly_pair", **COMMON):
    @task
    def prompts(params=None):
        return photos(params)

    submitted = SeedreamEditOperator.partial(task_id="edit", image_urls=[IMAGE_URL], **RETRIES
                                             ).expand(prompt=prompts())
    SeedreamTaskSensor.partial(task_id="wait", output_path=OUTPUT, **POKE, timeout=3600, **RETRIES
                               ).expand(seedream_task_id=submitted.output)
'''


#: The layouts that download and store their results (the others leave the emulator nothing to draw).
STORING_LAYOUTS = ("batch", "batch-blocking", "mapped-store", "pair")


def dag_file(dag_id: str) -> str:
    """The DAG file with the one DAG measured: each task process parses its whole file, and four unused DAGs in it
    would cost every one of 200 mapped tasks their parsing too (a deployment keeps one DAG per file)."""
    header, *blocks = DAG_FILE.split("\nwith DAG(")
    (block,) = [b for b in blocks if b.startswith(f'"{dag_id}"')]
    return f"{header}\nwith DAG({block}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200, help="photos per DAG run (default 200)")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="batch", help="how the DAG is laid out")
    parser.add_argument("--runs", type=int, default=1, help="consecutive DAG runs on the same stack (default 1)")
    parser.add_argument("--run-seconds", type=float, default=30.0,
                        help="median run time of an edit, drawn by the emulator (default 30)")
    parser.add_argument("--parallelism", type=int, default=16,
                        help="[core] parallelism and max_active_tasks_per_dag (default 16)")
    parser.add_argument("--poll-interval", type=float, default=None,
                        help="the operators' poll_interval / poke_interval (default: each one's own: 2 s for the "
                             "batch operator, 5 s for the others)")
    parser.add_argument("--defer-after", type=float, default=None,
                        help="the batch operator's defer_after (default: its own, 0)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the emulator's run-time draws")
    parser.add_argument("--warmup", type=int, default=2,
                        help="photos in one DAG run before the measured ones, not counted (default 2; 0: none): the "
                             "API server answers its first task-start call seconds late (8.6 s measured), which a "
                             "long-running deployment pays once, not per night")
    parser.add_argument("--no-bytecode", action="store_true",
                        help="let the stack compile every module that has no bytecode on each import, as this "
                             "machine's PYTHONDONTWRITEBYTECODE=1 does with the editable install (default: cached, "
                             "as a provider installed by pip has it; refuses to start while the package has "
                             "__pycache__ folders from a cached run)")
    parser.add_argument("--keep", action="store_true", help="keep the stack's home (logs, DB, images)")
    return parser.parse_args(argv)


def floor_seconds(tasks: list[dict[str, Any]]) -> tuple[float, float]:
    """Return (floor, first createTask time) for the tasks of one run, in the order kie created them."""
    ordered = sorted(tasks, key=lambda t: t["created"])
    first = ordered[0]["created"]
    floor = max(KIE_CREATE_WINDOW * (k // KIE_CREATE_LIMIT) + t["seconds"] for k, t in enumerate(ordered))
    return floor, first


def worker_runs(stack: AirflowStack, dag_id: str, run_id: str) -> int:
    """Worker runs of every task of the run: each run of a task process logs one "starting" line per attempt file
    (a deferral and its resume write to the same attempt's file)."""
    folder = stack.logs / f"dag_id={dag_id}" / f"run_id={run_id}"
    runs = 0
    for path in folder.rglob("attempt=*.log"):
        if ".trigger." in path.name:
            continue
        for line in path.read_text(errors="replace").splitlines():
            try:
                event = str(json.loads(line).get("event", ""))
            except ValueError:
                continue
            if event.startswith("DAG bundles loaded"):
                runs += 1
    return runs


class CpuMeter:
    """CPU seconds spent by each part of the stack while a run lasts, sampled every 2 s with psutil.

    Parts: each component's own process, the processes its main process started (for the scheduler: the
    LocalExecutor's workers, which supervise the task processes), and the task processes themselves (the workers'
    children, counted exactly when reaped). ``machine`` is the busy time of the whole machine, so what no part names
    (short-lived helpers, the benchmark itself) is its difference to their sum.
    """

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots
        self._first: dict[tuple[str, int], float] = {}
        self._last: dict[tuple[str, int], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        import psutil

        children: dict[int, list[psutil.Process]] = {}
        for proc in psutil.process_iter(["ppid"]):  # one pass over /proc for every part
            children.setdefault(proc.info["ppid"], []).append(proc)
        for name, pid in self.roots.items():
            try:
                root = psutil.Process(pid)
            except psutil.Error:
                continue
            kids = children.get(pid, [])
            for part, proc, own in [(name, root, True)] + [(f"{name} children", c, True) for c in kids] + [
                    (f"{name} grandchildren", c, False) for c in kids]:
                try:
                    times = proc.cpu_times()
                except psutil.Error:
                    continue
                spent = times.user + times.system if own else times.children_user + times.children_system
                key = (part, proc.pid)
                self._first.setdefault(key, spent)
                self._last[key] = spent

    def _loop(self) -> None:
        while not self._stop.wait(2.0):
            self._sample()

    def __enter__(self) -> CpuMeter:
        import psutil

        self._machine = psutil.cpu_times()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        import psutil

        self._stop.set()
        self._thread.join()
        self._sample()
        end = psutil.cpu_times()
        spent: dict[str, float] = {}
        for (part, pid), last in self._last.items():
            spent[part] = spent.get(part, 0.0) + last - self._first[(part, pid)]
        busy = sum(getattr(end, f) - getattr(self._machine, f) for f in ("user", "system", "nice", "irq", "softirq"))
        self.parts = {part: round(seconds, 1) for part, seconds in sorted(spent.items()) if seconds >= 0.05}
        self.parts["machine"] = round(busy, 1)


def finished_state(stack: AirflowStack, run_id: str) -> str | None:
    """The run's state once it is finished, read from the metadata DB, which costs the stack nothing.

    Not through the REST API as the end-to-end tests do: their watch (every task instance of the run and the run
    itself, five times a second) cost the API server about 12 CPU seconds in a mapped run of only 20 photos (26.5
    against 14.7, ``CpuMeter``).
    """
    stack.check_alive([name for name in stack.COMPONENTS if name != "triggerer"])
    try:
        rows = stack.query("SELECT state FROM dag_run WHERE run_id = ?", run_id)
    except sqlite3.Error:  # the scheduler holds the write lock for a moment: ask again at the next poll
        return None
    return rows[0][0] if rows and rows[0][0] in FINISHED_RUN_STATES else None


def one_run(stack: AirflowStack, kie: EmulatorProcess, args: argparse.Namespace, number: int,
            output: Path) -> dict[str, Any]:
    dag_id = LAYOUTS[args.layout]
    tag = f"r{number}-{int(time.time())}"
    before = kie.stats()
    roots = {name: c.proc.pid for name, c in stack.components.items() if c.proc is not None}
    assert kie.proc is not None
    with CpuMeter({**roots, "emulator": kie.proc.pid}) as cpu:
        run_id = stack.trigger(dag_id, {"count": args.tasks, "tag": tag})
        state = wait_for(functools.partial(finished_state, stack, run_id), max(900.0, args.tasks * 10.0),
                         f"run {run_id} to finish", interval=1.0)
    after = kie.stats()
    tasks = [t for t in after["tasks"].values() if tag in ((t.get("input") or {}).get("prompt") or "")]
    prompts = [(t.get("input") or {}).get("prompt") for t in tasks]
    floor, first_submit = floor_seconds(tasks) if tasks else (math.nan, math.nan)
    start, end = stack.query("SELECT start_date, end_date FROM dag_run WHERE run_id = ?", run_id)[0]
    import pendulum

    started, ended = pendulum.parse(start).timestamp(), pendulum.parse(end).timestamp()
    tis = stack.query("SELECT task_id, map_index, state, try_number FROM task_instance WHERE run_id = ?", run_id)
    from airflow_provider_seedream.storage_policy import safe_component

    folder = output / safe_component(dag_id) / safe_component(run_id)
    stored = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    create_429 = after["rate_limited"]["createTask"] - before["rate_limited"]["createTask"]
    creates = after["requests"]["createTask"] - before["requests"]["createTask"]
    figures = {
        "run": number,
        "state": state,
        "wall_s": round(ended - started, 1),
        "floor_s": round(floor, 1),
        "ratio": round((ended - started) / floor, 3),
        "from_first_submit_s": round(ended - first_submit, 1),
        "ratio_from_first_submit": round((ended - first_submit) / floor, 3),
        "tasks_created": len(tasks),
        "duplicates": len(prompts) - len(set(prompts)),
        "createTask_calls": creates,
        "createTask_429": create_429,
        "createTask_429_share": round(create_429 / creates, 4) if creates else 0.0,
        "recordInfo_calls": after["requests"]["recordInfo"] - before["requests"]["recordInfo"],
        "recordInfo_429": after["rate_limited"]["recordInfo"] - before["rate_limited"]["recordInfo"],
        "task_instances": len(tis),
        "failed_task_instances": sum(1 for t in tis if t[2] not in ("success", "skipped")),
        "retried_task_instances": sum(1 for t in tis if (t[3] or 0) > 1),
        "worker_runs": worker_runs(stack, dag_id, run_id),
        "images_stored": len(stored),
        "cpu_seconds": cpu.parts,
    }
    print(f"run {number}: {figures['state']}; wall {fmt(figures['wall_s'], 1)} s, floor {fmt(floor, 1)} s, ratio "
          f"{fmt(figures['ratio'], 3)} (from the first createTask: {fmt(figures['ratio_from_first_submit'], 3)}); "
          f"createTask {creates} calls, {create_429} x 429; recordInfo {figures['recordInfo_calls']} calls, "
          f"{figures['recordInfo_429']} x 429; task instances {len(tis)}, failed {figures['failed_task_instances']}, "
          f"retried {figures['retried_task_instances']}; worker runs {figures['worker_runs']}; images stored "
          f"{len(stored)}; duplicates {figures['duplicates']}", flush=True)
    print("  CPU seconds: " + ", ".join(f"{part} {seconds:g}" for part, seconds in cpu.parts.items()), flush=True)
    return figures


def stale_bytecode() -> list[Path]:
    """The provider's ``__pycache__`` folders: a cached run writes them next to the sources, and Python reads them
    even with ``PYTHONDONTWRITEBYTECODE=1``, so ``--no-bytecode`` would measure the cache again."""
    import airflow_provider_seedream

    return sorted(Path(airflow_provider_seedream.__file__).parent.rglob("__pycache__"))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stale = stale_bytecode() if args.no_bytecode else []
    if stale:
        sys.exit(f"--no-bytecode: delete the bytecode an earlier run cached first: {stale[0]} and the other "
                 "__pycache__ folders of the package")
    # A benchmark stopped with SIGTERM (pkill) still stops its stack: a left-over triggerer and API server kept
    # polling and serving on the same 2 cores and slowed the next benchmark by a third (measured, 2026-12-01).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    root = Path(tempfile.mkdtemp(prefix="seedream-nightly-"))
    output = root / "output"
    dags = root / "dagfiles"
    dags.mkdir()
    dag_id = LAYOUTS[args.layout]
    (dags / "nightly_dags.py").write_text(dag_file(dag_id))
    kie = EmulatorProcess(root / "emulator.log", "--api-key", API_KEY, "--credits", "1e12", "--seed",
                          str(args.seed))
    kie.start()
    runs: list[dict[str, Any]] = []
    stack = None
    try:
        kie.configure(rate_limits=True, prerender_results=args.layout in STORING_LAYOUTS, task_seconds_dist={
            "kind": "lognormal", "median": args.run_seconds, "sigma": 0.25, "min": args.run_seconds / 2,
            "max": args.run_seconds * 2})
        env = {
            "AIRFLOW_CONN_SEEDREAM_DEFAULT": conn_json(kie.url, API_KEY, upload_base_url=kie.url),
            "SEEDREAM_EXAMPLE_IMAGE_URL": kie.sample_url(),
            "SEEDREAM_EXAMPLE_OUTPUT_DIR": str(output),
            **({"SEEDREAM_EXAMPLE_POLL_INTERVAL": str(args.poll_interval)} if args.poll_interval else {}),
            **({"SEEDREAM_EXAMPLE_DEFER_AFTER": str(args.defer_after)} if args.defer_after is not None else {}),
            "AIRFLOW__CORE__PARALLELISM": str(args.parallelism),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(args.parallelism),
            # Bytecode is cached, as a provider installed by pip has it. This machine sets PYTHONDONTWRITEBYTECODE=1,
            # and the editable install has no __pycache__, so every task process compiled the provider's 30 modules
            # and the DAG file from source: 90 to 130 ms per import against 50 with the cache (2026-12-02).
            # An empty value is unset for Python; ``--no-bytecode`` keeps what the environment says.
            **({} if args.no_bytecode else {"PYTHONDONTWRITEBYTECODE": ""}),
        }
        # Airflow's defaults for the components' loops and task heartbeats, as a deployment has them, not the
        # end-to-end harness's shortened ones, which cost CPU and API-server time the tasks need: the 1 s task
        # heartbeats sent 2,012 heartbeats through the API server in one mapped run of 200, and the DAG processor's
        # quick loop alone spent 19.5 to 25 CPU seconds per mapped run of 200 (10.5 to 13.3 with the defaults).
        stack = AirflowStack(root / "airflow", env, quick_loops=False)
        stack.prepare([dags / "nightly_dags.py"])
        stack.start([dag_id], timeout=300)
        poll = f"{args.poll_interval:g} s" if args.poll_interval else "each operator's default"
        print(f"stack up in {root}; layout {args.layout}, {args.tasks} photos, runs of ~{args.run_seconds:g} s, "
              f"parallelism {args.parallelism}, poll interval {poll}, bytecode "
              f"{'as the environment says' if args.no_bytecode else 'cached'}"
              + (f", defer_after {args.defer_after:g} s" if args.defer_after is not None else ""), flush=True)
        if args.warmup > 0:
            one_run(stack, kie, argparse.Namespace(**{**vars(args), "tasks": args.warmup}), 0, output)
            print(f"(run 0 was the warm-up: {args.warmup} photos, not counted)", flush=True)
        for number in range(1, args.runs + 1):
            runs.append(one_run(stack, kie, args, number, output))
    finally:
        if stack is not None:
            stack.stop()
        kie.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}")
    ratios = [r["ratio"] for r in runs]
    summary = {
        "benchmark": "nightly_batch",
        "command": command_line(),
        "layout": args.layout,
        "tasks": args.tasks,
        "run_seconds": args.run_seconds,
        "parallelism": args.parallelism,
        "bytecode_cached": not args.no_bytecode,
        "defer_after": args.defer_after,
        "runs": runs,
        "worst_ratio": max(ratios) if ratios else None,
        "failed_task_instances": sum(r["failed_task_instances"] for r in runs),
        "duplicates": sum(r["duplicates"] for r in runs),
        "createTask_429_share_max": max((r["createTask_429_share"] for r in runs), default=None),
        "all_succeeded": all(r["state"] == "success" for r in runs) and len(runs) == args.runs,
    }
    print(f"{len(runs)} run(s), layout {args.layout}: worst ratio {fmt(summary['worst_ratio'], 3)}, failed task "
          f"instances {summary['failed_task_instances']}, duplicates {summary['duplicates']}, createTask 429 share at "
          f"most {summary['createTask_429_share_max']}")
    closing_json(summary)
    return 0 if summary["all_succeeded"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
