"""`POST /feedback`: a person says what a photo really shows. The photo comes again (multipart
`image`, or JSON base64 as for /predict) with `label`, one of the model's labels or `none` (none
of them), and optionally the `request_id` of the answer it corrects. It is kept in the
prediction log (PREDICTION_LOG) whether or not that answer was sampled, for
`training.feedback` to turn into training photos."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from service.deps import RegistryDep, log_context
from service.errors import BadImageError, RequestError
from service.imaging import ImageError
from service.schemas import ERROR_RESPONSES, EXAMPLE_B64
from service.security import require_api_key
from service.uploads import decode_base64, media_type, parse_json, read_form

NONE_OF_THEM = "none"
router = APIRouter(tags=["feedback"], dependencies=[Depends(require_api_key)])


class FeedbackOffError(RequestError):
    """No prediction log: this service keeps no corrections (a setting, not a passing state)."""

    status_code = 404
    code = "feedback_off"


class LogFullError(RequestError):
    status_code = 503
    code = "log_full"
    default_headers: ClassVar[dict[str, str]] = {"Retry-After": "5"}


class FeedbackJSON(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"image": EXAMPLE_B64, "label": "black"}]},
    )

    image: str = Field(description="the photo, base64 as for /predict")
    label: str = Field(description="what it shows: one of the model's labels, or `none`")
    request_id: str | None = Field(None, max_length=128, description="the answer it corrects")


class FeedbackAccepted(BaseModel):
    status: str = "accepted"
    request_id: str = Field(description="this correction's request ID")
    label: str


@router.post(
    "/feedback",
    status_code=202,
    response_model=FeedbackAccepted,
    responses={
        **ERROR_RESPONSES,
        404: {"description": "no prediction log: corrections are not kept"},
        503: {"description": "the prediction log is full for now"},
    },
    summary="Correct an answer: what the photo really shows",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "image": {"type": "string", "format": "binary"},
                            "label": {"type": "string"},
                            "request_id": {"type": "string"},
                        },
                        "required": ["image", "label"],
                    }
                },
                "application/json": {"schema": FeedbackJSON.model_json_schema()},
            },
        }
    },
)
async def feedback(request: Request, registry: RegistryDep) -> JSONResponse:
    prediction_log = registry.prediction_log
    if prediction_log is None:
        raise FeedbackOffError("corrections are not kept here: PREDICTION_LOG is not set")
    served = registry.default
    data, label, corrects = await _read(request)
    labels = (*served.model.labels, NONE_OF_THEM)
    if label not in labels:
        raise RequestError(f"label: {label!r} is none of {', '.join(labels)}", "label")
    try:
        await asyncio.to_thread(served.model.preprocess, data)  # only photos are kept
    except ImageError as error:
        raise BadImageError(error, "image") from error
    context = log_context(request)
    record: dict[str, Any] = {
        "kind": "feedback",
        "request_id": context.request_id,
        "image_index": 0,
        "route": context.route,
        "model_version": served.id,
        "label": label,
        "corrects": corrects,
    }
    if not prediction_log.offer(record, data):
        raise LogFullError("the prediction log is full; retry in a few seconds")
    body = FeedbackAccepted(request_id=context.request_id, label=label)
    return JSONResponse(body.model_dump(), status_code=202)


async def _read(request: Request) -> tuple[bytes, str, str | None]:
    """(photo bytes, label, request_id corrected) from a multipart or JSON body."""
    if media_type(request) == "multipart/form-data":
        form = await read_form(request, 1, 8, "image")
        try:
            image, label = form.get("image"), form.get("label")
            if not isinstance(image, UploadFile):
                raise RequestError("image: send the photo as a file under `image`", "image")
            if not isinstance(label, str) or not label:
                raise RequestError("label: send what the photo shows under `label`", "label")
            corrects = form.get("request_id")
            corrects = corrects[:128] if isinstance(corrects, str) and corrects else None
            return await image.read(), label, corrects
        finally:
            await form.close()
    body = await parse_json(request, FeedbackJSON)
    return decode_base64(body.image, "image").data, body.label, body.request_id
