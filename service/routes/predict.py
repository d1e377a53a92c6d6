"""`POST /predict`: one image or several, as multipart files or base64 JSON."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from service.deps import RegistryDep, SettingsDep, log_context
from service.schemas import ERROR_RESPONSES, BatchPrediction, Prediction, PredictJSON
from service.security import require_api_key
from service.uploads import read_uploads

router = APIRouter(tags=["predict"], dependencies=[Depends(require_api_key)])

_MULTIPART_SCHEMA = {
    "type": "object",
    "properties": {
        "image": {"type": "string", "format": "binary", "description": "one photo"},
        "images": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "several photos (repeat the field)",
        },
    },
}


@router.post(
    "/predict",
    response_model=Prediction | BatchPrediction,
    responses=ERROR_RESPONSES,
    summary="Classify one or several photos",
    description=(
        "Send `multipart/form-data` with a file under `image` (`curl -F image=@photo.jpg`) or "
        'several under `images`, or JSON `{"image": "<base64>"}` / `{"images": [...]}`. '
        "One image answers with a prediction; `images` answers with `predictions`, in order. "
        "JPEG, PNG, WebP, GIF, BMP, HEIC and AVIF of any size are accepted. `version` or "
        "`label` (query) pins a model version; by default the newest served answers."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": _MULTIPART_SCHEMA},
                "application/json": {"schema": PredictJSON.model_json_schema()},
            },
        }
    },
)
async def predict(
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    version: str | None = Query(None, description="the model version to answer"),
    label: str | None = Query(None, description="a version's label (MODEL_LABELS)"),
) -> Prediction | BatchPrediction:
    async with registry.using(version, label) as served:
        uploads, single = await read_uploads(request, settings.max_batch_images, PredictJSON)
        classifications = await served.pipeline.classify(uploads, log_context(request))
    predictions = [Prediction.of(c, served.id) for c in classifications]
    return predictions[0] if single else BatchPrediction(predictions=predictions)
