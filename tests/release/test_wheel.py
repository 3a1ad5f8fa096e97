"""The release artefacts: the sdist and wheel ``make dist`` builds, what the wheel holds, and the wheel installed on
its own (a fresh virtual environment with only Airflow and the wheel, nothing of this checkout on ``sys.path``)
registering the provider and running the example DAG against the emulator it ships.

Marker ``release``; runs on the newest Airflow only (``make test-oldest`` deselects it): it builds a virtual
environment. Measured on a shared 2-core machine with a warm pip cache (load average 4): 178 s for the module, of which
the build 11 s, the fresh environment 84 s, ``airflow providers list`` 22 s (its first run compiles what it imports),
``airflow db migrate`` and ``airflow dags test`` 57 s.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import secrets
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

import airflow_provider_seedream

pytestmark = [pytest.mark.release, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("airflow_provider_seedream", "seedream_emulator")
DIST_NAME = "airflow_provider_seedream"
#: Nothing of these may ship in the wheel (``example_dags`` included: see the README's "Building a release").
NOT_SHIPPED = ("tests", "benchmarks", "example_dags", "scripts", "constraints", ".demo", ".venv", "dist", "build")
ENTRY_POINT = "airflow_provider_seedream.get_provider_info:get_provider_info"


def run(args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 600,
        secret: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command to its end; on failure, fail with the tail of its output (``secret`` replaced)."""
    result = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    if result.returncode != 0:
        tail = result.stdout[-3000:] + "\n" + result.stderr[-3000:]
        if secret:
            tail = tail.replace(secret, "***")
        pytest.fail(f"{' '.join(args[:4])} ... exited {result.returncode}:\n{tail}", pytrace=False)
    return result


def source_modules(package: str) -> set[str]:
    """The package's files as the wheel should hold them (sources and ``py.typed``)."""
    base = ROOT / package
    return {
        f"{package}/{path.relative_to(base).as_posix()}"
        for path in base.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".typed")
    }


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict[str, Path]:
    """Build the sdist and the wheel as ``make dist`` does (``python -m build``: the wheel is built from the sdist)."""
    out = tmp_path_factory.mktemp("dist")
    started = time.monotonic()
    run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=out)
    print(f"\nbuild: {time.monotonic() - started:.1f} s")
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def test_the_wheel_holds_the_provider_and_the_emulator_and_nothing_else(dist):
    names = zipfile.ZipFile(dist["wheel"]).namelist()
    expected = set().union(*(source_modules(package) for package in PACKAGES))
    assert {"airflow_provider_seedream/hooks/seedream.py", "seedream_emulator/__main__.py",
            "airflow_provider_seedream/py.typed"} <= expected  # the source walk found the packages
    assert expected <= set(names), sorted(expected - set(names))
    info_dir = f"{DIST_NAME}-{airflow_provider_seedream.__version__}.dist-info"
    assert {name.split("/")[0] for name in names} == {*PACKAGES, info_dir}
    assert [name for name in names if name.split("/")[0] in PACKAGES and name not in expected] == []
    assert not [name for name in names if any(part in NOT_SHIPPED for part in name.split("/"))]
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_the_wheel_declares_the_provider_entry_point_and_its_metadata(dist):
    wheel = zipfile.ZipFile(dist["wheel"])
    info_dir = f"{DIST_NAME}-{airflow_provider_seedream.__version__}.dist-info"
    entry_points = configparser.ConfigParser()
    entry_points.read_string(wheel.read(f"{info_dir}/entry_points.txt").decode())
    assert dict(entry_points["apache_airflow_provider"]) == {"provider_info": ENTRY_POINT}

    metadata = wheel.read(f"{info_dir}/METADATA").decode()
    fields = [tuple(line.split(": ", 1)) for line in metadata.split("\n\n", 1)[0].splitlines() if ": " in line]
    assert ("Name", "airflow-provider-seedream") in fields
    assert ("Version", airflow_provider_seedream.__version__) in fields
    assert ("Description-Content-Type", "text/markdown") in fields
    assert ("Provides-Extra", "emulator") in fields
    requires = [value for key, value in fields if key == "Requires-Dist"]
    assert any(re.fullmatch(r"apache-airflow>=3\.1\.0", value) for value in requires), requires
    assert any(value.startswith("Documentation, ") for key, value in fields if key == "Project-URL")


def test_the_sdist_holds_the_sources_and_the_changelog(dist):
    with tarfile.open(dist["sdist"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "CHANGELOG.md"} <= names
    expected = set().union(*(source_modules(package) for package in PACKAGES))
    assert expected <= names, sorted(expected - names)
    assert not [name for name in names if name.split("/")[0] in NOT_SHIPPED]  # tests: MANIFEST.in says why


def test_twine_check_passes(dist):
    result = run([sys.executable, "-m", "twine", "check", "--strict", str(dist["sdist"]), str(dist["wheel"])])
    assert result.stdout.count("PASSED") == 2, result.stdout


# ------------------------------------------------------------------------------------- the wheel installed alone
@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory) -> Path:
    """A fresh virtual environment with ``apache-airflow`` (this suite's version) and the built wheel only."""
    venv = tmp_path_factory.mktemp("wheel-venv") / "venv"
    started = time.monotonic()
    run([sys.executable, "-m", "venv", str(venv)])
    airflow_version = version("apache-airflow")
    python_tag = f"{sys.version_info[0]}.{sys.version_info[1]}"
    constraints = ROOT / "constraints" / f"airflow-{airflow_version}-python-{python_tag}.txt"
    # --no-compile: byte-compiling all of Airflow at install took longer than compiling what the commands import.
    args = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "--no-compile", "-q"]
    if constraints.is_file():
        args += ["-c", str(constraints)]
    run(args + [f"apache-airflow=={airflow_version}", str(dist["wheel"])], cwd=venv.parent, timeout=1200)
    print(f"\nfresh venv with apache-airflow=={airflow_version} and the wheel: {time.monotonic() - started:.1f} s")
    return venv


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment for the installed venv's commands: nothing of this suite's Airflow settings or connection."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AIRFLOW", "SEEDREAM_", "PYTHON", "VIRTUAL_ENV", "COV_CORE"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "PYTHONNOUSERSITE": "1",
    })
    env.update(extra)
    return env


