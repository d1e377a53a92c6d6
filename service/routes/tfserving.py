"""The TensorFlow Serving / Cloud ML Engine REST form, for clients of the original deployment:
`POST /v1/models/mugs:predict` with `{"instances": [...]}` and `GET /v1/models/mugs`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from service.deps import PipelineDep, ReadyModelDep, SettingsDep
from service.schemas import (
    ERROR_RESPONSES,
    TFServingModelStatus,
    TFServingPrediction,
    TFServingRequest,
    TFServingResponse,
    TFServingVersionStatus,
)
from service.security import require_api_key
from service.uploads import check_count, decode_base64, parse_json

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
    body = await parse_json(request, TFServingRequest)
    check_count(len(body.instances), settings.max_batch_images, "instances")
    uploads = [
        decode_base64(instance.base64, f"instances[{i}]")
        for i, instance in enumerate(body.instances)
    ]
    classifications = await pipeline.classify(uploads)
    return TFServingResponse(
        predictions=[
            TFServingPrediction(classes=c.index, probabilities=list(c.probabilities))
            for c in classifications
        ]
    )


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
