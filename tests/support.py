"""Stand-ins for the pieces of Airflow's task runtime that operator tests need, and a trigger runner.

These replace Airflow's objects, never this package's: the operator, sensor and trigger under test are the real ones.
"""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import ThreadingHTTPServer
from typing import Any

from airflow.triggers.base import BaseTrigger


class RecordingTI:
    """Stands in for Airflow's task instance: keeps what is pushed to XCom, and checks it is JSON."""

    def __init__(self) -> None:
        self.xcoms: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        json.dumps(value)
        self.xcoms[key] = value

    def xcom_pull(self, *args: Any, key: str = "return_value", **kwargs: Any) -> object:
        """This task's own XCom by key; ``None`` for anything never pushed (a templated pull of nothing)."""
        return self.xcoms.get(key)


class RunningTI(RecordingTI):
    """A recording task instance with the identity a running one has (what stored file names are derived from)."""

    def __init__(self, task_id: str = "wait", map_index: int = -1, dag_id: str = "test",
                 run_id: str = "manual__1") -> None:
        super().__init__()
        self.dag_id, self.task_id, self.run_id, self.map_index = dag_id, task_id, run_id, map_index


class DictStateStore:
    """Stands in for Airflow 3.3's task_state_store (get/set/delete), surviving between tries."""

    def __init__(self) -> None:
        self.data: dict[str, object] = {}

    def get(self, key: str) -> object:
        return self.data.get(key)

    def set(self, key: str, value: object) -> None:
        json.dumps(value)
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


def context(store: DictStateStore | None = None) -> dict:
    """A task context with a recording TI and, when given, a task_state_store."""
    ctx: dict = {"ti": RecordingTI()}
    if store is not None:
        ctx["task_state_store"] = store
    return ctx


def run_trigger_event(trigger: BaseTrigger) -> Any:
    """Serialize the trigger, rebuild it from its JSON kwargs (as the triggerer does), run it to its event."""
    _, kwargs = trigger.serialize()
    rebuilt = type(trigger)(**json.loads(json.dumps(kwargs)))

    async def first() -> Any:
        async for event in rebuilt.run():
            return event
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(first())


class TriggererComms:
    """Stands in for the triggerer's channel to its supervisor: keeps the XComs a trigger pushes through it."""

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}
        self.where: set[tuple[Any, ...]] = set()

    async def asend(self, msg: Any) -> None:
        json.dumps(msg.value)
        self.xcoms[msg.key] = msg.value
        self.where.add((msg.dag_id, msg.task_id, msg.run_id, msg.map_index))


def run_trigger_in_triggerer(trigger: BaseTrigger, monkeypatch: Any, ti: Any) -> tuple[Any, TriggererComms]:
    """Run the trigger as the triggerer does: rebuilt from its kwargs, told its task instance, with a channel."""
    from airflow.sdk.execution_time import task_runner

    comms = TriggererComms()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    _, kwargs = trigger.serialize()
    rebuilt = type(trigger)(**json.loads(json.dumps(kwargs)))
    rebuilt.task_instance = ti

    async def first() -> Any:
        async for event in rebuilt.run():
            return event
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(first()), comms


def run_trigger(trigger: BaseTrigger) -> dict:
    """Run the trigger to its event and return the payload a resumed task receives."""
    event = run_trigger_event(trigger)
    assert type(event).__name__ == "TriggerEvent", f"the trigger ended the task itself: {event!r}"
    return event.payload


# ---------------------------------------------------------------------------------------------- shared helpers
CONN_ENV = "AIRFLOW_CONN_SEEDREAM_DEFAULT"


def conn_json(host: str, key: str, **extra: Any) -> str:
    """The ``seedream`` connection as the JSON an ``AIRFLOW_CONN_*`` variable holds (extras only when given)."""
    conn: dict[str, Any] = {"conn_type": "seedream", "host": host, "password": key}
    if extra:
        conn["extra"] = extra
    return json.dumps(conn)


def use_connection(monkeypatch: Any, key: str, host: str, **extra: Any) -> None:
    """Point ``seedream_default`` at ``host`` with ``key`` (and the given extras) for one test."""
    monkeypatch.setenv(CONN_ENV, conn_json(host, key, **extra))


def load_dag(folder: Any, dag_id: str) -> Any:
    """Parse ``folder`` with Airflow's DagBag (no import errors allowed) and return ``dag_id``."""
    bag = dagbag_class()(dag_folder=str(folder))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id)


def dagbag_class() -> Any:
    try:  # Airflow 3.2+
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag
    return DagBag


def stored_xcoms(run: Any, key: str) -> dict[tuple[str, int], object]:
    """Read one XCom key of every task instance of a finished run from the metadata DB."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, key=key)).all()
        return {(row.task_id, row.map_index): XComModel.deserialize_value(row) for row in rows}


def leftover_tasks() -> set[asyncio.Task[object]]:
    """The event loop's tasks other than the current one: what a test that cleaned up must leave behind (none)."""
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


def add_dag_bundle(monkeypatch: Any, name: str, path: Any) -> None:
    """Serve the DAG files under ``path`` as a second DAG bundle ``name`` beside the dags folder, for one test.

    ``dag.test()`` on Airflow 3.2+ runs the serialized DAG of the bundle that holds the file, so a DAG kept outside
    the dags folder (``tests/system``) needs a bundle of its own.
    """
    local = "airflow.dag_processing.bundles.local.LocalDagBundle"
    bundles = [{"name": "dags-folder", "classpath": local, "kwargs": {}},
               {"name": name, "classpath": local, "kwargs": {"path": str(path)}}]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))


class LoopbackServer:
    """A threaded HTTP server on a free loopback port, serving ``handler`` (a request handler class) until
    ``close()``."""

    def __init__(self, handler: Any) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
