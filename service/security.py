"""Optional API keys for the prediction routes.

With `API_KEYS` set (comma-separated), a request must carry one of them as
`Authorization: Bearer <key>` or `X-API-Key: <key>`. Keys are compared in constant time,
against every configured key, and a refusal never hints at what a valid key looks like.
"""

from __future__ import annotations

import hmac
from typing import ClassVar

from fastapi import Request

from service.errors import RequestError


class UnauthorizedError(RequestError):
    status_code = 401
    code = "unauthorized"
    default_headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}


def presented_key(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key")


async def require_api_key(request: Request) -> None:
    """Passes when keys are off or a valid key is presented: checked by RequestRoute before
    every prediction route, and a dependency of the other guarded routes. Async so that
    FastAPI calls it on the event loop, not through its thread pool."""
    keys: tuple[str, ...] = request.app.state.settings.api_key_list
    if not keys:
        return
    presented = (presented_key(request) or "").encode()
    # Compare with every key, so timing tells nothing about which one was close.
    matches = [hmac.compare_digest(presented, key.encode()) for key in keys]
    if not any(matches):
        raise UnauthorizedError("missing or invalid API key")
