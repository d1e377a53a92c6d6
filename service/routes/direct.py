"""RequestRoute: the route class of the prediction routes, the service's hot path."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from service.security import require_api_key


class RequestRoute(APIRoute):
    """An APIRoute documented like any other (from its endpoint's signature and decorator),
    whose endpoint is called with the request and the path's parameters by name and returns
    its own Response, once the API key has been checked here (before anything else, as a
    dependency was). FastAPI's per-request work is skipped: no dependency to solve, no
    parameter to validate, no response model to serialize (about half of what an APIRoute
    costs the event loop). So the endpoint checks what else it needs itself; a route with
    dependencies or a body parameter is refused here rather than silently left unchecked."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if self.dependant.dependencies or self.body_field is not None:
            raise TypeError(f"{path}: a RequestRoute endpoint takes no dependency or body")

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            await require_api_key(request)
            return await endpoint(request=request, **request.path_params)

        return handler
