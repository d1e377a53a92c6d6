"""The TensorFlow Serving / Cloud ML Engine REST form: `POST /v1/models/{name}:predict` with
`{"instances": [...]}`, `:explain` (KServe V1's verb) with the same instances, and
`GET /v1/models/{name}`; `{name}` is the served model's (MODEL_NAME, else its metadata's)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request

from service.config import Settings
from service.deps import PipelineDep, ReadyModelDep, SettingsDep
from service.errors import RequestError
from service.model import ImageClassifier
from service.schemas import (
    ERROR_RESPONSES,
    TFServingExplainResponse,
    TFServingExplanation,
    TFServingModelStatus,
    TFServingPrediction,
    TFServingRequest,
    TFServingResponse,
    TFServingVersionStatus,
    heatmap_rows,
)
from service.security import require_api_key
from service.uploads import Upload, check_count, decode_base64, parse_json

router = APIRouter(prefix="/v1/models/{model_name}", tags=["tensorflow-serving"])


class ModelNotFoundError(RequestError):
    status_code = 404
    code = "model_not_found"


def check_name(model_name: str, model: ImageClassifier) -> None:
    """404 for a model this service does not serve."""
    if model_name != model.name:
        raise ModelNotFoundError(
            f"no model named {model_name!r}; this service serves {model.name!r}", "model_name"
        )


@router.post(
    ":predict",
    dependencies=[Depends(require_api_key)],
    response_model=TFServingResponse,
    responses=ERROR_RESPONSES,
    summary="Classify images sent in TensorFlow Serving's REST form",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": TFServingRequest.model_json_schema()}},
        }
    },
)
async def tfserving_predict(
    model_name: str, request: Request, pipeline: PipelineDep, settings: SettingsDep
) -> TFServingResponse:
    check_name(model_name, pipeline.model)
    return await instances_predict(request, pipeline, settings)


async def instances_predict(
    request: Request, pipeline: PipelineDep, settings: SettingsDep
) -> TFServingResponse:
    """`{"instances": [...]}` -> predictions: the `:predict` route's work, also Vertex AI's
    AIP_PREDICT_ROUTE."""
    classifications = await pipeline.classify(await _instances(request, settings))
    return TFServingResponse(predictions=[TFServingPrediction.of(c) for c in classifications])


@router.post(
    ":explain",
    dependencies=[Depends(require_api_key)],
    response_model=TFServingExplainResponse,
    responses=ERROR_RESPONSES,
    summary="Classify images in TensorFlow Serving's form, each with a heatmap",
    description="The instances `:predict` takes; each explanation adds `heatmap` (see /explain).",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": TFServingRequest.model_json_schema()}},
        }
    },
)
async def tfserving_explain(
    model_name: str, request: Request, pipeline: PipelineDep, settings: SettingsDep
) -> TFServingExplainResponse:
    check_name(model_name, pipeline.model)
    uploads = await _instances(request, settings)
    classifications = await asyncio.gather(*(pipeline.explain(upload) for upload in uploads))
    return TFServingExplainResponse(
        explanations=[
            TFServingExplanation(**TFServingPrediction.of(c).model_dump(), heatmap=heatmap_rows(c))
            for c in classifications
        ]
    )


async def _instances(request: Request, settings: Settings) -> list[Upload]:
    body = await parse_json(request, TFServingRequest)
    check_count(len(body.instances), settings.max_batch_images, "instances")
    return [
        decode_base64(instance.base64, f"instances[{i}]")
        for i, instance in enumerate(body.instances)
    ]


@router.get("", response_model=TFServingModelStatus, summary="Model version status")
async def tfserving_status(model_name: str, model: ReadyModelDep) -> TFServingModelStatus:
    check_name(model_name, model)
    return TFServingModelStatus(
        model_version_status=[
            TFServingVersionStatus(
                version=model.version,
                state="AVAILABLE",
                status={"error_code": "OK", "error_message": ""},
            )
        ]
    )
