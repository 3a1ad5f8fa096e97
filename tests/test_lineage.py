"""OpenLineage: dataset naming (a table of URIs), the lineage each task reports from its own XComs, and the events
the OpenLineage listener emits for a real ``dag.test()`` run against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from support import stored_xcoms

from airflow_provider_seedream import lineage, results
from airflow_provider_seedream.lineage import DatasetName, dataset_name
from airflow_provider_seedream.operators.seedream import SeedreamBatchEditOperator, SeedreamEditOperator
from airflow_provider_seedream.sensors.seedream import SeedreamTaskSensor

TESTS = Path(__file__).resolve().parent
DAGS = TESTS / "dags"


# ------------------------------------------------------------------------------------------------ naming (pure)
@pytest.mark.parametrize(("uri", "expected"), [
    # object storage: the bucket is the namespace, the key the name; an Airflow conn_id@ is access, not identity
    ("s3://photos/2026/03/shoe.png", ("s3://photos", "2026/03/shoe.png")),
    ("s3://aws_default@photos/shoe.png", ("s3://photos", "shoe.png")),
    ("s3a://photos/shoe.png", ("s3://photos", "shoe.png")),
    ("s3n://photos/shoe.png", ("s3://photos", "shoe.png")),
    ("s3://photos/shoe.png?versionId=3&X-Amz-Signature=abc#top", ("s3://photos", "shoe.png")),
    ("S3://photos/shoe.png", ("s3://photos", "shoe.png")),
    ("gs://photos/in/shoe.jpg", ("gs://photos", "in/shoe.jpg")),
    ("gcs://google_cloud_default@photos/shoe.jpg", ("gs://photos", "shoe.jpg")),
    ("abfss://images@shop.dfs.core.windows.net/in/shoe.png",
     ("abfss://images@shop.dfs.core.windows.net", "in/shoe.png")),
    ("wasbs://images:sas-token@shop.blob.core.windows.net/shoe.png",
     ("wasbs://images@shop.blob.core.windows.net", "shoe.png")),
    ("abfs://wasb_default@images/shoe.png", ("abfs://images", "shoe.png")),
    ("hdfs://namenode:8020/data/shoe.png", ("hdfs://namenode:8020", "/data/shoe.png")),
    ("memory://edits/2026-03-01/image-0.png", ("memory://edits", "2026-03-01/image-0.png")),
    ("sftp://user:secret@files.example.com:2222/in/shoe.png", ("sftp://files.example.com:2222", "in/shoe.png")),
    # local files: "file" and the absolute path; a named remote host keeps file://host
    ("file:///data/photos/shoe.png", ("file", "/data/photos/shoe.png")),
    ("file://localhost/data/photos/shoe.png", ("file", "/data/photos/shoe.png")),
    ("file://nas01/share/shoe.png", ("file://nas01", "/share/shoe.png")),
    ("/data/photos/shoe.png", ("file", "/data/photos/shoe.png")),
    ("/data/photos/../photos/shoe.png", ("file", "/data/photos/shoe.png")),
    # web images: scheme://host[:port] and the path; no user info, query or fragment, default ports left out
    ("https://cdn.example.com/products/shoe.webp", ("https://cdn.example.com", "/products/shoe.webp")),
    ("https://CDN.Example.COM:443/shoe.webp", ("https://cdn.example.com", "/shoe.webp")),
    ("http://cdn.example.com:80/shoe.webp", ("http://cdn.example.com", "/shoe.webp")),
    ("http://127.0.0.1:8089/samples/shoe.png", ("http://127.0.0.1:8089", "/samples/shoe.png")),
    ("https://cdn.example.com/shoe.webp?X-Amz-Signature=abc&X-Amz-Credential=AKIA", ("https://cdn.example.com",
                                                                                    "/shoe.webp")),
    ("https://user:hunter2@cdn.example.com/shoe.webp#frag", ("https://cdn.example.com", "/shoe.webp")),
    ("http://[::1]:8080/shoe.png", ("http://[::1]:8080", "/shoe.png")),
    ("https://cdn.example.com", ("https://cdn.example.com", "/")),
    ("  https://cdn.example.com/shoe.webp  ", ("https://cdn.example.com", "/shoe.webp")),
    # nothing to name
    ("", None),
    ("   ", None),
    ("https://", None),
    ("http://cdn.example.com:port/shoe.png", None),
    ("s3://photos", None),
    ("s3://photos/", None),
    ("s3:///shoe.png", None),
    ("/data/sho\x00e.png", None),
    (None, None),
    (42, None),
])
def test_dataset_name(uri, expected):
    assert dataset_name(uri) == (DatasetName(*expected) if expected else None)


def test_a_relative_path_is_named_by_the_absolute_path_the_upload_reads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert dataset_name("photos/shoe.png") == DatasetName("file", str(tmp_path / "photos" / "shoe.png"))
    assert dataset_name("~/shoe.png") == DatasetName("file", str(tmp_path / "home" / "shoe.png"))


def test_dataset_names_keep_order_and_name_each_dataset_once():
    named = lineage.dataset_names(["s3://b/x.png", "https://h/a.png?sig=1", "s3://conn@b/x.png", None,
                                   "https://h/a.png?sig=2", "/tmp/x.png"])
    assert named == [DatasetName("s3://b", "x.png"), DatasetName("https://h", "/a.png"), DatasetName("file", "/tmp/x.png")]


@pytest.mark.parametrize(("image_urls", "expected"), [
    (["https://h/a.png", "/tmp/b.png"], ["https://h/a.png", "/tmp/b.png"]),
    ('["https://h/a.png", "s3://b/c.png"]', ["https://h/a.png", "s3://b/c.png"]),  # Jinja rendered a list to text
    ("https://h/a.png", ["https://h/a.png"]),
    (Path("/tmp/b.png"), ["/tmp/b.png"]),
    ({"not": "a list"}, []),
    ("[unreadable", []),
    (None, []),
])
def test_given_inputs(image_urls, expected):
    assert lineage.given_inputs(image_urls) == expected


def test_given_inputs_read_path_objects_as_their_uri():
    from airflow.sdk import ObjectStoragePath

    assert lineage.given_inputs([ObjectStoragePath("file:///tmp/b.png")]) == ["file:///tmp/b.png"]


def test_batch_inputs_are_every_edits_images_in_order():
    edits = [{"prompt": "p", "image_urls": ["https://h/a.png", "/tmp/b.png"]}, "not an edit",
             {"prompt": "q", "image_urls": "s3://b/c.png"}, {"prompt": "r"}]
    assert lineage.batch_inputs(edits) == ["https://h/a.png", "/tmp/b.png", "s3://b/c.png"]
    assert lineage.batch_inputs("{{ not rendered }}") == []


# ------------------------------------------------------------------------------ what each task reports (its XComs)
class XComTI:
    """Stands in for Airflow's task instance: answers ``xcom_pull`` from the XComs pushed per map index."""

    def __init__(self, task_id: str, map_index: int = -1, pushed: dict[int, dict] | None = None) -> None:
        self.task_id, self.map_index, self.pushed = task_id, map_index, pushed or {}
        self.pulled: list[tuple] = []

    def xcom_pull(self, task_ids, key, map_indexes):
        self.pulled.append((task_ids, key, map_indexes))
        return self.pushed.get(map_indexes, {}).get(key) if task_ids == self.task_id else None


