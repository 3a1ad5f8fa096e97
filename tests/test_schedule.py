"""Table tests for the pure poll schedule (``airflow_provider_seedream.schedule``): no servers, no clocks."""

from __future__ import annotations

import math

import pytest

from airflow_provider_seedream import schedule
from airflow_provider_seedream.schedule import likely_done_at, poll_delay, still_running

MID = 0.5  # rng value that gives the pause without jitter


def no_jitter() -> float:
    return MID


def test_the_run_time_model_matches_what_the_schedule_assumes() -> None:
    # Half of the edits take 20 s, one in five more than 30 s, few more than a minute (module docstring).
    assert still_running(20.0, 20.0) == pytest.approx(0.5)
    assert still_running(30.0, 20.0) == pytest.approx(0.21, abs=0.01)
    assert still_running(60.0, 20.0) < 0.02
    assert still_running(0.0, 20.0) == still_running(-5.0, 20.0) == 1.0


@pytest.mark.parametrize(
    ("last_running", "expected"),
    [
        (None, 120.0),  # never asked: its start + the typical run
        (105.0, 120.03),  # "still running" at 5 s says almost nothing: it keeps its place
        (115.0, 123.97),
        (130.0, 137.50),  # seen running at 30 s: half of such runs end by 37.5 s
        (160.0, 168.33),
        (400.0, 418.98),  # far past the model (seen at 300 s), half of such runs end within 19 s ...
        (500.0, 520.0),  # ... and beyond, never later than one typical run after the last answer
        (1e9, 1e9 + 20.0),
        (90.0, 120.0),  # an answer from before the start (clock skew) counts as none
    ],
)
def test_likely_done_at_table(last_running: float | None, expected: float) -> None:
    assert likely_done_at(100.0, last_running, 20.0) == pytest.approx(expected, abs=0.01)


def test_the_rank_scales_with_the_typical_run() -> None:
    assert likely_done_at(0.0, None, 60.0) == pytest.approx(60.0)
    assert likely_done_at(0.0, 90.0, 60.0) == pytest.approx(3 * likely_done_at(0.0, 30.0, 20.0))


def test_a_later_running_answer_never_ranks_a_task_earlier() -> None:
    ranks = [likely_done_at(0.0, seen, 20.0) for seen in [0.5 * step for step in range(0, 2000)]]
    assert all(later >= earlier for earlier, later in zip(ranks, ranks[1:]))
    assert all(seen <= rank <= seen + 20.0 for rank, seen in zip(ranks, [0.5 * step for step in range(0, 2000)]))


def test_fresh_tasks_rank_by_start_and_a_long_runner_goes_before_newer_starts() -> None:
    # Two tasks started 10 s apart and never asked: the older first (round-robin among the unknown).
    assert likely_done_at(0.0, None, 20.0) < likely_done_at(10.0, None, 20.0)
    # A task seen running at 40 s is likely done by ~46 s: before a task started at 30 s (likely done at 50 s) ...
    assert likely_done_at(0.0, 40.0, 20.0) < likely_done_at(30.0, None, 20.0)
    # ... but after a task started at 20 s, which has had as long and has not been seen running.
    assert likely_done_at(0.0, 40.0, 20.0) > likely_done_at(20.0, None, 20.0)
