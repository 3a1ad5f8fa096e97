"""The example DAGs through Airflow's own ``dag.test()``: real task runner, trigger rebuilt from its kwargs and run."""

from __future__ import annotations

from pathlib import Path

import pytest
import support

EXAMPLES = Path(__file__).resolve().parent.parent / "example_dags"


def load_dag(dag_id: str):
    return support.load_dag(EXAMPLES, dag_id)


def test_example_dags_parse_without_touching_the_network(emulator, monkeypatch):
    before = sum(emulator.stats()["requests"].values())
    bag = support.dagbag_class()(dag_folder=str(EXAMPLES))
    assert not bag.import_errors
    assert {"example_seedream_edit", "example_seedream_fanout", "example_seedream_chain", "example_seedream_nightly",
            "example_seedream_batch"} <= set(bag.dag_ids)
    assert sum(emulator.stats()["requests"].values()) == before


def test_edit_dag_end_to_end(emulator, migrated_db, monkeypatch, tmp_path, api_key):
    from PIL import Image

    monkeypatch.setenv("SEEDREAM_EXAMPLE_IMAGE_URL", emulator.sample_url())
    monkeypatch.setenv("SEEDREAM_EXAMPLE_OUTPUT_DIR", str(tmp_path))
    monkeypatch.setenv("SEEDREAM_EXAMPLE_POLL_INTERVAL", "0.2")
    dag = load_dag("example_seedream_edit")
    run = dag.test(run_conf={"aspect_ratio": "16:9"})
    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    images = list(tmp_path.rglob("image-*"))  # stored by the sensor's output_path
    assert [p.relative_to(tmp_path).parts[0::2] for p in images] == [("example_seedream_edit", "wait")]
    assert len(images) == 1
    with Image.open(images[0]) as img:
        assert img.width / img.height == pytest.approx(16 / 9, rel=0.02)
    stats = emulator.stats()
    assert stats["requests"]["createTask"] == 1
    assert api_key.encode() not in migrated_db.read_bytes()


def test_fanout_dag_maps_one_edit_per_photo(emulator, migrated_db, monkeypatch):
    urls = [emulator.sample_url()] * 3
    monkeypatch.setenv("SEEDREAM_EXAMPLE_IMAGE_URLS", ",".join(urls))
    monkeypatch.setenv("SEEDREAM_EXAMPLE_POLL_INTERVAL", "0.2")
    dag = load_dag("example_seedream_fanout")
    run = dag.test()
    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    assert emulator.stats()["requests"]["createTask"] == 3


def test_failed_remote_task_fails_the_run(emulator, migrated_db, monkeypatch, tmp_path):
    monkeypatch.setenv("SEEDREAM_EXAMPLE_IMAGE_URL", emulator.sample_url())
    monkeypatch.setenv("SEEDREAM_EXAMPLE_OUTPUT_DIR", str(tmp_path))
    monkeypatch.setenv("SEEDREAM_EXAMPLE_POLL_INTERVAL", "0.2")
    dag = load_dag("example_seedream_edit")
    run = dag.test(run_conf={"prompt": "[emulator: outcome=fail, fail_code=500, fail_msg=Internal error]"})
    assert str(run.state) in ("failed", "DagRunState.FAILED")
    assert not list(tmp_path.rglob("image-*"))


def test_chain_dag_feeds_one_model_into_the_next(emulator, migrated_db, monkeypatch, tmp_path, api_key):
    from PIL import Image

    monkeypatch.setenv("SEEDREAM_EXAMPLE_IMAGE_URL", emulator.sample_url())
    monkeypatch.setenv("SEEDREAM_EXAMPLE_OUTPUT_DIR", str(tmp_path))
    monkeypatch.setenv("SEEDREAM_EXAMPLE_POLL_INTERVAL", "0.2")
    dag = load_dag("example_seedream_chain")
    run = dag.test()
    assert str(run.state) in ("success", "DagRunState.SUCCESS")

    tasks = sorted(emulator.stats()["tasks"].values(), key=lambda t: t["created"])
    assert [t["model"] for t in tasks] == ["seedream/4.5-text-to-image", "seedream/5-lite-image-to-image",
                                           "bytedance/seedream-v4-edit"]
    scene, place, variants = (support.stored_xcoms(run, "result_urls")[(name, -1)]
                              for name in ("scene", "place", "variants"))
    assert tasks[1]["input"]["image_urls"] == [scene[0], emulator.sample_url()]  # the scene, then the product
    assert tasks[2]["input"]["image_urls"] == [place[0]]
    assert len(variants) == 2 and tasks[2]["input"]["max_images"] == 2

    stored = {step: sorted(p.name for p in (tmp_path / "example_seedream_chain").rglob(f"{step}/image-*"))
              for step in ("scene", "place", "variants")}
    assert {step: [name.split(".")[0] for name in names] for step, names in stored.items()} == {
        "scene": ["image-0"], "place": ["image-0"], "variants": ["image-0", "image-1"]}
    for path in (tmp_path / "example_seedream_chain").rglob("variants/image-*"):
        with Image.open(path) as img:
            assert img.width / img.height == pytest.approx(4 / 3, rel=0.02)  # image_size landscape_4_3
    assert support.stored_xcoms(run, "return_value")[("report", -1)]["variants"] == \
        support.stored_xcoms(run, "stored_images")[("variants", -1)]
    assert api_key.encode() not in migrated_db.read_bytes()
