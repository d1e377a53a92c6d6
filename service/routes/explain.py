"""`POST /explain`: one image, as for /predict, answered with the prediction and a heatmap of
where the answer came from: occlusion, a 4x4 grid of the image the model sees hidden a cell at
a time (service.model.ImageClassifier.occlusions), 17 images in one model call."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from service.deps import RegistryDep, log_context
from service.errors import RequestError
from service.schemas import ERROR_RESPONSES, ExplainJSON, Explanation
from service.security import require_api_key
from service.uploads import read_uploads

router = APIRouter(tags=["explain"], dependencies=[Depends(require_api_key)])


@router.post(
    "/explain",
    response_model=Explanation,
    responses=ERROR_RESPONSES,
    summary="Classify one photo and show where the model looked",
    description=(
        "Send one photo as for /predict: `multipart/form-data` with a file under `image`, or "
        'JSON `{"image": "<base64>"}`. The answer is the prediction plus `heatmap`: 8x8 '
        "values in 0..1 over the centre square the model sees, row 0 the top."
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
async def explain(
    request: Request,
    registry: RegistryDep,
    version: str | None = Query(None, description="the model version to answer"),
    label: str | None = Query(None, description="a version's label (MODEL_LABELS)"),
) -> Explanation:
    async with registry.using(version, label) as served:
        uploads, single = await read_uploads(request, 1, ExplainJSON)
        if not single:
            raise RequestError("/explain takes one photo, under `image`", "images")
        answer = await served.pipeline.explain(uploads[0], log_context(request))
    return Explanation.of(answer, served.id)
