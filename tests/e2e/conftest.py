"""Fixtures for the end-to-end tests: one emulator subprocess and one Airflow stack per test module.

All scenarios live in one module, so the stack starts once (about 15 s), serves every scenario, and stops as soon
as they are done instead of idling through the rest of the suite. Scenarios tell their runs apart by a marker in
the prompt and by before/after deltas of the emulator's counters, and queue faults through its control API. The
stack's connection carries the session's canary API key (``tests/conftest.py``) and the emulator accepts only that
key, so every request that reached it proves the key was used, and the final canary scan proves it leaked nowhere.

Figures (faults survived, createTask per scenario, canary hits, wall time) are collected in ``E2E_FIGURES`` and
printed at the end of the session.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from support import conn_json

from seedream_stack import (
    E2E_FIGURES,
    E2E_READ_TIMEOUT,
    E2E_SCALE_BUDGET,
    EXAMPLE_DAG,
    TEST_DAGS,
    AirflowStack,
    EmulatorProcess,
)

E2E_DAGS = ("example_seedream_edit", "e2e_seedream_reattach", "e2e_seedream_wait", "e2e_seedream_deadline",
            "e2e_seedream_malformed", "e2e_seedream_fanout", "e2e_seedream_batch")


@pytest.fixture(scope="session")
def e2e_root(tmp_path_factory) -> Path:
    E2E_FIGURES["started"] = time.monotonic()
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def kie(e2e_root, api_key):
    """The emulator as a subprocess that accepts only the canary key (rate limits off: scenarios inject 429s)."""
    emulator = EmulatorProcess(e2e_root / "emulator.log", "--no-rate-limits", "--task-seconds", "3",
                               "--api-key", api_key)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="module")
def stack(e2e_root, kie, api_key):
    """Scheduler, DAG processor, triggerer and API server on a fresh home, with the example DAG and the test DAGs."""
    started = time.monotonic()
    env = {
        "AIRFLOW_CONN_SEEDREAM_DEFAULT": conn_json(kie.url, api_key, upload_base_url=kie.url,
                                                   timeout=E2E_READ_TIMEOUT),
        "AIRFLOW_CONN_SEEDREAM_SCALE": conn_json(kie.url, api_key, timeout=E2E_READ_TIMEOUT,
                                                 polls_per_second=E2E_SCALE_BUDGET),
        "AIRFLOW_CONN_SEEDREAM_SLOW": conn_json(kie.url, api_key, timeout=E2E_READ_TIMEOUT, submits_per_10s=2),
        "SEEDREAM_EXAMPLE_IMAGE_URL": kie.sample_url(),
        "SEEDREAM_EXAMPLE_OUTPUT_DIR": str(e2e_root / "output"),
        "SEEDREAM_EXAMPLE_POLL_INTERVAL": "0.5",
    }
    airflow = AirflowStack(e2e_root / "airflow", env)
    try:
        airflow.prepare([EXAMPLE_DAG, *sorted(TEST_DAGS.glob("*.py"))])
        airflow.start(E2E_DAGS)
        E2E_FIGURES["stack_start_seconds"] = round(time.monotonic() - started, 1)
        E2E_FIGURES["home"] = str(airflow.home)
        yield airflow
    finally:
        airflow.stop()
        E2E_FIGURES["processes_left_after_stop"] = len(airflow.stray_processes())
        E2E_FIGURES["finished"] = time.monotonic()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    scenarios = E2E_FIGURES["scenarios"]
    if not scenarios:
        return
    write = terminalreporter.write_line
    terminalreporter.section("Seedream end-to-end figures")
    write(f"stack start: {E2E_FIGURES.get('stack_start_seconds')} s; processes left after stop: "
          f"{E2E_FIGURES.get('processes_left_after_stop')}")
    for name, figures in scenarios.items():
        write(f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    finished = E2E_FIGURES.get("finished", time.monotonic())
    write(f"e2e wall time (emulator and stack start to stack stop): {finished - E2E_FIGURES['started']:.1f} s")
    out = os.environ.get("SEEDREAM_E2E_FIGURES")
    if out:
        Path(out).write_text(json.dumps(E2E_FIGURES, indent=2, default=str))
