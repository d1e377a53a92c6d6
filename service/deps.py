"""Dependencies the routes share: the loaded model and the settings, from app state."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import Depends, Request

from service.batching import MicroBatcher
from service.config import Settings
from service.errors import RequestError
from service.model import MugClassifier


class ModelNotReadyError(RequestError):
    status_code = 503
    code = "model_not_ready"


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_ready_model(request: Request) -> MugClassifier:
    model: MugClassifier = request.app.state.model
    if not model.ready:
        raise ModelNotReadyError("the model is still loading; retry shortly")
    return model


def get_batcher(request: Request) -> MicroBatcher:
    return request.app.state.batcher


def get_decoders(request: Request) -> anyio.CapacityLimiter:
    return request.app.state.decoders


SettingsDep = Annotated[Settings, Depends(get_settings)]
ReadyModelDep = Annotated[MugClassifier, Depends(get_ready_model)]
BatcherDep = Annotated[MicroBatcher, Depends(get_batcher)]
DecodersDep = Annotated[anyio.CapacityLimiter, Depends(get_decoders)]
