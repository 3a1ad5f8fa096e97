"""The e2e harness's own helpers, on this machine, without an Airflow stack (part of the default suite).

Process titles are reproduced the way Airflow sets them (``setproctitle``) with a long original argv, so the title
is followed by the NUL padding that some machines show in ``/proc/<pid>/cmdline``.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import psutil
import pytest

from seedream_stack import task_processes, title_words, wait_for

# A parent titled like the LocalExecutor worker that supervises a task, and a child titled like the task runner.
# The long last argument makes each title much shorter than the argv area it overwrites: the rest is NUL padding.
_CHILD = (
    "import setproctitle, sys, time; setproctitle.setproctitle('airflow worker -- ' + sys.argv[1]); "
    "print('ready', flush=True); time.sleep(60)"
)
_PARENT = (
    "import setproctitle, subprocess, sys, time; "
    "setproctitle.setproctitle('airflow worker -- LocalExecutor: ' + sys.argv[1]); "
    "child = subprocess.Popen([sys.executable, '-c', sys.argv[2], sys.argv[1], 'x' * 400], stdout=sys.stdout); "
    "child.wait()"
)


@pytest.fixture
def padded_task_processes():
    ti_id = str(uuid.uuid4())
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, ti_id, _CHILD, "x" * 400], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"
        children = wait_for(lambda: psutil.Process(parent.pid).children(), 10, "the runner stand-in")
        yield ti_id, parent.pid, children[0].pid
    finally:
        for proc in psutil.Process(parent.pid).children(recursive=True) if parent.poll() is None else []:
            proc.kill()
        parent.kill()
        parent.wait(10)


def test_titles_are_padded_here_as_on_the_machine_that_failed(padded_task_processes):
    ti_id, _, runner_pid = padded_task_processes
    cmdline = psutil.Process(runner_pid).cmdline()
    assert cmdline[0] == f"airflow worker -- {ti_id}"
    assert len(cmdline) > 1 and set(cmdline[1:]) == {""}, cmdline[:4]
    # What the old helper compared: the joined cmdline ends in spaces, so an exact match never held.
    assert " ".join(cmdline) != f"airflow worker -- {ti_id}"


def test_task_processes_finds_the_runner_and_its_supervisor_through_padding(padded_task_processes):
    ti_id, supervisor_pid, runner_pid = padded_task_processes
    runner, supervisor = task_processes(ti_id)
    assert runner is not None and runner.pid == runner_pid
    assert supervisor is not None and supervisor.pid == supervisor_pid


def test_task_processes_ignores_other_task_instances(padded_task_processes):
    ti_id, _, _ = padded_task_processes
    assert task_processes(ti_id[:-1]) == (None, None)
    assert task_processes(str(uuid.uuid4())) == (None, None)


@pytest.mark.parametrize(
    "cmdline, words",
    [
        (["airflow worker -- abc", "", "", ""], ["airflow", "worker", "--", "abc"]),  # NUL-padded title
        (["airflow", "worker", "--", "abc"], ["airflow", "worker", "--", "abc"]),  # title split at its spaces
        (["airflow worker -- abc"], ["airflow", "worker", "--", "abc"]),  # the title alone
        (["airflow worker --  LocalExecutor:  abc "], ["airflow", "worker", "--", "LocalExecutor:", "abc"]),
        ([], []),
        (None, []),
    ],
)
def test_title_words(cmdline, words):
    assert title_words(cmdline) == words
