"""When to ask kie.ai about a task again, and which waiting query goes first: the poll schedule, free of I/O.

One schedule drives the trigger, the sensor's poke mode and the hook's blocking wait.

Both functions measure time in units of the caller's ``poll_interval`` (the base), never in fixed seconds, so a test
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

import random
from collections.abc import Callable

#: The schedule as (elapsed, pause) corner points, both in units of ``poll_interval``; linear in between.
SCHEDULE: tuple[tuple[float, float], ...] = ((0.0, 1.0), (15.0, 1.0), (60.0, 3.0), (150.0, 12.0))
#: kie's longest recommended pause between two status queries of one task.
MAX_PAUSE_SECONDS = 30.0
#: Relative jitter: the pause is drawn uniformly from ``target * (1 +- JITTER)``.
JITTER = 0.1
#: Under a scarce budget, a task younger than this many bases yields its turn to older ones (see ``poll_priority``).
YOUNG_BASES = 4.0


def _check_interval(poll_interval: float) -> float:
    if not poll_interval > 0:  # also rejects NaN
        raise ValueError(f"poll_interval must be a positive number of seconds, got {poll_interval!r}")
    return float(poll_interval)


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
    base = _check_interval(poll_interval)
    target = min(base * stretch(elapsed / base), max(base, MAX_PAUSE_SECONDS))
    return target * (1.0 - JITTER + 2.0 * JITTER * rng())


def poll_priority(elapsed: float, poll_interval: float | None = None) -> float:
    """Return how many seconds a due query yields its turn by when the poll budget is scarce.

    ``PollBudget`` serves due queries in the order of (the moment they asked + this offset), so with no offset it is
    round-robin: the query that has waited longest goes first, which is also the task most likely to have finished
    since it was last seen. The one thing round-robin gets wrong is a task that has only just started: it is asked
    about as often as an old one, although an edit almost never ends within its first few polls. So a task younger
    than ``YOUNG_BASES`` bases yields until it reaches that age, i.e. its query ranks as if asked at
    ``started + YOUNG_BASES * poll_interval``. The offset only reorders queries that compete for a scarce budget; it
    never delays a query when the budget has room, so it cannot slow a wait down on its own.

    :param elapsed: seconds since the wait began.
    :param poll_interval: the wait's base pause; without it the offset is 0 (plain round-robin).
    """
    if poll_interval is None:
        return 0.0
    base = _check_interval(poll_interval)
    return max(0.0, YOUNG_BASES * base - max(0.0, elapsed))
