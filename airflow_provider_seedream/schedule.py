"""When to ask kie.ai about a task again, and which waiting query goes first: the poll schedule, free of I/O.

One schedule drives the trigger, the sensor's poke mode and the hook's blocking wait; ``likely_done_at`` orders the
queries of many triggers that share one scarce poll budget (see its docstring).

The schedule measures time in units of the caller's ``poll_interval`` (the base), never in fixed seconds, so a test
that polls every 0.2 s against 1-second tasks sees the same shape as a DAG that polls every 5 s against real
Seedream edits. kie's own guidance (Get Task Details page) is written for a base of about 2 s: "every 2-3 s for the
first 30 s, 5-10 s until 2 minutes, 15-30 s afterwards". At a base of 2 s the schedule below reproduces it:

==================  ======================  ============================
elapsed (in bases)  pause (in bases)        at a base of 2 s
==================  ======================  ============================
0 .. 15             1                       every 2 s for the first 30 s
15 .. 60            rises from 1 to 3       2 s -> 6 s by 2 minutes
60 .. 150           rises from 3 to 12      6 s -> 24 s by 5 minutes
beyond              12                      24 s
==================  ======================  ============================

The pause is capped at 30 s (kie's longest recommended pause) unless the base itself is longer, and carries +-10 %
jitter so that waits started together (a mapped fan-out) do not poll in lockstep. The rises are linear rather than
steps, and the first one is gentle, because that is where Seedream edits that run long end (half of them take about
20 s, one in five more than 30 s, few more than a minute): a step from 2 s to 5 s at exactly 30 s would make a task
that ends at 31 s wait twice as long as one that ends at 29 s.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

#: The schedule as (elapsed, pause) corner points, both in units of ``poll_interval``; linear in between.
SCHEDULE: tuple[tuple[float, float], ...] = ((0.0, 1.0), (15.0, 1.0), (60.0, 3.0), (150.0, 12.0))
#: kie's longest recommended pause between two status queries of one task.
MAX_PAUSE_SECONDS = 30.0
#: Relative jitter: the pause is drawn uniformly from ``target * (1 +- JITTER)``.
JITTER = 0.1
#: The spread of Seedream run times around their median, as the sigma of a lognormal: with a median of 20 s it
#: puts one edit in five above 30 s and few above a minute (the figures above).
RUN_TIME_SIGMA = 0.5
# Below this survival the inverse normal loses precision; by then the one-typical-run cap has long taken over.
_TAIL = 1e-12


def _seconds(name: str, value: float) -> float:
    if not value > 0:  # also rejects NaN
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def stretch(elapsed_bases: float) -> float:
    """Return the pause, in bases, that the schedule asks for ``elapsed_bases`` bases into a wait (no jitter)."""
    u = max(0.0, elapsed_bases)
    previous_x, previous_y = SCHEDULE[0]
    for x, y in SCHEDULE[1:]:
        if u <= x:
            return previous_y + (y - previous_y) * (u - previous_x) / (x - previous_x)
        previous_x, previous_y = x, y
    return previous_y


def poll_delay(elapsed: float, poll_interval: float, rng: Callable[[], float] = random.random) -> float:
    """Return the pause before the next status query, ``elapsed`` seconds into the wait.

    :param elapsed: seconds since the wait began (a negative value, from clock skew between machines, counts as 0).
    :param poll_interval: the base pause, in seconds, chosen by the user (``poll_interval`` / ``poke_interval``).
    :param rng: a source of uniform numbers in [0, 1), for the jitter; inject a constant in tests.
    """
    base = _seconds("poll_interval", poll_interval)
    target = min(base * stretch(elapsed / base), max(base, MAX_PAUSE_SECONDS))
    return target * (1.0 - JITTER + 2.0 * JITTER * rng())


def still_running(elapsed: float, typical_run: float) -> float:
    """Return the chance that an edit is still running ``elapsed`` seconds after it began (lognormal run times).

    :param typical_run: the median run time in seconds (the connection's ``typical_run_seconds``).
    """
    _seconds("typical_run", typical_run)
    if elapsed <= 0:
        return 1.0
    return 0.5 * math.erfc(math.log(elapsed / typical_run) / (RUN_TIME_SIGMA * math.sqrt(2.0)))


def likely_done_at(started: float, last_running: float | None, typical_run: float) -> float:
    """Return the moment by which the task is as likely finished as not, given what the wait has seen so far.

    This is the order ``PollBudget`` serves waiting queries in when the budget is scarce: the query whose task is
    most likely finished goes first. A wait's rank depends only on when it began and when kie last said "still
    running", so it is fixed while the query waits (the budget keeps it in a heap), and three things follow:

    - Tasks not yet seen running rank by start: ``started + typical_run``. For a burst of simultaneous starts
      that is round-robin: nothing tells those tasks apart, so no order finds them sooner on average.
    - A "still running" seen early says little (most edits run longer than a few seconds anyway), so the task keeps
      nearly its place; seen late it says much, and the task moves back by about as much as its run is now
      expected to last (seen running at 30 s with a typical run of 20 s: ranked at 37.5 s).
    - A task is never ranked later than one typical run after its last "still running", the rank of a task that
      started at that moment: far past what the model expects (or if kie runs slower than ``typical_run`` says),
      the long runners take turns by their last answer, round-robin. The rank only orders queries that compete
      for a scarce budget; it never delays one when the budget has room.

    All three times are in seconds on one clock (the trigger uses the wall clock).

    :param started: when the wait began (the task was submitted).
    :param last_running: when kie last answered that the task was still running; ``None`` if not yet asked.
    :param typical_run: the median run time in seconds.
    """
    seen = 0.0 if last_running is None else max(0.0, last_running - started)
    survival = still_running(seen, typical_run)  # also checks typical_run
    latest = started + seen + typical_run
    if survival < _TAIL:
        return latest
    from statistics import NormalDist  # here, not at the top: only the triggerer needs it, not DAG parsing

    # The median of the run time given that it exceeds ``seen``: where the survival halves.
    z = -NormalDist().inv_cdf(survival / 2.0)
    return min(latest, started + max(seen, typical_run * math.exp(RUN_TIME_SIGMA * z)))
