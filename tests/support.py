"""Stand-ins for the pieces of Airflow's task runtime that operator tests need, and a trigger runner.

These replace Airflow's objects, never this package's: the operator, sensor and trigger under test are the real ones.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from airflow_provider_seedream.triggers.seedream import SeedreamTaskTrigger


class RecordingTI:
    """Stands in for Airflow's task instance: keeps what is pushed to XCom, and checks it is JSON."""

    def __init__(self) -> None:
        self.xcoms: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        json.dumps(value)
        self.xcoms[key] = value

    def xcom_pull(self, *args: Any, **kwargs: Any) -> None:  # a templated pull of a value that was never pushed
        return None


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


def run_trigger(trigger: SeedreamTaskTrigger) -> dict:
    """Serialize the trigger, rebuild it from its JSON kwargs (as the triggerer does), run it to its event."""
    _, kwargs = trigger.serialize()
    rebuilt = SeedreamTaskTrigger(**json.loads(json.dumps(kwargs)))

    async def first() -> dict:
        async for event in rebuilt.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(first())
