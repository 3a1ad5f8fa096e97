"""A real Airflow stack and a real emulator, as subprocesses on loopback, for the end-to-end tests.

``AirflowStack`` runs ``airflow db migrate`` on a fresh ``AIRFLOW_HOME`` (SQLite, LocalExecutor), then starts the API
server, scheduler, DAG processor and triggerer one by one, each in its own session (process group) with its output
in ``<home>/components/<name>.log``. Runs are triggered and read through the REST API (the simple auth manager with
``simple_auth_manager_all_admins``, so no login). ``stop()`` kills every process the stack started, including the
task processes that put themselves in their own process groups, and is safe to call twice.

``EmulatorProcess`` runs ``python -m seedream_emulator --port 0`` and talks to its control API.

Nothing here sleeps to synchronise: every wait polls a condition against a deadline.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
import requests

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
TEST_DAGS = Path(__file__).resolve().parent / "dags"
EXAMPLE_DAG = REPO / "example_dags" / "example_seedream_edit.py"
#: The connection extra "timeout" of the stack: seconds the hook and the trigger wait for one answer from kie.
E2E_READ_TIMEOUT = 5
#: The poll budget of the ``seedream_scale`` connection (the fan-out DAG's), in status queries per second.
E2E_SCALE_BUDGET = 2

FINISHED_RUN_STATES = frozenset({"success", "failed"})

#: Short loops, so that a run starts, defers, resumes and retries within seconds (``AirflowStack(quick_loops=True)``,
#: the default); without them every component runs with Airflow's own defaults.
QUICK_LOOPS = {
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
    "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC": "1",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "10",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",
    # The supervisor notices its task process is gone within one of these intervals.
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
    "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
    "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "1",
    # A killed triggerer's triggers move to a live triggerer once its last heartbeat is older than the
    # health-check threshold (3.3.2: this setting, default 30 s; not 2.1 x job_heartbeat_sec any more).
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "5",
}
# Figures the e2e scenarios record for the closing summary (printed by ``conftest.pytest_terminal_summary``).
E2E_FIGURES: dict[str, Any] = {"scenarios": {}}


class StackError(AssertionError):
    """The stack did not reach a state in time; the message carries the component logs' tails."""


def wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.25,
             on_timeout: Callable[[], str] | None = None) -> T:
    """Poll ``condition`` until it returns something truthy and return that; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
        except (requests.RequestException, OSError, ValueError) as error:  # a component still starting up
            value, last_error = None, error
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = on_timeout() if on_timeout else ""
            raise StackError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error!r})"
                             f"\n{detail}")
        time.sleep(interval)  # the poll period of a deadline-bounded wait, not a synchronisation sleep


def title_words(cmdline: Iterable[str] | None) -> list[str]:
    """The words of a process title as ``psutil`` reports it, however the platform pads it.

    After ``setproctitle`` the old argv area stays behind as NUL padding on some machines (it depends on the sizes of
    argv and the environment), so ``cmdline()`` is the title followed by empty strings; elsewhere it is the title
    alone, or the title split at its spaces. Splitting every part into words makes all three the same.
    """
    return [word for part in cmdline or () for word in part.split()]


def task_processes(ti_id: str, procs: Iterable[psutil.Process] | None = None,
                   ) -> tuple[psutil.Process | None, psutil.Process | None]:
    """Return (task runner, its supervisor) of task instance ``ti_id``, found by their process titles.

    The runner titles itself ``airflow worker -- <ti id>`` (``task_runner.py``); the LocalExecutor worker that
    supervises it, ``airflow worker -- LocalExecutor: <ti id>`` (``local_executor.py``). Titles are compared as words,
    never as whole strings, and the supervisor must be the runner's parent when both are found.
    """
    runner = supervisor = None
    for proc in procs if procs is not None else psutil.process_iter(["cmdline"]):
        try:
            words = title_words(proc.info.get("cmdline") if hasattr(proc, "info") else proc.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if words[:3] != ["airflow", "worker", "--"] or words[-1:] != [ti_id]:
            continue
        if len(words) == 4:
            runner = proc
        else:
            supervisor = proc
    if runner is not None and supervisor is not None:
        try:
            if runner.ppid() != supervisor.pid:
                supervisor = None
        except psutil.NoSuchProcess:
            return None, None
    return runner, supervisor


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"({path.name}: missing)"
    text = path.read_text(errors="replace").splitlines()
    return f"--- {path.name} (last {min(lines, len(text))} lines) ---\n" + "\n".join(text[-lines:])


def _clean_env() -> dict[str, str]:
    """The parent environment without the pytest process's own Airflow settings and coverage hooks."""
    drop = ("AIRFLOW", "PYTEST", "COV_CORE", "COVERAGE", "SEEDREAM_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def _terminate(procs: list[psutil.Process], timeout: float = 10.0) -> None:
    """SIGTERM every process, give them ``timeout`` seconds to exit, then SIGKILL what is left."""
    for proc in procs:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


# ---------------------------------------------------------------------------------------------------------- emulator
class EmulatorProcess:
    """The kie.ai emulator as a subprocess, and a handle on its control API."""

    def __init__(self, log_path: Path, *args: str) -> None:
        self.log_path = log_path
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 30.0) -> EmulatorProcess:
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "seedream_emulator", "--port", "0", *self.args],
            stdout=subprocess.PIPE, stderr=self._log, env=_clean_env(), start_new_session=True, cwd=REPO,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        prefix = "seedream-emulator listening on "
        if not line.startswith(prefix):
            self.stop()
            raise StackError(f"emulator did not start: {line!r}\n{tail(self.log_path)}")
        self.url = line[len(prefix):].strip()
        # Keep draining stdout into the log, so that the emulator can never block on a full pipe.
        self._drainer = threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True)
        self._drainer.start()
        wait_for(lambda: requests.get(f"{self.url}/_emulator/health", timeout=2).ok, timeout, "emulator health")
        return self

    def _drain(self, stream: Any) -> None:
        for chunk in iter(lambda: stream.read1(65536), b""):
            self._log.write(chunk)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        drainer = getattr(self, "_drainer", None)
        if drainer is not None:
            drainer.join(5)  # the pipe ends with the process
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        if getattr(self, "_log", None):
            self._log.close()

    # control API
    def _post(self, path: str, body: Any = None) -> dict[str, Any]:
        response = requests.post(f"{self.url}/_emulator/{path}", json=body, timeout=5)
        assert response.ok, response.text
        return response.json()

    def reset(self, **config: Any) -> None:
        self._post("reset")
        if config:
            self._post("config", config)

    def configure(self, **config: Any) -> None:
        self._post("config", config)

    def faults(self, endpoint: str, faults: list[dict[str, Any]]) -> None:
        self._post("faults", {"endpoint": endpoint, "faults": faults})

    def stats(self) -> dict[str, Any]:
        return requests.get(f"{self.url}/_emulator/stats", timeout=5).json()

    def sample_url(self) -> str:
        samples = requests.get(f"{self.url}/samples/", timeout=5).json()
        names = samples["samples"] if isinstance(samples, dict) else samples
        first = names[0]
        return f"{self.url}/samples/{first['name'] if isinstance(first, dict) else first}"


# ----------------------------------------------------------------------------------------------------------- airflow
@dataclass
class Component:
    name: str
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    starts: int = 0


@dataclass
class RunResult:
    """What a finished DAG run looked like, as seen through the REST API while it ran."""

    dag_id: str
    run_id: str
    state: str
    seconds: float
    task_states: dict[str, str]
    # task_id -> every distinct state observed while polling, in order
    seen_states: dict[str, list[str]] = field(default_factory=dict)
    tries: dict[str, int] = field(default_factory=dict)


