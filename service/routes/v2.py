"""The Open Inference Protocol (V2) over REST, beside the other routes and on the same inference
path: health, server and model metadata, model readiness, and `infer` (JSON, and the binary
tensor data extension), for the newest version or one pinned by number. Bodies and the
binary format: `service.v2`."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from service.deps import RegistryDep, get_registry, log_context
from service.errors import RequestError
from service.registry import ModelRegistry, ServedVersion
from service.routes.direct import RequestRoute
from service.routes.tfserving import check_name
from service.v2 import (
    HEADER_LENGTH,
    InferenceRequest,
    ModelMetadataResponse,
    model_metadata,
    parse_request,
    request_images,
    response,
)

router = APIRouter(prefix="/v2", tags=["open-inference-protocol"])
# The infer routes, a hot path: nothing solved or validated by FastAPI (RequestRoute).
infer_router = APIRouter(prefix="/v2", tags=["open-inference-protocol"], route_class=RequestRoute)
SERVER = {"name": "mug-classifier", "version": "1.0.0", "extensions": ["binary_tensor_data"]}


def _ready(request: Request) -> bool:
    registry: ModelRegistry = request.app.state.registry
    return registry.ready and not request.app.state.draining.is_set()


@router.get("/health/live", summary="The server is up")
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get(
    "/health/ready", summary="The server answers inferences (503 while loading or draining)"
)
async def ready(request: Request) -> JSONResponse:
    is_ready = _ready(request)
    return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)


@router.get("", summary="Server metadata")
async def server_metadata() -> dict[str, object]:
    return SERVER


def _version(registry: ModelRegistry, model_name: str, version: str | None) -> ServedVersion:
    check_name(model_name, registry)
    return registry.resolve(version)


def _metadata(registry: ModelRegistry, served: ServedVersion) -> ModelMetadataResponse:
    model = served.model
    versions = [v.id for v in registry.versions() if not v.retired]
    platform = f"{registry.settings.model_runtime}_{model.precision}"
    return model_metadata(registry.name, versions, platform, len(model.labels), model.has_novelty)


@router.get("/models/{model_name}", response_model=ModelMetadataResponse, summary="Model metadata")
async def metadata(model_name: str, registry: RegistryDep) -> ModelMetadataResponse:
    return _metadata(registry, _version(registry, model_name, None))


@router.get(
    "/models/{model_name}/versions/{version}",
    response_model=ModelMetadataResponse,
    summary="One version's metadata",
)
async def version_metadata(
    model_name: str, version: str, registry: RegistryDep
) -> ModelMetadataResponse:
    return _metadata(registry, _version(registry, model_name, version))


@router.get("/models/{model_name}/ready", summary="The model answers inferences")
async def model_ready(model_name: str, registry: RegistryDep) -> dict[str, object]:
    _version(registry, model_name, None)
    return {"name": model_name, "ready": True}


@router.get("/models/{model_name}/versions/{version}/ready", summary="The version answers")
async def version_ready(model_name: str, version: str, registry: RegistryDep) -> dict[str, object]:
    _version(registry, model_name, version)
    return {"name": model_name, "version": version, "ready": True}


_INFER = {
    "response_class": Response,
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": InferenceRequest.model_json_schema()},
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"},
                    "description": "binary tensor data extension: the JSON header (its length "
                    "in Inference-Header-Content-Length), then the images as BYTES elements",
                },
            },
        }
    },
}


@infer_router.post("/models/{model_name}/infer", summary="Classify encoded images", **_INFER)
async def infer(model_name: str, request: Request) -> Response:
    return await _infer(request, model_name, None)


@infer_router.post(
    "/models/{model_name}/versions/{version}/infer",
    summary="Classify encoded images with one version",
    **_INFER,
)
async def version_infer(model_name: str, version: str, request: Request) -> Response:
    return await _infer(request, model_name, version)


async def _infer(request: Request, model_name: str, version: str | None) -> Response:
    """After the key (RequestRoute), the model's readiness, then its name."""
    registry = await get_registry(request)
    check_name(model_name, registry)
    async with registry.using(version) as served:
        body = await request.body()
        if not body:
            raise RequestError("the request has no body", "body")
        parsed, binary = parse_request(body, request.headers.get(HEADER_LENGTH))
        uploads = request_images(parsed, binary, request.app.state.settings.max_batch_images)
        answers = await served.pipeline.classify(uploads, log_context(request))
    content, headers = response(parsed, registry.name, served.id, answers)
    media_type = headers.pop("content-type")
    return Response(content, media_type=media_type, headers=headers)
