"""The nightly example DAG end to end through ``dag.test()``: a folder (or bucket) of photos in, stored edits out.

Real task runner, real mapping, uploads to the emulator's File Upload API, deferred waits run inline, results
streamed to ``file://`` (and, in the second test, to an in-memory bucket), and the stored paths handed downstream.
"""

from __future__ import annotations

import json
from pathlib import Path

import pendulum
import pytest
import requests
import support
from support import stored_xcoms

EXAMPLES = Path(__file__).resolve().parent.parent / "example_dags"
LOGICAL_DATE = pendulum.datetime(2026, 3, 1, 2, tz="UTC")


@pytest.fixture
def kie(emulator, monkeypatch):
    """The emulator (its fixture already points the connection, uploads included, at it), polled every 0.2 s."""
    monkeypatch.setenv("SEEDREAM_EXAMPLE_POLL_INTERVAL", "0.2")
    return emulator


def sample_photos(kie, count: int = 3) -> dict[str, bytes]:
    listing = requests.get(f"{kie.url}/samples/", timeout=10).json()["samples"]
    chosen: dict[str, bytes] = {}
    for sample in listing:  # one of each format first, so the run covers PNG, JPEG and WebP inputs
        if len(chosen) < count and all(not name.endswith(sample["name"][-4:]) for name in chosen):
            chosen[sample["name"]] = requests.get(sample["url"], timeout=10).content
    return chosen


def photo_folder(kie, root: Path, count: int = 3) -> Path:
    """``root/photos`` holding ``count`` of the emulator's sample photos (one of each format first)."""
    folder = root / "photos"
    folder.mkdir()
    for name, data in sample_photos(kie, count).items():
        (folder / name).write_bytes(data)
    return folder


def load_dag(dag_id: str = "example_seedream_nightly"):
    return support.load_dag(EXAMPLES, dag_id)


