"""Dependencies the routes share, from app state: the settings and the model registry (503
until a model is served)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.config import Settings
from service.predlog import LogContext
from service.registry import ModelNotReadyError, ModelRegistry

TRUTH_HEADER = "x-label"  # the label the client says is right, kept in the prediction log

# The dependencies are `async def` although none of them waits: FastAPI runs a plain `def`
# dependency in its thread pool, a thread hop per dependency per request.


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_registry(request: Request) -> ModelRegistry:
    """The registry once a version is served; 503 before. (Overload is refused before the
    request gets here: `service.admission`.)"""
    registry: ModelRegistry = request.app.state.registry
    if not registry.ready:
        raise ModelNotReadyError("the model is still loading; retry shortly")
    return registry


def log_context(request: Request) -> LogContext:
    """The request as the prediction log records it: its ID, route and X-Label."""
    route = getattr(request.scope.get("route"), "path", request.url.path)
    truth = request.headers.get(TRUTH_HEADER)
    return LogContext(request.state.request_id, route, truth[:64] if truth else None)


# `?version=` and `?label=`, for routes that read them from the query themselves.
VERSION_PARAMETERS = [
    {"name": "version", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "the model version to answer"},
    {"name": "label", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "a version's label (MODEL_LABELS)"},
]  # fmt: skip

SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
