"""Request body limit, enforced before and while the body streams in.

A declared Content-Length over the limit is refused at once, before any byte of the body is
read; a body without one (chunked) is counted as it arrives and refused the moment it
passes the limit. Either way the whole body is never held in memory.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import BodyTooLargeError, error_response
from service.observability import Metrics


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(Headers(scope=scope))
        if declared is not None and declared > self.max_bytes:
            self.metrics.rejected.labels(BodyTooLargeError.code).inc()
            response = error_response(413, BodyTooLargeError.code, self._message())
            await response(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self._message())
            return message

        return counting_receive

    def _message(self) -> str:
        return f"request body is larger than the limit of {self.max_bytes} bytes"


def _content_length(headers: Headers) -> int | None:
    try:
        return int(headers["content-length"])
    except (KeyError, ValueError):
        return None
