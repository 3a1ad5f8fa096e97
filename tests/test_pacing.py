"""createTask pacing shared by the processes of one host: the rule, the shared file, and real workers against kie's
limit (the emulator enforces 20 createTask per 10 s per key and answers 429 beyond it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from support import conn_json

from airflow_provider_seedream import pacing
from seedream_emulator import EmulatorConfig, EmulatorServer


def most_in_any_window(slots: list[float], window: float) -> int:
    slots = sorted(slots)
    return max((sum(1 for t in slots[i:] if t < start + window) for i, start in enumerate(slots)), default=0)


@pytest.mark.parametrize(
    "reserved, now, expected",
    [
        ([], 100.0, 100.0),
        ([99.0] * 19, 100.0, 100.0),  # a slot is free now
        ([95.0] * 20, 100.0, 105.0),  # the window is full: the first slot frees 10 s after the oldest of the last 20
        ([90.0] * 20, 100.0, 100.0),
        ([100.0] * 20 + [110.0] * 20, 100.0, 120.0),  # reservations ahead of now count too
        ([95.0] * 25, 100.0, 105.0),
    ],
)
def test_next_slot(reserved, now, expected):
    assert pacing.next_slot(reserved, now, 20, 10.0) == expected


def test_a_burst_is_spread_over_windows_of_at_most_the_limit(tmp_path):
    now = [1000.0]
    pacer = pacing.HostPacer("k", limit=20, window=10.0, directory=tmp_path, clock=lambda: now[0])
    slots = [pacer.reserve() for _ in range(45)]
    assert slots[:20] == [1000.0] * 20 and slots[20:40] == [1010.0] * 20 and slots[40:] == [1020.0] * 5
    assert pacer.shared and most_in_any_window(slots, 10.0) == 20


def test_the_shared_file_forgets_what_has_left_the_window(tmp_path):
    now = [1000.0]
    pacer = pacing.HostPacer("k", limit=20, window=10.0, directory=tmp_path, clock=lambda: now[0])
    for _ in range(20):
        pacer.reserve()
    now[0] = 1010.5
    assert pacer.reserve() == 1010.5
    assert len(json.loads((tmp_path / "k.json").read_text())) == 1


def test_a_settled_submit_counts_from_when_its_answer_came(tmp_path):
    now = [1000.0]
    pacer = pacing.HostPacer("k", limit=2, window=10.0, directory=tmp_path, clock=lambda: now[0])
    with pacer.departure():
        now[0] = 1001.5  # the answer took 1.5 s: the request reached the server at some moment before that
    assert pacer.reserve() == 1001.5  # the second of two still leaves now
    assert pacer.reserve() == 1011.5  # the third waits for the window after the first one's answer


def test_clear_forgets_every_reservation(tmp_path):
    pacer = pacing.HostPacer("k", limit=20, window=10.0, directory=tmp_path, clock=lambda: 1000.0)
    for _ in range(25):
        pacer.reserve()
    pacer.clear()
    assert pacer.reserve() == 1000.0


def test_processes_of_one_host_share_one_pace(tmp_path):
    """Six processes reserve ten departures each, as fast as they can: no window ever holds more than twenty."""
    script = textwrap.dedent(f"""
        import json
        from airflow_provider_seedream.pacing import HostPacer
        pacer = HostPacer("shared-key", limit=20, window=10.0, directory={str(tmp_path)!r})
        print(json.dumps([pacer.reserve() for _ in range(10)]))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(6)]
    slots = [slot for proc in procs for slot in json.loads(proc.communicate(timeout=60)[0])]
    assert len(slots) == 60
    assert most_in_any_window(slots, 10.0) == 20
    assert max(slots) - min(slots) >= 20.0  # 60 departures need three windows


@pytest.fixture(scope="module")
def limited_kie():
    config = EmulatorConfig(api_keys=("pacing-key",), task_seconds=0.5, null_window_seconds=0.1, rate_limits=True)
    with EmulatorServer(config, port=0) as server:
        yield server


def worker_env(kie, tmp_path) -> dict[str, str]:
    """The environment of a worker process submitting to ``kie``: its connection, and a pace file of the test's own."""
    return {**os.environ, "AIRFLOW_CONN_SEEDREAM_DEFAULT": conn_json(kie.url, "pacing-key"), "TMPDIR": str(tmp_path)}


def sample(kie) -> str:
    return f"{kie.url}/samples/sneaker-1x1.png"


def test_mapped_submits_from_many_workers_draw_no_429(limited_kie, tmp_path):
    """Thirty submits from six worker processes at once, kie's limit on: every one accepted at the first try."""
    worker = textwrap.dedent("""
        import sys
        from airflow_provider_seedream.hooks.seedream import SeedreamHook
        hook = SeedreamHook()
        for i in range(5):
            hook.create_edit_task(f"put it on marble ({sys.argv[1]}-{i})", [sys.argv[2]])
    """)
    env = worker_env(limited_kie, tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", worker, str(n), sample(limited_kie)], env=env,
                              stderr=subprocess.PIPE, text=True) for n in range(6)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
    stats = limited_kie.state.stats()
    assert len(stats["created_task_ids"]) == 30
    assert stats["rate_limited"]["createTask"] == 0, stats["responses"]["createTask"]
    assert stats["requests"]["createTask"] == 30  # each submit sent once: none had to be retried


def test_the_http_stack_is_imported_before_the_slot_not_after(limited_kie, tmp_path):
    """A fresh worker's first submit imports requests before it waits for its place in the pace: by the moment its
    slot comes (``before_send`` runs right before the createTask leaves) nothing is left to import."""
    worker = textwrap.dedent("""
        import sys
        from airflow_provider_seedream.hooks.seedream import SeedreamHook
        from airflow_provider_seedream import request
        seen = []
        task = request.TaskInput("seedream/4.5-edit", (("prompt", "p"), ("image_urls", [sys.argv[1]]),
                                                       ("aspect_ratio", "1:1"), ("quality", "basic")), (), None)
        assert "requests" not in sys.modules
        SeedreamHook().submit_task(task, before_send=lambda: seen.append("requests" in sys.modules))
        print("imported at the slot:", seen)
    """)
    before = len(limited_kie.state.stats()["created_task_ids"])
    done = subprocess.run([sys.executable, "-c", worker, sample(limited_kie)], env=worker_env(limited_kie, tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "imported at the slot: [True]" in done.stdout.splitlines()
    assert len(limited_kie.state.stats()["created_task_ids"]) == before + 1  # accepted once


def test_reservations_nobody_could_have_made_are_not_believed(tmp_path):
    """A foreign or corrupted file (far-future, non-finite, non-numeric entries) cannot stall or break a submit."""
    (tmp_path / "k.json").write_text(json.dumps([1e300, -1e300, "soon", None, True] + [1000.0 + 5 * 86400] * 25))
    pacer = pacing.HostPacer("k", limit=20, window=10.0, directory=tmp_path, clock=lambda: 1000.0)
    assert pacer.reserve() == 1000.0


def test_a_folder_others_may_write_to_is_not_shared(tmp_path):
    folder = tmp_path / "open"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    assert not pacing.HostPacer("k", directory=folder).shared


def test_a_link_in_place_of_the_file_is_never_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    folder = tmp_path / "pace"
    pacer = pacing.HostPacer("k", limit=20, window=10.0, directory=folder, clock=lambda: 1000.0)
    (folder / "k.json").symlink_to(victim)
    assert pacer.reserve() == 1000.0  # paced for this process only
    assert victim.read_text() == "keep me" and not pacer.shared
