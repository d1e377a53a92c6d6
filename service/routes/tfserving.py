"""The TensorFlow Serving / Cloud ML Engine REST form: `POST /v1/models/{name}:predict` with
`{"instances": [...]}`, `:explain` (KServe V1's verb) with the same instances, a version pinned
by number (`/versions/{v}:predict`) or by label (`/labels/{label}:predict`), and
`GET /v1/models/{name}` listing every version in memory and its state. `{name}` is the served
model's (MODEL_NAME, else its metadata's)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request

from service.answers import JSONAnswer
from service.config import Settings
from service.deps import RegistryDep, SettingsDep, get_registry, log_context
from service.errors import RequestError
from service.registry import ModelRegistry, ServedVersion
from service.routes.direct import RequestRoute
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
# The :predict routes, a hot path: nothing solved or validated by FastAPI (RequestRoute).
predict_router = APIRouter(
    prefix="/v1/models/{model_name}", tags=["tensorflow-serving"], route_class=RequestRoute
)
INSTANCES_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": TFServingRequest.model_json_schema()}},
    }
}
_PREDICT = {
    "response_model": TFServingResponse,
    "responses": {**ERROR_RESPONSES, 404: ERROR_RESPONSES[422] | {"description": "not served"}},
    "openapi_extra": INSTANCES_BODY,
}


class ModelNotFoundError(RequestError):
    status_code = 404
    code = "model_not_found"


def check_name(model_name: str, registry: ModelRegistry) -> None:
    """404 for a model this service does not serve."""
    if model_name != registry.name:
        raise ModelNotFoundError(
            f"no model named {model_name!r}; this service serves {registry.name!r}",
            "model_name",
        )


@predict_router.post(
    ":predict", summary="Classify images sent in TensorFlow Serving's REST form", **_PREDICT
)
async def tfserving_predict(model_name: str, request: Request) -> JSONAnswer:
    return await _predict(request, model_name)


@predict_router.post(
    "/versions/{version}:predict", summary="Classify with one model version", **_PREDICT
)
async def tfserving_version_predict(model_name: str, version: str, request: Request) -> JSONAnswer:
    return await _predict(request, model_name, version=version)


@predict_router.post(
    "/labels/{label}:predict", summary="Classify with the version a label names", **_PREDICT
)
async def tfserving_label_predict(model_name: str, label: str, request: Request) -> JSONAnswer:
    return await _predict(request, model_name, label=label)


async def instances_predict(request: Request) -> JSONAnswer:
    """Vertex AI's AIP_PREDICT_ROUTE: `:predict` by another path, any model name."""
    return await _predict(request, None)


async def _predict(
    request: Request,
    model_name: str | None,
    version: str | None = None,
    label: str | None = None,
) -> JSONAnswer:
    """`{"instances": [...]}` -> predictions by one version: every `:predict` route's work.
    After the key (RequestRoute), the model's readiness, then its name."""
    registry = await get_registry(request)
    if model_name is not None:
        check_name(model_name, registry)
    async with registry.using(version, label) as served:
        uploads = await _instances(request, request.app.state.settings)
        classifications = await served.pipeline.classify(uploads, log_context(request))
    predictions = [TFServingPrediction.body(c) for c in classifications]
    return JSONAnswer({"predictions": predictions, "model_version": served.id})


@router.post(
    ":explain",
    dependencies=[Depends(require_api_key)],
    response_model=TFServingExplainResponse,
    responses=ERROR_RESPONSES,
    summary="Classify images in TensorFlow Serving's form, each with a heatmap",
    description="The instances `:predict` takes; each explanation adds `heatmap` (see /explain).",
    openapi_extra=INSTANCES_BODY,
)
async def tfserving_explain(
    model_name: str, request: Request, registry: RegistryDep, settings: SettingsDep
) -> TFServingExplainResponse:
    check_name(model_name, registry)
    async with registry.using() as served:
        uploads = await _instances(request, settings)
        pipeline = served.pipeline
        classifications = await asyncio.gather(*(pipeline.explain(upload) for upload in uploads))
    return TFServingExplainResponse(
        explanations=[
            TFServingExplanation(**TFServingPrediction.body(c), heatmap=heatmap_rows(c))
            for c in classifications
        ],
        model_version=served.id,
    )


async def _instances(request: Request, settings: Settings) -> list[Upload]:
    body = await parse_json(request, TFServingRequest)
    check_count(len(body.instances), settings.max_batch_images, "instances")
    return [
        decode_base64(instance.base64, f"instances[{i}]")
        for i, instance in enumerate(body.instances)
    ]


def version_status(served: ServedVersion) -> TFServingVersionStatus:
    return TFServingVersionStatus(
        version=served.id,
        state="UNLOADING" if served.retired else "AVAILABLE",
        status={"error_code": "OK", "error_message": ""},
    )


@router.get("", response_model=TFServingModelStatus, summary="Every model version's status")
async def tfserving_status(model_name: str, registry: RegistryDep) -> TFServingModelStatus:
    check_name(model_name, registry)
    statuses = [version_status(served) for served in registry.versions()]
    statuses += [
        TFServingVersionStatus(
            version=version,
            state="END",
            status={"error_code": "FAILED_PRECONDITION", "error_message": reason},
        )
        for version, reason in registry.refused.items()
    ]
    return TFServingModelStatus(model_version_status=statuses)


@router.get(
    "/versions/{version}", response_model=TFServingModelStatus, summary="One version's status"
)
async def tfserving_version_status(
    model_name: str, version: str, registry: RegistryDep
) -> TFServingModelStatus:
    check_name(model_name, registry)
    return TFServingModelStatus(model_version_status=[version_status(registry.resolve(version))])