def unmapped(task_id: str, **pushed) -> XComTI:
    """An unmapped task instance that pushed ``pushed`` (XCom key -> value)."""
    return XComTI(task_id, -1, {-1: pushed})


def test_the_stand_in_pushes_under_the_keys_the_operators_use():
    assert (results.XCOM_TASK_ID, results.XCOM_TASK, results.XCOM_TASK_IDS, results.XCOM_STORED_IMAGES) == (
        "seedream_task_id", "seedream_task", "seedream_task_ids", "stored_images")


def as_pairs(datasets) -> list[tuple[str, str]]:
    return [(d.namespace, d.name) for d in datasets]


def as_json(lineage_result) -> str:
    from openlineage.client.serde import Serde

    return json.dumps({"inputs": [Serde.to_dict(d) for d in lineage_result.inputs],
                       "outputs": [Serde.to_dict(d) for d in lineage_result.outputs],
                       "run": {k: Serde.to_dict(v) for k, v in lineage_result.run_facets.items()}})


def edit_operator(**kwargs) -> SeedreamEditOperator:
    base = {"task_id": "edit", "prompt": "p", "image_urls": ["/data/in/shoe.png", "https://cdn.example.com/bag.webp"],
            "wait_for_completion": True, "output_path": "s3://aws_default@bucket/edits"}
    return SeedreamEditOperator(**{**base, **kwargs})


