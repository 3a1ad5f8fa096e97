"""The emulator stands beside the provider, not inside it: it must never come to agree with the client by sharing
its code, so it imports nothing of it."""

from __future__ import annotations

import subprocess
import sys


def test_the_emulator_imports_nothing_of_the_provider():
    code = ("import sys, seedream_emulator, seedream_emulator.__main__; "
            "print(sorted(m for m in sys.modules if m.startswith('airflow_provider_seedream')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_the_provider_package_holds_no_emulator():
    import airflow_provider_seedream

    from pathlib import Path

    assert not (Path(airflow_provider_seedream.__file__).parent / "emulator").exists()
