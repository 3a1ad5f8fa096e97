"""The package type-checks (it ships ``py.typed``, so users' mypy reads our annotations)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_seedream.version_compat import AIRFLOW_V_3_3_PLUS

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="type-checked against the newest Airflow only")
def test_mypy_is_clean(tmp_path):
    pytest.importorskip("mypy")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "airflow_provider_seedream", "--ignore-missing-imports",
         "--cache-dir", str(tmp_path / "mypy-cache")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:]
