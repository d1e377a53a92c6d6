"""How long a client refused for overload should wait before it sends again: the value of
every overload 503's Retry-After.

A fixed second would send every refused client of a crowd back at once, to be refused again.
Instead, each refused client is told to wait its turn: the clients refused within the last
advice (each of them waiting to come back) divided by the requests the service answered in
the last second. When the crowd keeps to it, clients come back about as fast as they are
answered, and few are refused twice.

A client that does not wait (wrk, a retry loop) comes back at once, and waits in line for a
place until its time is up, at most `hold_s` (`EarlyReturns`, `Capacity.wait_for_room`):
refused at once, such clients would keep the event loop refusing instead of answering.
What each choice measured: docs/performance.md, why the defaults.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable

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


class EarlyReturns:
    """Remembers when each refused connection was told to come back. One that comes back
    sooner is held the rest of that time, at most `hold_s` (in line for a place, and refused
    again if none frees): an impatient client is answered at the pace Retry-After asks for,
    not as fast as it sends.

    Connections are whatever identifies a client's connection (ASGI's `client`: address and
    port); behind a proxy that shares one connection among users, those users share a pace."""

    def __init__(self, hold_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.hold_s = hold_s
        self._clock = clock
        self._due: dict[Hashable, float] = {}  # connection -> when it was told to come back

    def hold(self, connection: Hashable | None) -> float:
        """Seconds to hold this refusal: 0 for a connection that waited as told."""
        due = self._due.get(connection)
        return 0.0 if due is None else max(0.0, min(due - self._clock(), self.hold_s))

    def told(self, connection: Hashable | None, retry_after_s: int) -> None:
        """This connection is refused and told to wait `retry_after_s`."""
        if connection is None or self.hold_s <= 0:
            return
        now = self._clock()
        if len(self._due) >= _REMEMBERED:
            self._due = {c: due for c, due in self._due.items() if due > now}
        self._due[connection] = now + retry_after_s


_REMEMBERED = 10_000  # connections remembered before the ones whose time is up are forgotten
