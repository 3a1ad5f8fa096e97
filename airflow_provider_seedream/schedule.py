"""When to ask kie.ai about a task again: the poll schedule, free of I/O.

One schedule drives the trigger, the sensor's poke mode and the hook's blocking wait.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def poll_delay(elapsed: float, poll_interval: float, rng: Callable[[], float] = random.random) -> float:
    """Return the pause before the next status query, ``elapsed`` seconds into the wait.

    kie asks for every 2-3 s in the first 30 s, 5-10 s until 2 minutes and 15-30 s after that. ``poll_interval`` is
    the base; the schedule stretches it by those phases (capped at 30 s, never below the base) with +-10 % jitter so
    that many waits started together do not poll in lockstep.
    """
    if elapsed < 30:
        target = poll_interval
    elif elapsed < 120:
        target = max(poll_interval, min(2 * poll_interval, 10.0))
    else:
        target = max(poll_interval, min(5 * poll_interval, 30.0))
    return target * (0.9 + 0.2 * rng())


def poll_priority(elapsed: float) -> float:
    """Return the priority of a due query when the poll budget is scarce (lower is served first).

    For now: the longest-waiting query first.
    """
    return -elapsed
