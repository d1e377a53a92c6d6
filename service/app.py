"""create_app(): the FastAPI application, its lifespan (load + warm up), routes and handlers."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from service.admission import AdmissionMiddleware
from service.config import Settings
from service.errors import install_error_handlers
from service.limits import BodyLimitMiddleware
from service.observability import RequestLogMiddleware
from service.openapi import add_model_examples
from service.registry import ModelRegistry
from service.routes import explain, feedback, health, page, predict, tfserving, v2
from service.routes import metrics as metrics_route
from service.routes.direct import RequestRoute
from service.schemas import ERROR_RESPONSES, HealthResponse, TFServingResponse

log = logging.getLogger(__name__)


class DoorFirstFastAPI(FastAPI):
    """FastAPI with the admission door (`service.admission`) outside even FastAPI's own
    middleware (server errors, telemetry, body limit): under a flood most requests are
    refusals, and each layer they pass costs the event loop time the admitted requests need.
    Uses `state.settings` and `state.metrics`, set before the first request builds the stack."""

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document, with examples made from the loaded model (`service.openapi`);
        rebuilt when another model version is loaded."""
        registry: ModelRegistry = self.state.registry
        model = registry.default.model if registry.ready else None
        key = model.version if model else None
        if self.openapi_schema is None or self.state.openapi_for != key:
            self.openapi_schema = None
            schema = super().openapi()
            self.openapi_schema = add_model_examples(schema, model) if model else schema
            self.state.openapi_for = key
        return self.openapi_schema

    def build_middleware_stack(self) -> ASGIApp:
        return AdmissionMiddleware(
            super().build_middleware_stack(),
            state=self.state,
            metrics=self.state.metrics,
            hold_s=self.state.settings.overload_hold_s,
        )


def create_app(settings: Settings | None = None, registry: ModelRegistry | None = None) -> FastAPI:
    """The app for `settings` (default: from the environment). Pass a `registry` already
    loaded to skip loading in the lifespan (the command line loads first to fail fast)."""
    settings = settings or Settings()
    registry = registry or ModelRegistry(settings)
    metrics = registry.metrics

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await registry.start()
        if not settings.api_key_list:
            log.warning("API_KEYS is not set: the prediction routes are open to anyone")
        yield
        await registry.stop()

    app = DoorFirstFastAPI(
        title="mug-classifier",
        version="1.0.0",
        summary="Classifies photos into the classes of the model it serves.",
        description='Errors are JSON: `{"error": code, "detail": message}`.',
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.capacity = registry.capacity
    app.state.openapi_for = None
    # Draining (/health 503). `python -m service` puts its server's flag here, set on SIGTERM.
    app.state.draining = threading.Event()
    app.state.metrics = metrics
    # Added last = outermost: the request log sees every answer, 413s from the limit too.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes, metrics=metrics)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origin_list),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(RequestLogMiddleware, metrics=metrics)
    install_error_handlers(app)
    routers = (
        health.router,
        predict.router,
        explain.router,
        feedback.router,
        tfserving.predict_router,
        tfserving.router,
        v2.infer_router,
        v2.router,
        metrics_route.router,
    )
    for router in routers:
        app.include_router(router)
    app.include_router(page.router)
    app.mount("/static", page.static_files, name="static")
    # Vertex AI custom containers name their own health and predict paths.
    if settings.aip_health_route:
        app.add_api_route(
            settings.aip_health_route,
            health.health,
            methods=["GET"],
            response_model=HealthResponse,
            tags=["vertex-ai"],
        )
    if settings.aip_predict_route:
        app.router.add_api_route(
            settings.aip_predict_route,
            tfserving.instances_predict,
            methods=["POST"],
            response_model=TFServingResponse,
            responses=ERROR_RESPONSES,
            openapi_extra=tfserving.INSTANCES_BODY,
            tags=["vertex-ai"],
            route_class_override=RequestRoute,
        )
    return app