def test_the_edit_operator_names_its_inputs_its_stored_images_and_its_kie_task():
    op = edit_operator()
    ti = unmapped("edit", seedream_task_id="task-1",
                  seedream_task={"task_id": "task-1", "state": "success", "model": "seedream/4.5-edit"},
                  stored_images=["s3://aws_default@bucket/edits/dag/run/edit/image-0.png"])
    got = op.get_openlineage_facets_on_complete(ti)
    assert as_pairs(got.inputs) == [("file", "/data/in/shoe.png"), ("https://cdn.example.com", "/bag.webp")]
    assert as_pairs(got.outputs) == [("s3://bucket", "edits/dag/run/edit/image-0.png")]
    assert set(got.run_facets) == {"seedream", "externalQuery"}
    assert (got.run_facets["seedream"].taskIds, got.run_facets["seedream"].model) == (["task-1"], "seedream/4.5-edit")
    assert (got.run_facets["externalQuery"].externalQueryId, got.run_facets["externalQuery"].source) == ("task-1",
                                                                                                         "kie.ai")
    assert {key for _, key, _ in ti.pulled} <= {results.XCOM_TASK, results.XCOM_TASK_ID, results.XCOM_TASK_IDS,
                                                results.XCOM_STORED_IMAGES}


def test_a_mapped_task_reports_only_its_own_map_index():
    op = edit_operator(task_id="mapped")
    ti = XComTI("mapped", map_index=1, pushed={
        0: {results.XCOM_TASK_ID: "task-a", results.XCOM_STORED_IMAGES: ["file:///out/map-0_image-0.png"]},
        1: {results.XCOM_TASK_ID: "task-b", results.XCOM_STORED_IMAGES: ["file:///out/map-1_image-0.png"]},
    })
    got = op.get_openlineage_facets_on_complete(ti)
    assert as_pairs(got.outputs) == [("file", "/out/map-1_image-0.png")]
    assert got.run_facets["seedream"].taskIds == ["task-b"]
    assert {m for _, _, m in ti.pulled} == {1}


def test_an_operator_that_does_not_wait_reports_its_inputs_and_task_but_no_outputs():
    op = edit_operator(wait_for_completion=False, output_path=None)
    got = op.get_openlineage_facets_on_complete(unmapped("edit", seedream_task_id="task-1"))
    assert len(got.inputs) == 2 and got.outputs == []
    assert got.run_facets["seedream"].taskIds == ["task-1"]


def test_the_sensor_reports_what_it_stored_and_the_model_kie_recorded():
    sensor = SeedreamTaskSensor(task_id="wait", seedream_task_id="task-9", output_path="gs://bucket/out")
    ti = unmapped("wait", seedream_task={"task_id": "task-9", "state": "success",
                                         "model": "seedream/4.5-text-to-image"},
                  stored_images=["gs://bucket/out/a/b/wait/image-0.jpg", "gs://bucket/out/a/b/wait/image-1.jpg"])
    got = sensor.get_openlineage_facets_on_complete(ti)
    assert got.inputs == []
    assert as_pairs(got.outputs) == [("gs://bucket", "out/a/b/wait/image-0.jpg"),
                                     ("gs://bucket", "out/a/b/wait/image-1.jpg")]
    assert (got.run_facets["seedream"].taskIds, got.run_facets["seedream"].model) == (["task-9"],
                                                                                      "seedream/4.5-text-to-image")