def test_nightly_dag_edits_a_folder_and_stores_under_a_dated_prefix(kie, migrated_db, tmp_path, monkeypatch,
                                                                     api_key):
    photos = photo_folder(kie, tmp_path)
    (photos / "README.txt").write_text("not a photo")
    out = tmp_path / "edited"
    monkeypatch.setenv("SEEDREAM_NIGHTLY_INPUT", str(photos))
    monkeypatch.setenv("SEEDREAM_NIGHTLY_OUTPUT", f"file://{out}")

    run = load_dag().test(logical_date=LOGICAL_DATE)
    assert str(run.state) in ("success", "DagRunState.SUCCESS")

    stats = kie.stats()
    assert stats["requests"]["createTask"] == 3 and stats["requests"]["upload"] == 3
    dated = out / "2026-03-01"
    images = sorted(p for p in dated.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert [p.name.split(".")[0] for p in images] == ["map-0_image-0", "map-1_image-0", "map-2_image-0"]
    assert all(p.parent.name == "store" and p.stat().st_size > 0 for p in images)
    assert not list(dated.rglob("*.part-*"))

    manifest = json.loads((dated / "manifest.json").read_text())
    assert manifest["date"] == "2026-03-01"
    assert manifest["images"] == [f"file://{p}" for p in images]
    assert stored_xcoms(run, "return_value")[("publish", -1)] == f"file://{dated}/manifest.json"

    results = stored_xcoms(run, "result_urls")
    links = stored_xcoms(run, "_link_SeedreamResultImageLink")
    for index in range(3):
        assert links[("store", index)] == results[("store", index)][0]
    sent = [url for task in stats["tasks"].values() for url in task["input"]["image_urls"]]
    assert all("/files/airflow-seedream/" in url for url in sent)  # uploaded inputs, not local paths
    assert api_key.encode() not in migrated_db.read_bytes()
    assert all(api_key not in str(p) for p in dated.rglob("*"))


@pytest.fixture
def buckets(kie):
    """fsspec's in-memory filesystem as ``memory://``, holding two photos under ``memory://photos/incoming``."""
    from airflow.sdk.io.store import _STORE_CACHE, attach
    from fsspec.implementations.memory import MemoryFileSystem

    fs = MemoryFileSystem()
    fs.store.clear()
    attach("memory", fs=fs)
    try:
        for name, data in sample_photos(kie, count=2).items():
            fs.pipe_file(f"/photos/incoming/{name}", data)
        yield fs
    finally:
        _STORE_CACHE.pop("memory", None)
        fs.store.clear()


def test_nightly_dag_reads_and_writes_buckets(buckets, migrated_db, monkeypatch):
    """The same DAG with ``memory://`` buckets for photos and results."""
    monkeypatch.setenv("SEEDREAM_NIGHTLY_INPUT", "memory://photos/incoming")
    monkeypatch.setenv("SEEDREAM_NIGHTLY_OUTPUT", "memory://edits")
    run = load_dag().test(logical_date=LOGICAL_DATE)
    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    stored = sorted(k for k in buckets.store if k.startswith("/edits/2026-03-01/") and "image-0" in k)
    assert len(stored) == 2 and not any(".part-" in k for k in buckets.store)
    manifest = json.loads(buckets.cat_file("/edits/2026-03-01/manifest.json"))
    assert len(manifest["images"]) == 2
    assert all(uri.startswith("memory://") and "/edits/2026-03-01/" in uri for uri in manifest["images"])


def test_batch_dag_edits_a_folder_in_one_task_and_lists_each_photo(kie, migrated_db, tmp_path, monkeypatch, api_key):
    """``example_seedream_batch``: one batch task submits, waits and stores; the manifest maps photo -> kie task."""
    photos = photo_folder(kie, tmp_path)
    (photos / "notes.txt").write_text("not a photo")
    out = tmp_path / "edited"
    monkeypatch.setenv("SEEDREAM_BATCH_INPUT", str(photos))
    monkeypatch.setenv("SEEDREAM_BATCH_OUTPUT", f"file://{out}")

    run = load_dag("example_seedream_batch").test(logical_date=LOGICAL_DATE)
    assert str(run.state) in ("success", "DagRunState.SUCCESS")

    stats = kie.stats()
    assert stats["requests"]["createTask"] == 3 and stats["requests"]["upload"] == 3
    dated = out / "2026-03-01"
    manifest = json.loads((dated / "manifest.json").read_text())
    assert manifest["date"] == "2026-03-01"
    names = sorted(p.name for p in photos.iterdir() if p.suffix != ".txt")
    assert [Path(p["photo"]).name for p in manifest["photos"]] == names  # input order, one entry per photo
    assert {p["kie_task_id"] for p in manifest["photos"]} == set(stats["tasks"])  # each a task kie accepted
    for index, photo in enumerate(manifest["photos"]):
        assert photo["state"] == "success" and photo["fail_msg"] is None
        [image] = photo["images"]
        stored = Path(image.removeprefix("file://"))
        assert stored.relative_to(dated).parts[0::2] == ("example_seedream_batch", "edit_all")  # dag, run, task
        assert stored.name.startswith(f"edit-{index}_image-0")
        assert stored.stat().st_size > 0
    assert not list(dated.rglob("*.part-*"))
    assert stored_xcoms(run, "return_value")[("publish", -1)] == f"file://{dated}/manifest.json"
    assert api_key.encode() not in migrated_db.read_bytes()


def test_batch_dag_writes_the_manifest_then_fails_when_kie_fails_the_edits(kie, migrated_db, tmp_path, monkeypatch):
    photos = photo_folder(kie, tmp_path, count=2)
    out = tmp_path / "edited"
    monkeypatch.setenv("SEEDREAM_BATCH_INPUT", str(photos))
    monkeypatch.setenv("SEEDREAM_BATCH_OUTPUT", f"file://{out}")
    failing = "[emulator: outcome=fail, fail_code=422, fail_msg=Image rejected by the content filter]"

    run = load_dag("example_seedream_batch").test(logical_date=LOGICAL_DATE, run_conf={"prompt": failing})
    assert str(run.state) in ("failed", "DagRunState.FAILED")
    assert kie.stats()["requests"]["createTask"] == 2  # each photo submitted once, none again
    manifest = json.loads((out / "2026-03-01" / "manifest.json").read_text())
    assert [Path(p["photo"]).name for p in manifest["photos"]] == sorted(p.name for p in photos.iterdir())
    assert [(p["state"], p["fail_code"], p["images"]) for p in manifest["photos"]] == [("fail", "422", [])] * 2
    assert all(p["fail_msg"] == "Image rejected by the content filter" for p in manifest["photos"])
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["edit_all"].endswith("success") and states["publish"].endswith("failed")


def test_batch_dag_on_a_night_without_photos_pays_nothing_and_writes_an_empty_manifest(kie, migrated_db, tmp_path,
                                                                                       monkeypatch):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "notes.txt").write_text("not a photo")
    out = tmp_path / "edited"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEEDREAM_BATCH_INPUT", "photos")  # relative folders, as a user may give them
    monkeypatch.setenv("SEEDREAM_BATCH_OUTPUT", "edited")

    run = load_dag("example_seedream_batch").test(logical_date=LOGICAL_DATE)
    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    assert sum(kie.stats()["requests"].values()) == 0  # no upload, no submit, no status query
    assert json.loads((out / "2026-03-01" / "manifest.json").read_text()) == {"date": "2026-03-01", "photos": []}


def test_batch_dag_reads_and_writes_buckets(buckets, migrated_db, monkeypatch):
    """``example_seedream_batch`` with ``memory://`` buckets for photos, results and the manifest."""
    monkeypatch.setenv("SEEDREAM_BATCH_INPUT", "memory://photos/incoming")
    monkeypatch.setenv("SEEDREAM_BATCH_OUTPUT", "memory://edits")
    run = load_dag("example_seedream_batch").test(logical_date=LOGICAL_DATE)
    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    manifest = json.loads(buckets.cat_file("/edits/2026-03-01/manifest.json"))
    images = [uri for photo in manifest["photos"] for uri in photo["images"]]
    # memory://edits/... on Airflow 3.3, memory:///edits/... on 3.1: the same object
    keys = ["/" + uri.removeprefix("memory://").lstrip("/") for uri in images if uri.startswith("memory://")]
    assert len(keys) == 2 and all(key.startswith("/edits/2026-03-01/") for key in keys)
    assert all(buckets.cat_file(key) for key in keys)  # each stored, not only named
    assert not any(".part-" in key for key in buckets.store)
