"""Load shedding at the door: while more images wait for the model than MAX_WAITING_IMAGES
allows, or more requests are in progress than MAX_ACTIVE_REQUESTS, every POST (the
prediction routes) is answered 503 with Retry-After before FastAPI sees it: no routing, no
dependencies, no body read, no log line (the refusals are counted in /metrics). A request
that passes is checked again with its real image count once its body is read
(`InferencePipeline.classify`).

Why here and not in a route dependency, as at first: under a flood most requests are
refusals, and a refusal that costs a whole FastAPI request takes the event loop away from the
requests already admitted. Measured with 1,500 connections: 0.13 to 0.48 of the 64-client
rate answered 200 with the refusal in a dependency (MAX_WAITING_IMAGES 150 to 400).
"""

from __future__ import annotations

import asyncio
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
                if capacity.overloaded:
                    await self._refuse(capacity, scope, receive, send)
                    return
                capacity.requests += 1
                try:
                    await self.app(scope, receive, send)
                finally:
                    capacity.requests -= 1
                    capacity.retry_advice.answered()
                return
        await self.app(scope, receive, send)

    async def _refuse(self, capacity: Capacity, scope: Scope, receive: Receive, send: Send) -> None:
        """503 with Retry-After; held first if this connection was told to wait and did not."""
        connection = scope.get("client")
        if hold := self.early_returns.hold(connection):
            await asyncio.sleep(hold)
        self.refused.inc()
        seconds = capacity.retry_advice.refused()
        self.early_returns.told(connection, seconds)
        await _refusal(seconds)(scope, receive, send)
