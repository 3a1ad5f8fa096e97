"""Command line: ``python -m seedream_emulator [--port 8089] [...]``.

Prints exactly one line, ``seedream-emulator listening on http://HOST:PORT``, once the socket is bound (so a
parent process can wait for it), then serves until SIGTERM or SIGINT and exits 0.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from seedream_emulator.config import EmulatorConfig
from seedream_emulator.server import EmulatorServer


def build_parser() -> argparse.ArgumentParser:
    """Describe the command line (every option maps to one ``EmulatorConfig`` field)."""
    parser = argparse.ArgumentParser(
        prog="python -m seedream_emulator",
        description="Local emulator of the kie.ai Market API for the Seedream models (plus File Upload API).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8089, help="port to bind; 0 picks a free one (default: 8089)")
    parser.add_argument(
        "--api-key",
        dest="api_keys",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY",
        help="accepted Bearer key (repeatable); default: any non-empty key",
    )
    parser.add_argument("--task-seconds", type=float, default=EmulatorConfig.task_seconds,
                        help="task duration in emulated seconds")
    parser.add_argument(
        "--task-seconds-dist",
        type=json.loads,
        default=None,
        metavar="JSON",
        help='duration distribution, e.g. \'{"kind": "lognormal", "median": 20, "sigma": 0.5, "min": 5, "max": 120}\'',
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the duration RNG")
    parser.add_argument(
        "--time-scale", type=float, default=EmulatorConfig.time_scale,
        help="wall seconds per emulated second (0.1 = ten times faster)",
    )
    parser.add_argument(
        "--no-rate-limits",
        dest="rate_limits",
        action="store_false",
        help="do not enforce kie's 20 createTask/10 s and 10 recordInfo/s per key",
    )
    parser.add_argument(
        "--result-ttl",
        type=float,
        default=EmulatorConfig.result_ttl,
        metavar="SECONDS",
        help=f"lifetime of result URLs in emulated seconds (default: {EmulatorConfig.result_ttl:g})",
    )
    parser.add_argument("--credits", type=float, default=EmulatorConfig.initial_credits, help="initial credit balance")
    parser.add_argument(
        "--default-scenario",
        type=json.loads,
        default=None,
        metavar="JSON",
        help='scenario for prompts without a directive, e.g. \'{"outcome": "fail"}\'',
    )
    parser.add_argument("--public-url", default=None, help="base URL written into links (default: own URL)")
    parser.add_argument("--full-size", action="store_true", help="serve results at their true size (1K..4K)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until SIGTERM/SIGINT; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        config = EmulatorConfig(
            api_keys=tuple(args.api_keys),
            task_seconds=args.task_seconds,
            task_seconds_dist=args.task_seconds_dist,
            seed=args.seed,
            time_scale=args.time_scale,
            rate_limits=args.rate_limits,
            result_ttl=args.result_ttl,
            initial_credits=args.credits,
            default_scenario=args.default_scenario,
            public_url=args.public_url,
            full_size=args.full_size,
            verbose=args.verbose,
        )
    except (TypeError, ValueError) as exc:
        print(f"seedream-emulator: invalid settings: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    server = EmulatorServer(config, host=args.host, port=args.port).start()
    print(f"seedream-emulator listening on {server.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
