"""Shared fixtures: an isolated Airflow home, the emulator on loopback, and a connection to it.

The API key is a unique canary per session so that tests can scan everything Airflow wrote for it.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

# Airflow reads its configuration at import time: isolate it before anything imports airflow.
_HOME = Path(tempfile.mkdtemp(prefix="seedream-tests-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parent.parent / "example_dags")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")

import pytest  # noqa: E402
import requests  # noqa: E402

from seedream_emulator import EmulatorConfig, EmulatorServer  # noqa: E402
from support import use_connection  # noqa: E402

API_KEY = f"canary-{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    return _HOME


@pytest.fixture(scope="session")
def api_key() -> str:
    return API_KEY


@pytest.fixture(scope="session")
def emulator_server():
    config = EmulatorConfig(task_seconds=1.0, null_window_seconds=0.3, rate_limits=False)
    with EmulatorServer(config) as server:
        yield server


class Emulator:
    """A thin test-side handle on the running emulator's control API."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.url = server.url

    def reset(self, **config) -> None:
        requests.post(f"{self.url}/_emulator/reset", timeout=5).raise_for_status()
        base = {"task_seconds": 1.0, "null_window_seconds": 0.3, "rate_limits": False, "default_scenario": {},
                "api_keys": []}
        base.update(config)
        requests.post(f"{self.url}/_emulator/config", json=base, timeout=5).raise_for_status()

    def configure(self, **config) -> None:
        requests.post(f"{self.url}/_emulator/config", json=config, timeout=5).raise_for_status()

    def faults(self, endpoint: str, *faults: dict) -> None:
        body = {"endpoint": endpoint, "faults": list(faults)}
        requests.post(f"{self.url}/_emulator/faults", json=body, timeout=5).raise_for_status()

    def stats(self) -> dict:
        return requests.get(f"{self.url}/_emulator/stats", timeout=5).json()

    def count(self, endpoint: str) -> int:
        return self.stats()["requests"].get(endpoint, 0)

    def sample_url(self) -> str:
        samples = requests.get(f"{self.url}/samples/", timeout=5).json()
        names = samples["samples"] if isinstance(samples, dict) else samples
        first = names[0]
        name = first["name"] if isinstance(first, dict) else first
        return f"{self.url}/samples/{name}"


@pytest.fixture
def emulator(emulator_server, monkeypatch) -> Emulator:
    """The emulator, reset for this test, with ``seedream_default`` pointing at it."""
    handle = Emulator(emulator_server)
    handle.reset()
    # This emulator enforces no rate limit, so the suite need not wait for kie's 20 createTask per 10 s either
    # (tests/test_pacing.py checks the pace against an emulator that does).
    use_connection(monkeypatch, API_KEY, handle.url, upload_base_url=handle.url, submits_per_10s=10_000)
    return handle


class Logs:
    """What the process wrote to stdout/stderr so far: Airflow 3 logs through structlog, not stdlib handlers."""

    def __init__(self, capfd) -> None:
        self._capfd = capfd
        self._seen = ""

    def text(self) -> str:
        out, err = self._capfd.readouterr()
        self._seen += out + err
        return self._seen


@pytest.fixture
def logs(capfd) -> Logs:
    return Logs(capfd)


@pytest.fixture(scope="session")
def migrated_db(airflow_home) -> Path:
    """The session's metadata DB, migrated once (``dag.test()`` needs one)."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return airflow_home / "airflow.db"


@pytest.fixture
def memory_fs():
    """fsspec's in-memory filesystem, attached for ``memory://`` and for ``s3://fake_s3@...`` (no network)."""
    from airflow.sdk.io.store import _STORE_CACHE, attach
    from fsspec.implementations.memory import MemoryFileSystem

    fs = MemoryFileSystem()
    fs.store.clear()
    fs.pseudo_dirs[:] = [""]
    attach("memory", fs=fs)
    attach(protocol="s3", conn_id="fake_s3", fs=fs)
    yield fs
    _STORE_CACHE.pop("memory", None)
    _STORE_CACHE.pop("s3-fake_s3", None)
    fs.store.clear()
