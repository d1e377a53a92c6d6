"""create_app(): the FastAPI application, its lifespan (load + warm up), routes and handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from service.batching import MicroBatcher
from service.config import Settings
from service.errors import install_error_handlers
from service.limits import BodyLimitMiddleware
from service.model import MugClassifier
from service.routes import health, predict, tfserving
from service.schemas import HealthResponse

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, model: MugClassifier | None = None) -> FastAPI:
    """The app for `settings` (default: from the environment). Pass a `model` already loaded
    to skip loading in the lifespan (the command line loads first to fail fast)."""
    settings = settings or Settings()
    model = model or MugClassifier(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(model.load)
        batcher = MicroBatcher(model.predict, settings.batch_max_size, settings.batch_max_wait_ms)
        await batcher.start()
        app.state.batcher = batcher
        yield
        await batcher.stop()

    app = FastAPI(
        title="mug-classifier",
        version="1.0.0",
        summary="Which of the four office mugs is in this photo?",
        description=(
            "Classifies photos of a white mug, a black mug with a logo, a blue mug and a "
            'transparent glass. Errors are JSON: `{"error": code, "detail": message}`.'
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.model = model
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    install_error_handlers(app)
    for router in (health.router, predict.router, tfserving.router):
        app.include_router(router)
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
        app.add_api_route(settings.aip_predict_route, tfserving.tfserving_predict, methods=["POST"])
    return app
