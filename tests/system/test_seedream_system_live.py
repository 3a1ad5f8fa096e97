"""System test on the live kie.ai: ``example_seedream_system`` with your key, one basic edit, about 6.5 credits.

Run it with ``SEEDREAM_SYSTEM_API_KEY=<your kie.ai key> pytest -m system tests/system``. Without the variable it is
skipped (CI has no internet and no key). The key goes only into the connection's environment variable; the run's
output is checked for it and never repeated when it is found.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import support

KEY_ENV = "SEEDREAM_SYSTEM_API_KEY"
LIVE_BASE_URL = "https://api.kie.ai"
SYSTEM = Path(__file__).resolve().parent
SPENT_LINE = re.compile(r"Seedream credits spent: (\S+) \(balance (\S+) before the edit, (\S+) after\)")

pytestmark = [
    pytest.mark.system,
    pytest.mark.timeout(20 * 60),
    pytest.mark.skipif(
        not os.environ.get(KEY_ENV, "").strip(),
        reason=f"{KEY_ENV} is not set: the system test runs one paid edit (about 6.5 credits) on {LIVE_BASE_URL}",
    ),
]


def redacted(text: str, key: str) -> str:
    return text.replace(key, "***")


def test_one_basic_edit_on_live_kie(migrated_db, monkeypatch, tmp_path, capfd):
    key = os.environ[KEY_ENV].strip()
    monkeypatch.setenv(support.CONN_ENV, support.conn_json(LIVE_BASE_URL, key))
    monkeypatch.setenv("SEEDREAM_SYSTEM_OUTPUT_DIR", str(tmp_path))
    monkeypatch.setenv("SEEDREAM_SYSTEM_POLL_INTERVAL", "3")
    support.add_dag_bundle(monkeypatch, "seedream-system-tests", SYSTEM)

    run = support.load_dag(SYSTEM / "example_seedream_system.py", "example_seedream_system").test()
    out, err = capfd.readouterr()
    text = out + err
    # Checked before anything is shown; on a leak nothing of the output is repeated (pytest would print operands).
    leaked = key in text or key.encode() in migrated_db.read_bytes()
    assert not leaked, "the API key appeared in the run's output or the metadata DB"
    succeeded = str(run.state) in ("success", "DagRunState.SUCCESS")
    assert succeeded, "the run failed; its output ends with:\n" + redacted(text[-4000:], key)

    images = [p for p in tmp_path.rglob("image-*") if p.is_file()]
    assert len(images) == 1 and images[0].stat().st_size > 0
    (spent_line,) = SPENT_LINE.findall(text)
    spent, before, after = (float(figure) for figure in spent_line)
    assert spent > 0, "the balance did not go down: was the edit billed?"
    with capfd.disabled():
        print(f"\nSystem test on {LIVE_BASE_URL}: one basic edit stored as {images[0].name} "
              f"({images[0].stat().st_size} bytes); credits spent: {spent:g} (balance {before:g} -> {after:g})")
