"""Load shedding at the door: while more images wait for the model than MAX_WAITING_IMAGES
allows, or more requests are in progress than MAX_ACTIVE_REQUESTS, every POST (the
prediction routes) is answered 503 with Retry-After before FastAPI sees it: no routing, no
dependencies, no body read, no log line (the refusals are counted in /metrics). A request
that passes is checked again with its real image count once its body is read
(`InferencePipeline.classify`).

A connection that comes back before the Retry-After it was given (wrk, a retry loop) waits
in line instead, up to the rest of that time or OVERLOAD_HOLD_S, and takes the place of the
next request answered; only if none frees in time is it refused. Refused at the end of the
hold, every such client cost a refusal per hold (and the client a request), CPU taken from
the model's threads (in one run, a model call took 1.26x as long under a flood of 1,500
connections as under 64 clients; in line, 1.06x), and a client that retries at once is now
answered whenever a place frees in its time (docs/performance.md).

Why here and not in a route dependency, as at first: under a flood most requests are
refusals, and a refusal that costs a whole FastAPI request takes the event loop away from the
requests already admitted. Measured with 1,500 connections: 0.13 to 0.48 of the 64-client
rate answered 200 with the refusal in a dependency (MAX_WAITING_IMAGES 150 to 400).
"""

from __future__ import annotations

import functools

from starlette.datastructures import State
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.backoff import EarlyReturns
from service.capacity import Capacity, OverloadedError
from service.errors import error_response
from service.observability import Metrics


@functools.cache
def _refusal(retry_after_s: int) -> Response:
    """Built once per Retry-After value and sent as is: the same JSON error body as any other
    refusal."""
    return error_response(
        OverloadedError.status_code,
        OverloadedError.code,
        "the service is at capacity (requests in progress or images waiting); retry after "
        "the seconds Retry-After says",
        headers={"Retry-After": str(retry_after_s)},
    )


class AdmissionMiddleware:
    """Outermost: refuses POSTs while `state.capacity` (set by the lifespan) is overloaded,
    and counts the ones it lets in until they are answered."""

    def __init__(self, app: ASGIApp, state: State, metrics: Metrics, hold_s: float) -> None:
        self.app = app
        self.state = state
        self.refused = metrics.rejected.labels(OverloadedError.code)
        self.early_returns = EarlyReturns(hold_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            capacity = getattr(self.state, "capacity", None)
            if capacity is not None:
                if not capacity.overloaded:
                    capacity.enter()
                elif not await self._held_until_room(capacity, scope):
                    await self._refuse(capacity, scope, receive, send)
                    return
                try:
                    await self.app(scope, receive, send)
                finally:
                    capacity.leave()
                return
        await self.app(scope, receive, send)

    async def _held_until_room(self, capacity: Capacity, scope: Scope) -> bool:
        """A connection that comes back before its Retry-After is up waits the rest of that
        time, at most `hold_s`, in line for the next place a request frees: True if it got
        one (and is let in), False if it is to be refused."""
        hold = self.early_returns.hold(scope.get("client"))
        return hold > 0 and await capacity.wait_for_room(hold)

    async def _refuse(self, capacity: Capacity, scope: Scope, receive: Receive, send: Send) -> None:
        """503 with Retry-After."""
        self.refused.inc()
        seconds = capacity.retry_advice.refused()
        self.early_returns.told(scope.get("client"), seconds)
        await _refusal(seconds)(scope, receive, send)
