"""The TensorFlow Serving / Cloud ML Engine REST form, for clients of the original deployment:
`POST /v1/models/mugs:predict` with `{"instances": [...]}`, `:explain` (KServe V1's verb) with
the same instances, and `GET /v1/models/mugs`."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request

from service.config import Settings
from service.deps import PipelineDep, ReadyModelDep, SettingsDep
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

MODEL_NAME = "mugs"
router = APIRouter(prefix=f"/v1/models/{MODEL_NAME}", tags=["tensorflow-serving"])


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
    request: Request, pipeline: PipelineDep, settings: SettingsDep
) -> TFServingResponse:
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
    request: Request, pipeline: PipelineDep, settings: SettingsDep
) -> TFServingExplainResponse:
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
async def tfserving_status(model: ReadyModelDep) -> TFServingModelStatus:
    return TFServingModelStatus(
        model_version_status=[
            TFServingVersionStatus(
                version=model.version,
                state="AVAILABLE",
                status={"error_code": "OK", "error_message": ""},
            )
        ]
    )
