"""`POST /explain`: one image, as for /predict, answered with the prediction and a heatmap of
where the model looked. The model computes the heatmap in the same pass (see the model's
ClassActivationMap): an explanation costs what a prediction does."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from service.deps import PipelineDep, SettingsDep
from service.errors import RequestError
from service.schemas import ERROR_RESPONSES, ExplainJSON, Explanation
from service.security import require_api_key
from service.uploads import read_uploads

router = APIRouter(tags=["explain"], dependencies=[Depends(require_api_key)])


class NoHeatmapError(RequestError):
    status_code = 501
    code = "no_heatmap"


@router.post(
    "/explain",
    response_model=Explanation,
    responses=ERROR_RESPONSES,
    summary="Classify one photo and show where the model looked",
    description=(
        "Send one photo as for /predict: `multipart/form-data` with a file under `image`, or "
        'JSON `{"image": "<base64>"}`. The answer is the prediction plus `heatmap`: 8x8 '
        "values in 0..1 over the 64x64 centre square the model sees, row 0 the top."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"image": {"type": "string", "format": "binary"}},
                    }
                },
                "application/json": {"schema": ExplainJSON.model_json_schema()},
            },
        }
    },
)
async def explain(request: Request, pipeline: PipelineDep, settings: SettingsDep) -> Explanation:
    uploads, single = await read_uploads(request, 1, ExplainJSON)
    if not single:
        raise RequestError("/explain takes one photo, under `image`", "images")
    (classification,) = await pipeline.classify(uploads)
    if classification.heatmap is None:
        raise NoHeatmapError("this model computes no heatmap; re-export it with training")
    return Explanation.of(classification, pipeline.model.version)
