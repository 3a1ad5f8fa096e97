"""The "Seedream result image" extra link: computed on the worker, as Airflow 3 does, and stored per task instance.

Airflow 3's task runner calls ``get_link(operator, ti_key=<the running task instance>)`` in ``finalize`` at the end of
every run (deferrals included) and writes the URL to XCom under ``_link_<ClassName>``; the API server only reads that
back. The end-to-end test runs a small DAG through ``dag.test()`` and reads those stored links from the metadata DB.
"""

from __future__ import annotations

import functools
import json

import pytest
import support

from airflow_provider_seedream.get_provider_info import get_provider_info
from airflow_provider_seedream.hooks.seedream import SeedreamHook
from airflow_provider_seedream.links import SeedreamResultImageLink, link_for
from airflow_provider_seedream.operators.seedream import SeedreamEditOperator
from airflow_provider_seedream.sensors.seedream import SeedreamTaskSensor
from airflow_provider_seedream.version_compat import TaskDeferred

LINK_KEY = "_link_SeedreamResultImageLink"


RunningTI = functools.partial(support.RunningTI, dag_id="links")


stored_xcoms = support.stored_xcoms


@pytest.mark.parametrize(
    "urls, link",
    [(["https://tempfile.example/a.png", "https://b"], "https://tempfile.example/a.png"), ([], ""), (None, ""),
     (["javascript:alert(1)"], ""), ("https://not-a-list", "")],
)
def test_link_for(urls, link):
    assert link_for(urls) == link


def test_link_is_registered_and_attached_to_both_classes():
    assert get_provider_info()["extra-links"] == ["airflow_provider_seedream.links.SeedreamResultImageLink"]
    for cls in (SeedreamEditOperator, SeedreamTaskSensor):
        assert [type(link) for link in cls.operator_extra_links] == [SeedreamResultImageLink]
    assert SeedreamResultImageLink().name == "Seedream result image"
    assert SeedreamResultImageLink().xcom_key == LINK_KEY


def test_link_returns_the_first_result_url_for_the_task_instance_that_ran(emulator):
    task_id = SeedreamHook().create_edit_task("p", [emulator.sample_url()])
    sensor = SeedreamTaskSensor(task_id="wait", seedream_task_id=task_id, deferrable=False, mode="poke",
                                poke_interval=0.05, timeout=30)
    ti = RunningTI()
    link = SeedreamResultImageLink()
    assert link.get_link(sensor, ti_key=ti) == ""  # before results: no link
    urls = sensor.execute({"ti": ti})
    assert link.get_link(sensor, ti_key=ti) == urls[0]
    # Another task instance's key is never answered from this operator's memory.
    assert link.get_link(sensor, ti_key=RunningTI(map_index=3)) == ""


SMALL_DAG = """
import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_seedream.operators.seedream import SeedreamEditOperator
from airflow_provider_seedream.sensors.seedream import SeedreamTaskSensor
import support

OUT = os.environ["SEEDREAM_LINK_TEST_OUT"]
IMAGE = os.environ["SEEDREAM_LINK_TEST_IMAGE"]
with DAG("seedream_links", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
    # Both waits defer (dag.test() runs the trigger inline): the link is computed when the task defers (no result
    # yet) and again when it resumes.
    SeedreamEditOperator(task_id="edit", prompt="p", image_urls=[IMAGE], wait_for_completion=True, deferrable=True,
                         poll_interval=0.1, output_path=OUT)
    submit = SeedreamEditOperator(task_id="submit", prompt="p", image_urls=[IMAGE])
    SeedreamTaskSensor(task_id="wait", seedream_task_id=submit.output, poke_interval=0.1, timeout=60,
                       output_path=OUT)
"""


@pytest.fixture
def small_dag(tmp_path, monkeypatch, emulator):
    """A two-task DAG in its own DAG bundle (dag.test() runs only DAGs it can find in a bundle)."""
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "seedream_links.py").write_text(SMALL_DAG)
    bundles = [
        {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {}},
        {"name": "seedream-link-test", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
         "kwargs": {"path": str(folder)}},
    ]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
    monkeypatch.setenv("SEEDREAM_LINK_TEST_OUT", f"file://{tmp_path}/out")
    monkeypatch.setenv("SEEDREAM_LINK_TEST_IMAGE", emulator.sample_url())
    return support.load_dag(folder, "seedream_links")


def test_dag_test_stores_the_link_for_operator_and_sensor(small_dag, migrated_db, tmp_path, api_key):
    out = f"file://{tmp_path}/out"
    run = small_dag.test()
    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    results = stored_xcoms(run, "result_urls")
    links = stored_xcoms(run, LINK_KEY)
    assert links == {("edit", -1): results[("edit", -1)][0], ("wait", -1): results[("wait", -1)][0],
                     ("submit", -1): ""}  # a submit-only task has no result to open
    assert results[("edit", -1)] != results[("wait", -1)]
    stored = stored_xcoms(run, "stored_images")
    assert set(stored) == {("edit", -1), ("wait", -1)}
    assert all(uri.startswith(out) for uris in stored.values() for uri in uris)
    assert api_key.encode() not in migrated_db.read_bytes()


def test_a_deferring_run_stores_no_link_and_the_resume_does(emulator, tmp_path):
    """Airflow stores every extra link's value at the end of every worker run; a deferral has no result yet, so the
    deferring instance names no link (one API call fewer per deferring task) and its resume names it again."""
    op = SeedreamEditOperator(task_id="edit", prompt="p", image_urls=[emulator.sample_url()],
                              wait_for_completion=True, deferrable=True, poll_interval=0.1, timeout=60,
                              output_path=str(tmp_path))
    ctx = support.context()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)
    assert op.operator_extra_links == ()  # what the task runner's finalize walks after this run
    assert [type(link) for link in type(op).operator_extra_links] == [SeedreamResultImageLink]
    event = support.run_trigger(deferred.value.trigger)
    ti = RunningTI()
    ti.xcoms["seedream_task_id"] = ctx["ti"].xcoms["seedream_task_id"]
    assert op.resume_execution("execute_complete", {"event": event}, {**ctx, "ti": ti}) == event["task_id"]
    assert [type(link) for link in op.operator_extra_links] == [SeedreamResultImageLink]
    assert SeedreamResultImageLink().get_link(op, ti_key=ti) == event["task"]["result_urls"][0]