def test_the_batch_reports_every_submitted_task_and_every_stored_image():
    op = SeedreamBatchEditOperator(task_id="batch", output_path="/out", edits=[
        {"prompt": "p", "image_urls": ["/in/a.png"]}, {"prompt": "q", "image_urls": ["https://h/b.png"]},
        {"prompt": "r", "image_urls": ["/in/c.png"]}])
    ti = unmapped("batch", seedream_task_ids=["task-a", "task-b", None],  # the third was not submitted
                  stored_images=["file:///out/d/r/batch/edit-0_image-0.png", "file:///out/d/r/batch/edit-1_image-0.png"])
    got = op.get_openlineage_facets_on_complete(ti)
    assert as_pairs(got.inputs) == [("file", "/in/a.png"), ("https://h", "/b.png"), ("file", "/in/c.png")]
    assert as_pairs(got.outputs) == [("file", "/out/d/r/batch/edit-0_image-0.png"),
                                     ("file", "/out/d/r/batch/edit-1_image-0.png")]
    assert got.run_facets["seedream"].taskIds == ["task-a", "task-b"]
    assert "externalQuery" not in got.run_facets  # that standard facet holds one id


def test_a_task_that_failed_before_submitting_reports_only_its_inputs():
    got = edit_operator().get_openlineage_facets_on_complete(unmapped("edit"))
    assert len(got.inputs) == 2 and got.outputs == [] and got.run_facets == {}


def test_the_text_to_image_operator_reports_no_inputs_its_images_and_its_model():
    from airflow_provider_seedream.operators.seedream import SeedreamTextToImageOperator

    ti = unmapped("t2i", seedream_task_id="task-t", seedream_task={"task_id": "task-t", "model": "something-else"},
                  stored_images=["file:///out/t2i/image-0.png", "file:///out/t2i/image-1.png"])
    op = SeedreamTextToImageOperator(task_id="t2i", prompt="a scene", model="bytedance/seedream-v4-text-to-image",
                                     max_images=2, wait_for_completion=True, output_path="/out")
    got = op.get_openlineage_facets_on_complete(ti)
    assert got.inputs == []
    assert as_pairs(got.outputs) == [("file", "/out/t2i/image-0.png"), ("file", "/out/t2i/image-1.png")]
    assert got.run_facets["seedream"].model == "bytedance/seedream-v4-text-to-image"


def test_no_secret_from_urls_reaches_the_lineage(api_key):
    op = edit_operator(
        image_urls=[f"https://user:{api_key}@cdn.example.com/a.png?X-Amz-Signature={api_key}",
                    f"s3://{api_key}@bucket/in/b.png"],
        output_path=f"s3://conn:{api_key}@bucket/out")
    ti = unmapped("edit", seedream_task_id="task-1", stored_images=[f"s3://conn:{api_key}@bucket/out/image-0.png"])
    got = op.get_openlineage_facets_on_complete(ti)
    assert as_pairs(got.inputs) == [("https://cdn.example.com", "/a.png"), ("s3://bucket", "in/b.png")]
    assert as_pairs(got.outputs) == [("s3://bucket", "out/image-0.png")]
    assert api_key not in as_json(got)


def test_the_seedream_run_facet_serializes_with_camel_case_fields():
    from openlineage.client.serde import Serde

    from airflow_provider_seedream.lineage_facets import SeedreamRunFacet

    data = Serde.to_dict(SeedreamRunFacet(taskIds=["a", "b"], model="seedream/4.5-edit"))
    assert data["taskIds"] == ["a", "b"] and data["model"] == "seedream/4.5-edit"
    assert data["_schemaURL"].endswith("#/$defs/RunFacet") and data["_producer"]


