"""Liveness and readiness: 200 once the model is loaded and warmed up, 503 before, and 503
again once SIGTERM came (draining: the load balancer should send nothing new)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.schemas import HealthResponse

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "model loading, or draining"}},
)
async def health(request: Request) -> HealthResponse | JSONResponse:
    registry = request.app.state.registry
    about = {
        "api_key_required": bool(request.app.state.settings.api_key_list),
        "feedback": registry.prediction_log is not None,
    }
    if not registry.ready:
        body = HealthResponse(status="loading", model_version=None, **about)
        return JSONResponse(body.model_dump(), status_code=503)
    if request.app.state.draining.is_set():
        body = HealthResponse(status="draining", model_version=registry.default.id, **about)
        return JSONResponse(body.model_dump(), status_code=503)
    return HealthResponse(status="ok", model_version=registry.default.id, **about)