def test_the_installed_packages_come_from_the_wheel(installed, tmp_path):
    python = str(installed / "bin" / "python")
    result = run([python, "-c", "import airflow_provider_seedream as p, seedream_emulator as e, sys; "
                  "print(p.__file__); print(e.__file__); print(p.__version__)"],
                 env=clean_env(tmp_path), cwd=tmp_path)
    provider_file, emulator_file, installed_version = result.stdout.split()
    site = str(installed / "lib")
    assert provider_file.startswith(site) and emulator_file.startswith(site), result.stdout
    assert installed_version == airflow_provider_seedream.__version__


def test_airflow_providers_list_shows_the_installed_provider(installed, tmp_path):
    result = run([str(installed / "bin" / "airflow"), "providers", "list", "-o", "json"],
                 env=clean_env(tmp_path), cwd=tmp_path)
    listing = json.loads(result.stdout[result.stdout.index("["):])
    ours = [row for row in listing if row["package_name"] == "airflow-provider-seedream"]
    assert len(ours) == 1, listing
    assert ours[0]["version"] == airflow_provider_seedream.__version__


class EmulatorFromWheel:
    """``python -m seedream_emulator`` of the installed wheel, on a free loopback port, accepting one key."""

    def __init__(self, venv: Path, cwd: Path, key: str) -> None:
        self.log = cwd / "emulator.log"
        self._out = self.log.open("w")
        self.process = subprocess.Popen(
            [str(venv / "bin" / "python"), "-m", "seedream_emulator", "--port", "0", "--task-seconds", "1",
             "--no-rate-limits", "--api-key", key],
            stdout=self._out, stderr=subprocess.STDOUT, cwd=cwd, env=clean_env(cwd))
        self.url = self._wait_for_url()

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = re.search(r"listening on (http://\S+)", self.log.read_text())
            if found:
                return found.group(1)
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"the emulator did not start: {self.log.read_text()[-2000:]}")

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/_emulator/stats", timeout=10) as answer:
            return json.load(answer)

    def sample_url(self) -> str:
        with urllib.request.urlopen(f"{self.url}/samples/", timeout=10) as answer:
            return json.load(answer)["samples"][0]["url"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self._out.close()


def test_the_example_dag_passes_airflow_dags_test_against_the_shipped_emulator(installed, tmp_path):
    key = f"release-canary-{secrets.token_hex(16)}"
    home = tmp_path / "airflow"
    output = tmp_path / "output"
    home.mkdir()
    started = time.monotonic()
    emulator = EmulatorFromWheel(installed, tmp_path, key)
    try:
        conn = {"conn_type": "seedream", "password": key, "host": emulator.url,
                "extra": {"upload_base_url": emulator.url}}
        env = clean_env(
            home,
            AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "example_dags"),  # the DAG file from the source tree; not shipped
            AIRFLOW_CONN_SEEDREAM_DEFAULT=json.dumps(conn),
            SEEDREAM_EXAMPLE_IMAGE_URL=emulator.sample_url(),
            SEEDREAM_EXAMPLE_OUTPUT_DIR=str(output),
            SEEDREAM_EXAMPLE_POLL_INTERVAL="0.5",
        )
        airflow = str(installed / "bin" / "airflow")
        migrate = run([airflow, "db", "migrate"], env=env, cwd=tmp_path, secret=key)
        dags_test = run([airflow, "dags", "test", "example_seedream_edit"], env=env, cwd=tmp_path, secret=key)
        stats = emulator.stats()
    finally:
        emulator.stop()
    print(f"\nairflow db migrate + dags test on the installed wheel: {time.monotonic() - started:.1f} s")

    output_text = migrate.stdout + migrate.stderr + dags_test.stdout + dags_test.stderr + emulator.log.read_text()
    leaked = key in output_text or any(
        key.encode() in path.read_bytes() for path in [*home.rglob("*"), *output.rglob("*")] if path.is_file())
    assert not leaked, "the API key appeared in a command's output, the Airflow home or the output folder"

    finished = re.findall(r"DagRun Finished: dag_id=example_seedream_edit.*?state=(\w+)", output_text)
    assert finished == ["success"], redacted_tail(output_text, key)
    assert stats["requests"]["createTask"] == 1
    assert stats["auth_failures"] == 0 and stats["auth_keys_seen_count"] == 1  # the run used the one key given
    images = [path for path in output.rglob("image-*") if path.is_file()]
    assert len(images) == 1 and images[0].stat().st_size > 0
    assert f"Edited image stored: file://{images[0]}" in output_text


def redacted_tail(text: str, key: str) -> str:
    return text[-4000:].replace(key, "***")
