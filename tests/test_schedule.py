"""Table tests for the pure poll schedule (``airflow_provider_seedream.schedule``): no servers, no clocks."""

from __future__ import annotations

import itertools
import math

import pytest

from airflow_provider_seedream import schedule
from airflow_provider_seedream.schedule import likely_done_at, poll_delay, still_running

MID = 0.5  # rng value that gives the pause without jitter


def no_jitter() -> float:
    return MID


@pytest.mark.parametrize(
    ("elapsed", "poll_interval", "expected"),
    [
        # kie's guidance at a base of 2 s: every 2 s for the first 30 s ...
        (0.0, 2.0, 2.0),
        (10.0, 2.0, 2.0),
        (30.0, 2.0, 2.0),
        # ... then rising to 6 s by 2 minutes (kie: 5-10 s until 2 min) ...
        (75.0, 2.0, 4.0),
        (120.0, 2.0, 6.0),
        # ... then to 24 s by 5 minutes (kie: 15-30 s afterwards), and flat.
        (210.0, 2.0, 15.0),
        (300.0, 2.0, 24.0),
        (3600.0, 2.0, 24.0),
        # The default base of 5 s: frequent for 75 s, then capped at kie's 30 s.
        (60.0, 5.0, 5.0),
        (75.0, 5.0, 5.0),
        (300.0, 5.0, 15.0),
        (3600.0, 5.0, 30.0),
        # A base longer than the cap is the user's choice and is kept.
        (0.0, 45.0, 45.0),
        (10_000.0, 45.0, 45.0),
        # Tests poll every 0.2 s against 1-3 s tasks: still every 0.2 s for the first 3 s.
        (0.0, 0.2, 0.2),
        (3.0, 0.2, 0.2),
        (6.0, 0.2, 1 / 3),
        # Clock skew between machines can make the elapsed time negative: it counts as zero.
        (-50.0, 2.0, 2.0),
    ],
)
def test_poll_delay_table(elapsed: float, poll_interval: float, expected: float) -> None:
    assert poll_delay(elapsed, poll_interval, no_jitter) == pytest.approx(expected)


@pytest.mark.parametrize(("rng_value", "factor"), [(0.0, 0.9), (0.25, 0.95), (MID, 1.0), (0.999999, 1.1)])
def test_jitter_is_plus_minus_ten_percent_and_injectable(rng_value: float, factor: float) -> None:
    assert poll_delay(10.0, 2.0, lambda: rng_value) == pytest.approx(2.0 * factor, rel=1e-5)


def test_jitter_spreads_a_fan_out() -> None:
    values = iter([0.0, 0.3, 0.6, 0.9])
    pauses = [poll_delay(5.0, 2.0, lambda: next(values)) for _ in range(4)]
    assert len(set(pauses)) == 4
    assert all(1.8 <= pause <= 2.2 for pause in pauses)


@pytest.mark.parametrize("scale", [0.1, 0.5, 3.0])
@pytest.mark.parametrize("elapsed", [0.0, 20.0, 45.0, 100.0, 200.0])
def test_schedule_is_measured_in_bases_not_seconds(scale: float, elapsed: float) -> None:
    # Below the 30 s cap, scaling the base and the elapsed time together scales the pause by the same factor:
    # no prior about run times is written in fixed seconds.
    base = 2.0
    scaled = poll_delay(elapsed * scale, base * scale, no_jitter)
    assert scaled == pytest.approx(min(poll_delay(elapsed, base, no_jitter) * scale, max(base * scale, 30.0)))


@pytest.mark.parametrize("poll_interval", [0.2, 1.0, 2.0, 5.0, 10.0, 60.0])
def test_pause_never_shrinks_as_the_wait_grows_and_stays_within_bounds(poll_interval: float) -> None:
    previous = 0.0
    for step in range(0, 4000):
        elapsed = step * poll_interval / 8
        pause = poll_delay(elapsed, poll_interval, no_jitter)
        assert pause >= previous - 1e-12
        assert poll_interval <= pause + 1e-12
        assert pause <= max(poll_interval, schedule.MAX_PAUSE_SECONDS) + 1e-12
        previous = pause


def polls_until(run_seconds: float, pause_for: object) -> int:
    """Count the status queries a wait sends for a task that ends ``run_seconds`` after it began."""
    elapsed, polls = 0.0, 1  # the first query goes out at once
    while elapsed < run_seconds:
        elapsed += pause_for(elapsed)  # type: ignore[operator]
        polls += 1
    return polls


@pytest.mark.parametrize(
    ("run_seconds", "fixed_polls", "scheduled_polls"),
    [
        (20.0, 11, 11),  # within the first 15 bases the schedule is a fixed poll
        (45.0, 24, 23),
        (120.0, 61, 42),
        (600.0, 301, 69),
    ],
)
def test_backing_off_saves_queries_on_long_tasks(run_seconds: float, fixed_polls: int, scheduled_polls: int) -> None:
    assert polls_until(run_seconds, lambda elapsed: 2.0) == fixed_polls
    assert polls_until(run_seconds, lambda elapsed: poll_delay(elapsed, 2.0, no_jitter)) == scheduled_polls


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan])
def test_a_non_positive_base_is_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="poll_interval"):
        poll_delay(1.0, bad)
    with pytest.raises(ValueError, match="typical_run"):
        likely_done_at(0.0, None, bad)
    with pytest.raises(ValueError, match="typical_run"):
        still_running(1.0, bad)


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
    seen_at = [0.5 * step for step in range(2000)]
    ranks = [likely_done_at(0.0, seen, 20.0) for seen in seen_at]
    assert all(later >= earlier for earlier, later in itertools.pairwise(ranks))
    assert all(seen <= rank <= seen + 20.0 for rank, seen in zip(ranks, seen_at, strict=True))


def test_fresh_tasks_rank_by_start_and_a_long_runner_goes_before_newer_starts() -> None:
    # Two tasks started 10 s apart and never asked: the older first (round-robin among the unknown).
    assert likely_done_at(0.0, None, 20.0) < likely_done_at(10.0, None, 20.0)
    # A task seen running at 40 s is likely done by ~46 s: before a task started at 30 s (likely done at 50 s) ...
    assert likely_done_at(0.0, 40.0, 20.0) < likely_done_at(30.0, None, 20.0)
    # ... but after a task started at 20 s, which has had as long and has not been seen running.
    assert likely_done_at(0.0, 40.0, 20.0) > likely_done_at(20.0, None, 20.0)