class AirflowStack:
    """Scheduler, DAG processor, triggerer and API server on a fresh ``AIRFLOW_HOME`` (SQLite, LocalExecutor).

    :param home: an empty directory that becomes ``AIRFLOW_HOME``.
    :param env: extra environment for every component (connections, DAG settings).
    :param quick_loops: shorten the components' loops and task heartbeats (``QUICK_LOOPS``); ``False`` keeps
        Airflow's defaults, as a deployment has them.
    """

    COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")

    def __init__(self, home: Path, env: dict[str, str], *, quick_loops: bool = True) -> None:
        self.home = home
        self.quick_loops = quick_loops
        self.dags = home / "dags"
        self.logs = home / "logs"
        self.component_logs = home / "components"
        self.db = home / "airflow.db"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.base_url}/api/v2"
        self.env = self._env(env)
        self.components: dict[str, Component] = {
            "api-server": Component("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(self.port),
                                                   "--workers", "1"]),
            "scheduler": Component("scheduler", ["scheduler"]),
            "dag-processor": Component("dag-processor", ["dag-processor"]),
            "triggerer": Component("triggerer", ["triggerer", "--skip-serve-logs"]),
        }
        self.session = requests.Session()
        self._stopped = False

    def _env(self, extra: dict[str, str]) -> dict[str, str]:
        from cryptography.fernet import Fernet

        env = _clean_env()
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db}",
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__SECRET_KEY": os.urandom(16).hex(),
            "AIRFLOW__API_AUTH__JWT_SECRET": os.urandom(16).hex(),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        })
        if self.quick_loops:
            env.update(QUICK_LOOPS)
        env.update(extra)
        return env

    # ------------------------------------------------------------------------------------------------ lifecycle
    def prepare(self, dag_files: Iterable[Path]) -> None:
        """Create the home, copy the DAG files into its dags folder and migrate the database."""
        for path in (self.dags, self.logs, self.component_logs):
            path.mkdir(parents=True, exist_ok=True)
        for dag_file in dag_files:
            shutil.copy2(dag_file, self.dags / dag_file.name)
        log = self.component_logs / "db-migrate.log"
        with log.open("wb") as out:
            result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT, timeout=600, cwd=self.home)
        if result.returncode != 0:
            raise StackError(f"airflow db migrate failed\n{tail(log)}")

    def start_component(self, name: str) -> Component:
        component = self.components[name]
        assert component.proc is None or component.proc.poll() is not None, f"{name} is already running"
        component.log_path = self.component_logs / f"{name}.log"
        with component.log_path.open("ab") as out:
            out.write(f"\n===== start #{component.starts + 1}: airflow {' '.join(component.args)}\n".encode())
            out.flush()
            component.proc = subprocess.Popen([sys.executable, "-m", "airflow", *component.args], env=self.env,
                                              stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                              cwd=self.home)
        component.starts += 1
        return component

    def start(self, expected_dags: Iterable[str], timeout: float = 180.0) -> None:
        """Start every component and wait until the API answers and every expected DAG is parsed."""
        for name in self.COMPONENTS:
            self.start_component(name)
        wait_for(lambda: self.session.get(f"{self.api}/monitor/health", timeout=5).ok, timeout,
                 "the API server", on_timeout=self.diagnostics)
        expected = set(expected_dags)

        def parsed() -> bool:
            self.check_alive()
            body = self.get("/dags", params={"limit": 100})
            return expected <= {dag["dag_id"] for dag in body["dags"]}

        wait_for(parsed, timeout, f"DAGs {sorted(expected)} to be parsed", on_timeout=self.diagnostics)
        wait_for(self.triggerer_healthy, timeout, "a healthy triggerer", on_timeout=self.diagnostics)

    def stop(self) -> None:
        """Kill every process the stack started (also the task processes in their own process groups)."""
        if self._stopped:
            return
        self._stopped = True
        roots: list[psutil.Process] = []
        for component in self.components.values():
            if component.proc is not None and component.proc.poll() is None:
                try:
                    roots.append(psutil.Process(component.proc.pid))
                except psutil.NoSuchProcess:
                    pass
        strays = [p for p in self.stray_processes() if p.pid not in {r.pid for r in roots}]
        descendants: list[psutil.Process] = []
        for root in roots:
            try:
                descendants += root.children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        _terminate([*roots, *descendants, *strays])
        for component in self.components.values():
            if component.proc is not None:
                try:
                    component.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        self.session.close()

    def stray_processes(self) -> list[psutil.Process]:
        """Every live process whose environment points at this stack's home (task runners, log servers...)."""
        found = []
        marker = f"AIRFLOW_HOME={self.home}"
        for proc in psutil.process_iter(["pid"]):
            try:
                if proc.pid == os.getpid():
                    continue
                environ = proc.environ()
            except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess, OSError):
                continue
            if f"AIRFLOW_HOME={environ.get('AIRFLOW_HOME')}" == marker:
                found.append(proc)
        return found

    def check_alive(self, names: Iterable[str] = COMPONENTS) -> None:
        for name in names:
            proc = self.components[name].proc
            if proc is None or proc.poll() is not None:
                raise StackError(f"airflow {name} exited with {proc.returncode if proc else None}\n"
                                 f"{self.diagnostics()}")

    def diagnostics(self) -> str:
        return "\n".join(tail(self.component_logs / f"{name}.log") for name in self.COMPONENTS)

    # ------------------------------------------------------------------------------------------------ triggerer
    def triggerer_pid(self) -> int:
        proc = self.components["triggerer"].proc
        assert proc is not None
        return proc.pid

    def kill_triggerer(self) -> list[int]:
        """SIGKILL the triggerer and its trigger-runner subprocess at once, like a lost machine; return the pids."""
        proc = self.components["triggerer"].proc
        assert proc is not None and proc.poll() is None
        root = psutil.Process(proc.pid)
        victims = [root, *root.children(recursive=True)]
        for victim in victims:
            try:
                victim.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(victims, timeout=10)
        proc.wait(10)
        return [v.pid for v in victims]

    def triggerer_healthy(self) -> bool:
        health = self.session.get(f"{self.api}/monitor/health", timeout=5).json()
        return (health.get("triggerer") or {}).get("status") == "healthy"

    # ------------------------------------------------------------------------------------------------ REST
    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.session.get(f"{self.api}{path}", timeout=15, **kwargs)
        response.raise_for_status()
        return response.json()

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Trigger a run of ``dag_id`` through the REST API and return its run id."""
        response = self.session.post(f"{self.api}/dags/{dag_id}/dagRuns", json={"logical_date": None,
                                                                             "conf": conf or {}}, timeout=15)
        assert response.ok, f"trigger {dag_id}: HTTP {response.status_code} {response.text}"
        return response.json()["dag_run_id"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 120.0,
                     on_poll: Callable[[dict[str, dict[str, Any]]], None] | None = None) -> RunResult:
        """Poll the run until it is finished, recording every state each task showed; fail after ``timeout``."""
        started = time.monotonic()
        seen: dict[str, list[str]] = {}
        tries: dict[str, int] = {}

        def finished() -> str | None:
            self.check_alive([n for n in self.COMPONENTS if n != "triggerer"])
            tis = {ti["task_id"]: ti for ti in self.task_instances(dag_id, run_id)}
            for task_id, ti in tis.items():
                states = seen.setdefault(task_id, [])
                if ti["state"] and (not states or states[-1] != ti["state"]):
                    states.append(ti["state"])
                tries[task_id] = ti.get("try_number") or 0
            if on_poll is not None:
                on_poll(tis)
            state = self.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            return state if state in FINISHED_RUN_STATES else None

        state = wait_for(finished, timeout, f"run {dag_id}/{run_id} to finish", interval=0.2,
                         on_timeout=lambda: f"task states seen: {seen}\n{self.diagnostics()}")
        final = {ti["task_id"]: ti["state"] for ti in self.task_instances(dag_id, run_id)}
        return RunResult(dag_id, run_id, state, time.monotonic() - started, final, seen, tries)

    # ------------------------------------------------------------------------------------------------ logs
    def task_log_files(self, dag_id: str, run_id: str, task_id: str) -> list[Path]:
        folder = self.logs / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return sorted(folder.rglob("*")) if folder.exists() else []

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        """Everything every try (and the trigger) of the task wrote to its log files, as text."""
        return "\n".join(p.read_text(errors="replace") for p in self.task_log_files(dag_id, run_id, task_id)
                         if p.is_file())

    def component_log(self, name: str) -> str:
        return (self.component_logs / f"{name}.log").read_text(errors="replace")

    # ------------------------------------------------------------------------------------------------ database
    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read the metadata DB directly (read-only; SQLite runs in WAL mode, so readers never block Airflow)."""
        import sqlite3

        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10) as conn:
            return conn.execute(sql, args).fetchall()

    def trigger_rows(self) -> list[dict[str, Any]]:
        """The live rows of the ``trigger`` table, kwargs decrypted with the stack's Fernet key."""
        from cryptography.fernet import Fernet

        fernet = Fernet(self.env["AIRFLOW__CORE__FERNET_KEY"].encode())
        rows = []
        for trigger_id, classpath, kwargs, triggerer_id in self.query(
                "SELECT id, classpath, kwargs, triggerer_id FROM trigger"):
            text = kwargs if kwargs.startswith("{") else fernet.decrypt(kwargs.encode()).decode()
            rows.append({"id": trigger_id, "classpath": classpath, "kwargs_json": text, "encrypted": kwargs,
                         "triggerer_id": triggerer_id})
        return rows