def openlineage_absent(monkeypatch) -> None:
    """Make every OpenLineage import fail, as on a machine without the provider and its client."""
    for name in list(sys.modules):
        if name.split(".")[0] == "openlineage" or name.startswith(("airflow.providers.openlineage",
                                                                    "airflow_provider_seedream.lineage_facets")):
            monkeypatch.delitem(sys.modules, name)
    for name in ("openlineage", "airflow.providers.openlineage"):
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: "import name" raises ImportError
    import airflow_provider_seedream

    monkeypatch.delattr(airflow_provider_seedream, "lineage_facets", raising=False)  # else "from ... import" finds it


def test_without_the_openlineage_provider_the_method_returns_none(monkeypatch):
    ti = unmapped("edit", seedream_task_id="task-1")
    assert edit_operator().get_openlineage_facets_on_complete(ti) is not None  # the control: provider present
    openlineage_absent(monkeypatch)
    with pytest.raises(ImportError):
        import airflow.providers.openlineage.extractors  # noqa: F401
    assert edit_operator().get_openlineage_facets_on_complete(ti) is None
    assert SeedreamTaskSensor(task_id="wait", seedream_task_id="t").get_openlineage_facets_on_complete(ti) is None


def test_importing_the_operators_and_the_sensor_does_not_import_openlineage():
    # Airflow's provider discovery reads every installed provider's get_provider_info (for its config): not ours.
    code = ("import sys, airflow.sdk\n"
            "import airflow_provider_seedream.operators.seedream, airflow_provider_seedream.sensors.seedream\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'openlineage' or 'lineage_facets' in m\n"
            "             or m.startswith('airflow.providers.openlineage.') and not m.endswith('.get_provider_info')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------------- the listener, in a DAG run
# dag.test() runs in a fresh interpreter: the OpenLineage plugin reads its configuration (and decides whether to
# listen at all) once per process, when Airflow loads plugins, and the other tests of the session run without it.
RUNNER = """
import json, sys
import support
run = support.load_dag(sys.argv[1], "seedream_lineage").test()
print("RESULT " + json.dumps({"state": str(run.state), "run_id": run.run_id, "dag_id": run.dag_id}))
"""


def complete_events(path: Path) -> dict[tuple[str, int], dict]:
    """The task COMPLETE events of the run, by (Airflow task id, map index)."""
    found = {}
    for line in path.read_text().splitlines():
        event = json.loads(line)
        job = event["job"]["name"]
        if event["eventType"] == "COMPLETE" and job.startswith("seedream_lineage."):
            map_index = event["run"]["facets"]["airflow"]["taskInstance"].get("map_index")
            found[(job.split(".", 1)[1], -1 if map_index is None else map_index)] = event
    return found


def pairs(datasets: list[dict]) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in datasets]


