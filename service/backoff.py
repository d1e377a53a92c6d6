"""How long a client refused for overload should wait before it sends again: the value of
every overload 503's Retry-After.

A fixed second sends every refused client of a crowd back at once, to be refused again:
with 1,500 connections honouring `Retry-After: 1`, the event loop spent about a quarter of
its time refusing (about 1,400 refusals a second at 0.2 ms each), and only 0.66 of the
64-client rate was answered 200. Instead, each refused client is told to wait its turn: the
clients refused within the last advice (each of them waiting to come back) divided by the
requests the service answered in the last second. When the crowd keeps to it, clients come
back about as fast as they are answered, and few are refused twice.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

LONGEST_S = 30  # never advise longer: a client told to wait minutes gives up instead


class RetryAdvice:
    """Counts refusals and answers per second of `clock`, and advises the wait in whole
    seconds (HTTP's Retry-After), from 1 to LONGEST_S."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._refused: dict[int, int] = {}  # second -> requests refused in it
        self._answered: dict[int, int] = {}  # second -> requests let in and answered in it
        self._seconds = 1  # the last advice given

    @property
    def seconds(self) -> int:
        """The wait advised to the last refused client."""
        return self._seconds

    def answered(self) -> None:
        """A request that was let in has been answered."""
        _count(self._answered, int(self._clock()), keep=2)

    def refused(self) -> int:
        """A request is refused for overload: the seconds it should wait."""
        now = int(self._clock())
        _count(self._refused, now, keep=LONGEST_S + 1)
        waiting = sum(self._refused.get(s, 0) for s in range(now - self._seconds + 1, now + 1))
        per_second = max(self._answered.get(now - 1, 0), 1)
        self._seconds = min(LONGEST_S, max(1, math.ceil(waiting / per_second)))
        return self._seconds


def _count(counts: dict[int, int], second: int, keep: int) -> None:
    """One more in `second`, forgetting seconds more than `keep` before it."""
    if second not in counts:
        for old in [s for s in counts if s <= second - keep]:
            del counts[old]
        counts[second] = 0
    counts[second] += 1
