"""`POST /predict`: one image or several, as multipart files or base64 JSON."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.answers import JSONAnswer
from service.deps import VERSION_PARAMETERS, get_registry, log_context
from service.routes.direct import RequestRoute
from service.schemas import ERROR_RESPONSES, BatchPrediction, Prediction, PredictJSON
from service.uploads import read_uploads

router = APIRouter(tags=["predict"], route_class=RequestRoute)

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
        "parameters": VERSION_PARAMETERS,
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": _MULTIPART_SCHEMA},
                "application/json": {"schema": PredictJSON.model_json_schema()},
            },
        },
    },
)
async def predict(request: Request) -> JSONAnswer:
    """The hot path: a RequestRoute (the key checked first, nothing solved or validated by
    FastAPI), and the answer encoded once (`service.answers`)."""
    registry = await get_registry(request)
    max_images = request.app.state.settings.max_batch_images
    query = request.query_params
    async with registry.using(query.get("version"), query.get("label")) as served:
        uploads, single = await read_uploads(request, max_images, PredictJSON)
        classifications = await served.pipeline.classify(uploads, log_context(request))
    predictions = [Prediction.body(c, served.id) for c in classifications]
    return JSONAnswer(predictions[0] if single else {"predictions": predictions})
