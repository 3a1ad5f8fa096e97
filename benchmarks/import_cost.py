"""What importing the provider's operator, sensor and hook modules adds to DAG parsing, beyond ``import airflow.sdk``.

Run by hand (see ``benchmarks/README.md``)::

    .venv/bin/python benchmarks/import_cost.py

Every sample is a fresh interpreter that first imports ``airflow.sdk`` (what any DAG file pays anyway), then times
the three imports a DAG using the provider makes. One more run with ``python -X importtime`` names the modules that
cost the most, each with the provider module that pulled it in, so a heavy import can be made lazy.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import closing_json, command_line, percentile  # noqa: E402

MODULES = (
    "airflow_provider_seedream.operators.seedream",
    "airflow_provider_seedream.sensors.seedream",
    "airflow_provider_seedream.hooks.seedream",
)
TARGET_MS = 30.0

SAMPLE = """
import json, sys, time
import airflow.sdk
before = set(sys.modules)
started = time.perf_counter()
{imports}
elapsed = time.perf_counter() - started
print(json.dumps({{"ms": elapsed * 1000, "new_modules": len(set(sys.modules) - before)}}))
"""

_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def child_env(bytecode_dir: str | None) -> dict[str, str]:
    """Environment of a sample: with a bytecode cache (as a wheel installed by pip has), or with none at all."""
    env = dict(os.environ)
    if bytecode_dir is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = bytecode_dir
    return env


def sample(env: dict[str, str]) -> dict[str, float]:
    code = SAMPLE.format(imports="\n".join(f"import {module}" for module in MODULES))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def heaviest(limit: int, env: dict[str, str]) -> list[tuple[str, float, str]]:
    """Return the costliest imports after the SDK: (module, ms, provider module that imported it).

    For a third-party module the cost is cumulative (with everything it imported); for a provider module it is its
    own code only. ``-X importtime`` prints a module after its children, one indent level deeper per nesting.
    """
    code = "import airflow.sdk\n" + "\n".join(f"import {module}" for module in MODULES)
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                         check=True, env=env).stderr
    Node = tuple[str, float, float, list]  # name, own ms, cumulative ms, children
    pending: dict[int, list[Node]] = {}
    roots: list[Node] = []
    for match in map(_LINE.match, err.splitlines()):
        if not match:
            continue
        own, cumulative, indent, name = match.groups()
        depth = len(indent) // 2
        node: Node = (name, int(own) / 1000.0, int(cumulative) / 1000.0, pending.pop(depth + 1, []))
        (roots if depth == 0 else pending.setdefault(depth, [])).append(node)
    after_sdk = roots[[node[0] for node in roots].index("airflow.sdk") + 1:]
    rows: list[tuple[str, float, str]] = []

    def walk(node: Node, owner: str) -> None:
        name, own, cumulative, children = node
        if name.startswith("airflow_provider_seedream"):
            rows.append((f"{name} (own code)", own, name))
            for child in children:
                walk(child, name)
        else:
            rows.append((name, cumulative, owner))

    for root in after_sdk:
        walk(root, root[0])
    return sorted(rows, key=lambda row: -row[1])[:limit]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=15, help="fresh interpreters to time (default 15)")
    parser.add_argument("--top", type=int, default=8, help="heaviest imports to name (default 8)")
    parser.add_argument("--no-bytecode", action="store_true",
                        help="compile every module on import, as with PYTHONDONTWRITEBYTECODE=1 and no __pycache__ "
                             "(default: a bytecode cache, filled by one unmeasured run, as a pip-installed wheel has)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="seedream-import-cost-") as bytecode_dir:
        env = child_env(None if args.no_bytecode else bytecode_dir)
        sample(env)  # fills the bytecode cache (and the OS file cache); not counted
        results = [sample(env) for _ in range(args.samples)]
        top = heaviest(args.top, env)
    times = [result["ms"] for result in results]
    median = percentile(times, 0.5) or 0.0

    print("import_cost: the provider's operator, sensor and hook modules, after import airflow.sdk")
    print(f"  command: {command_line()}")
    print(f"  imports: {', '.join(MODULES)}")
    print(f"  bytecode: {'none (every module compiled on import)' if args.no_bytecode else 'cached, as installed'}")
    print(f"  {args.samples} fresh interpreters: median {median:.1f} ms, min {min(times):.1f} ms, "
          f"max {max(times):.1f} ms; {int(results[0]['new_modules'])} modules newly imported")
    print(f"  target: under {TARGET_MS:g} ms -> {'met' if median < TARGET_MS else 'NOT met'}")
    print("  heaviest imports not already loaded by airflow.sdk (one -X importtime run, which inflates times):")
    for module, ms, owner in top:
        print(f"    {ms:7.1f} ms  {module}  (imported by {owner})")
    closing_json({
        "benchmark": "import_cost",
        "samples": args.samples,
        "bytecode": not args.no_bytecode,
        "median_ms": median,
        "min_ms": min(times),
        "max_ms": max(times),
        "new_modules": int(results[0]["new_modules"]),
        "target_ms": TARGET_MS,
        "met": median < TARGET_MS,
        "heaviest": [{"module": module, "ms": ms, "under": owner} for module, ms, owner in top],
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
