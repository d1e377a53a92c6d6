"""Dependencies the routes share, from app state: the settings, the ready model and the
inference pipeline in front of it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.config import Settings
from service.errors import RequestError
from service.inference import InferencePipeline
from service.model import ImageClassifier


class ModelNotReadyError(RequestError):
    status_code = 503
    code = "model_not_ready"


# The dependencies are `async def` although none of them waits: FastAPI runs a plain `def`
# dependency in its thread pool, a thread hop per dependency per request.


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_ready_model(request: Request) -> ImageClassifier:
    return _ready_model(request)


async def get_pipeline(request: Request) -> InferencePipeline:
    """The running pipeline; like the model, 503 until the model is ready. (Overload is
    refused before the request gets here: `service.admission`.)"""
    _ready_model(request)
    return request.app.state.pipeline


def _ready_model(request: Request) -> ImageClassifier:
    model: ImageClassifier = request.app.state.model
    if not model.ready:
        raise ModelNotReadyError("the model is still loading; retry shortly")
    return model


SettingsDep = Annotated[Settings, Depends(get_settings)]
ReadyModelDep = Annotated[ImageClassifier, Depends(get_ready_model)]
PipelineDep = Annotated[InferencePipeline, Depends(get_pipeline)]
