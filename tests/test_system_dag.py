"""The live system test's DAG (``tests/system/example_seedream_system.py``) run against the emulator in every suite,
so the DAG a user runs on their own account is never dead code: same file, same tasks, only the connection differs.
"""

from __future__ import annotations

import re
from pathlib import Path

import requests
import support
from support import stored_xcoms

SYSTEM = Path(__file__).resolve().parent / "system"

# What the DAG prints (tests/system/test_seedream_system_live.py reads the same lines from the live run).
SPENT_LINE = re.compile(r"Seedream credits spent: (\S+) \(balance (\S+) before the edit, (\S+) after\)")
STORED_LINE = re.compile(r"Edited image stored: (\S+)")


def load_system_dag():
    return support.load_dag(SYSTEM / "example_seedream_system.py", "example_seedream_system")


def test_system_dag_edits_once_stores_the_image_and_prints_what_the_emulator_charged(
        emulator, migrated_db, monkeypatch, tmp_path, logs, api_key):
    # Neither kie's balance nor its price: the printed figures must come from what the emulator answers.
    requests.post(f"{emulator.url}/_emulator/credits", json={"balance": 517.75}, timeout=5).raise_for_status()
    emulator.configure(credits_per_task=12.25)
    balance_at_start = emulator.stats()["credits"]
    monkeypatch.setenv("SEEDREAM_SYSTEM_IMAGE_URL", emulator.sample_url())
    monkeypatch.setenv("SEEDREAM_SYSTEM_OUTPUT_DIR", str(tmp_path))
    monkeypatch.setenv("SEEDREAM_SYSTEM_POLL_INTERVAL", "0.2")
    support.add_dag_bundle(monkeypatch, "seedream-system-tests", SYSTEM)

    run = load_system_dag().test()
    assert str(run.state) in ("success", "DagRunState.SUCCESS")

    stats = emulator.stats()
    assert stats["requests"]["createTask"] == 1
    (task,) = stats["tasks"].values()
    assert task["input"]["quality"] == "basic" and len(task["input"]["image_urls"]) == 1
    charged = balance_at_start - stats["credits"]

    text = logs.text()
    (spent_line,) = SPENT_LINE.findall(text)
    spent, before, after = (float(figure) for figure in spent_line)
    assert before == balance_at_start
    assert after == stats["credits"]
    assert spent == charged == stats["config"]["credits_per_task"]
    assert stored_xcoms(run, "return_value")[("credits_spent", -1)] == spent

    images = sorted(p for p in tmp_path.rglob("image-*") if p.is_file())
    assert len(images) == 1 and images[0].stat().st_size > 0
    assert [p.relative_to(tmp_path).parts[0::2] for p in images] == [("example_seedream_system", "edit")]
    assert STORED_LINE.findall(text) == [f"file://{images[0]}"]

    assert api_key not in text
    assert api_key.encode() not in migrated_db.read_bytes()