def test_dag_run_emits_the_images_read_and_stored(emulator, migrated_db, tmp_path, api_key):
    samples = requests.get(f"{emulator.url}/samples/", timeout=10).json()["samples"]
    png = next(s for s in samples if s["name"].endswith(".png"))
    webp = next(s for s in samples if s["name"].endswith(".webp"))
    local = tmp_path / "photos" / "shoe.png"
    local.parent.mkdir()
    local.write_bytes(requests.get(png["url"], timeout=10).content)
    signature = "sig-5f0c1e2d9a7b4c3e"  # a signed URL: its query must reach no event
    image_url = f"{webp['url']}?X-Amz-Signature={signature}"
    web = (f"http://{urlsplit(emulator.url).netloc}", urlsplit(webp["url"]).path)
    out = tmp_path / "edited"
    events_file = tmp_path / "openlineage.jsonl"
    env = dict(os.environ)
    env.update({
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "seedream-tests",
        # The listener's default runs each event in a forked child; under dag.test() the task's supervisor lives in
        # the task's own process and cannot serve a forked child's XCom reads (it waits out execution_timeout and
        # is killed, and no COMPLETE event is written). A real worker serves them (checked by hand, LocalExecutor).
        "AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD": "True",
        "SEEDREAM_LINEAGE_LOCAL_IMAGE": str(local),
        "SEEDREAM_LINEAGE_IMAGE_URL": image_url,
        "SEEDREAM_LINEAGE_OUTPUT": str(out),
    })
    done = subprocess.run([sys.executable, "-c", RUNNER, str(DAGS)], cwd=TESTS, env=env, capture_output=True,
                          text=True, timeout=240)
    result_line = next((line for line in done.stdout.splitlines() if line.startswith("RESULT ")), None)
    assert done.returncode == 0 and result_line, done.stderr[-4000:]
    result = json.loads(result_line.removeprefix("RESULT "))
    assert result["state"] in ("success", "DagRunState.SUCCESS")

    class Run:
        run_id, dag_id = result["run_id"], result["dag_id"]

    stored = stored_xcoms(Run, results.XCOM_STORED_IMAGES)
    events = complete_events(events_file)
    assert set(events) == {("edit", -1), ("submit", -1), ("wait", -1), ("batch", -1), ("mapped", 0), ("mapped", 1)}
    kie_tasks = set(emulator.stats()["tasks"])

    def outputs_of(task: str, map_index: int = -1) -> list[tuple[str, str]]:
        uris = stored[(task, map_index)]
        assert uris and all(Path(urlsplit(uri).path).is_file() for uri in uris)
        return [("file", urlsplit(uri).path) for uri in uris]

    def seedream_facet(task: str, map_index: int = -1) -> dict:
        facet = events[(task, map_index)]["run"]["facets"]["seedream"]
        assert set(facet["taskIds"]) <= kie_tasks and facet["model"] == "seedream/4.5-edit"
        return facet

    edit = events[("edit", -1)]
    assert pairs(edit["inputs"]) == [("file", str(local)), web]
    assert pairs(edit["outputs"]) == outputs_of("edit") and len(edit["outputs"]) == 1
    edit_task_id = stored_xcoms(Run, results.XCOM_TASK_ID)[("edit", -1)]
    assert seedream_facet("edit")["taskIds"] == [edit_task_id]
    assert edit["run"]["facets"]["externalQuery"]["externalQueryId"] == edit_task_id

    submitted = stored_xcoms(Run, "return_value")[("submit", -1)]
    assert pairs(events[("submit", -1)]["inputs"]) == [web] and events[("submit", -1)]["outputs"] == []
    assert seedream_facet("submit")["taskIds"] == [submitted]
    assert events[("wait", -1)]["inputs"] == []
    assert pairs(events[("wait", -1)]["outputs"]) == outputs_of("wait")
    assert seedream_facet("wait")["taskIds"] == [submitted]

    batch = events[("batch", -1)]
    assert pairs(batch["inputs"]) == [("file", str(local)), web]
    assert pairs(batch["outputs"]) == outputs_of("batch") and len(batch["outputs"]) == 2
    assert seedream_facet("batch")["taskIds"] == stored_xcoms(Run, results.XCOM_TASK_IDS)[("batch", -1)]

    for map_index, source in ((0, ("file", str(local))), (1, web)):
        mapped = events[("mapped", map_index)]
        assert pairs(mapped["inputs"]) == [source]
        assert pairs(mapped["outputs"]) == outputs_of("mapped", map_index)
        assert seedream_facet("mapped", map_index)["taskIds"] == [stored_xcoms(Run, results.XCOM_TASK_ID)[
            ("mapped", map_index)]]

    text = events_file.read_text()
    assert api_key not in text and signature not in text and "X-Amz-Signature" not in text
    logs = done.stdout + done.stderr  # the run's own logs: every task ran in that process
    assert "Successfully emitted OpenLineage `COMPLETE` event" in logs and "succeeded in" in logs
    assert api_key not in logs and signature not in logs
    # What the README's "Lineage (OpenLineage)" section shows (run with -s to see it).
    print(json.dumps({"eventType": edit["eventType"], "job": {"name": edit["job"]["name"]},
                      **{side: [{"namespace": d["namespace"], "name": d["name"]} for d in edit[side]]
                         for side in ("inputs", "outputs")},
                      "run": {"facets": {k: edit["run"]["facets"][k] for k in ("seedream", "externalQuery")}}},
                     indent=2))
