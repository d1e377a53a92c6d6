"""RequestRoute skips FastAPI's per-request work, so it must refuse what it would skip."""

from __future__ import annotations

import pytest
from fastapi import Depends, Request
from pydantic import BaseModel

from service.answers import JSONAnswer
from service.routes.direct import RequestRoute
from service.security import require_api_key


class Body(BaseModel):
    image: str


async def with_request(request: Request) -> JSONAnswer:
    return JSONAnswer({})


async def with_body(request: Request, body: Body) -> JSONAnswer:
    return JSONAnswer({})


def test_a_dependency_or_a_body_parameter_is_refused_not_left_unchecked() -> None:
    RequestRoute("/ok", with_request, methods=["POST"])
    with pytest.raises(TypeError, match="no dependency or body"):
        RequestRoute(
            "/keyed", with_request, methods=["POST"], dependencies=[Depends(require_api_key)]
        )
    with pytest.raises(TypeError, match="no dependency or body"):
        RequestRoute("/body", with_body, methods=["POST"])
