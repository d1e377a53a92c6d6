"""Every failure a client can cause, as a type with a status code, and the one set of
handlers that turns them into `{"error": code, "detail": message}` bodies.

Bodies carry only messages written for clients: never a traceback, path or echoed input.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.imaging import (
    CorruptImageError,
    ImageError,
    ImageTooLargeError,
    NotAnImageError,
    UnsupportedFormatError,
)

log = logging.getLogger(__name__)
OPEN_INFERENCE_PREFIX = "/v2/"


class RequestError(Exception):
    """A request the service refuses; `field` names the offending part when there is one."""

    status_code = 422
    code = "invalid_request"
    default_headers: ClassVar[dict[str, str]] = {}  # sent with every refusal of this kind

    def __init__(
        self, detail: str, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.headers = {**self.default_headers, **(headers or {})}


class MalformedBodyError(RequestError):
    status_code = 400
    code = "malformed_body"


class BodyTooLargeError(RequestError):
    status_code = 413
    code = "body_too_large"


class UnsupportedMediaTypeError(RequestError):
    status_code = 415
    code = "unsupported_media_type"


class BadImageError(RequestError):
    """An uploaded image that cannot be decoded; wraps the imaging layer's error."""

    _CODES: ClassVar[dict[type[ImageError], tuple[int, str]]] = {
        NotAnImageError: (400, "not_an_image"),
        UnsupportedFormatError: (400, "unsupported_image_format"),
        CorruptImageError: (400, "corrupt_image"),
        ImageTooLargeError: (413, "image_too_large"),
    }

    def __init__(self, error: ImageError, field: str) -> None:
        super().__init__(f"{field}: {error}", field)
        self.status_code, self.code = self._CODES.get(type(error), (400, "bad_image"))


def field_path(location: tuple[int | str, ...]) -> str | None:
    """("instances", 0, "b64") -> "instances[0].b64"; pydantic's `loc` as a client reads it."""
    path = ""
    for part in location:
        if part == "body" and not path:
            continue
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path or None


def error_response(
    status_code: int,
    code: str,
    detail: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": code, "detail": detail}
    if field is not None:
        body["field"] = field
    return JSONResponse(body, status_code=status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Map every known failure to a JSON error; anything unexpected to a plain 500."""

    @app.exception_handler(RequestError)
    async def request_error(request: Request, error: RequestError) -> JSONResponse:
        request.app.state.metrics.rejected.labels(error.code).inc()
        if request.url.path.startswith(OPEN_INFERENCE_PREFIX):
            # The Open Inference Protocol's error body: the message under "error", which its
            # clients show; the code beside it.
            body = {"error": error.detail, "code": error.code}
            return JSONResponse(body, status_code=error.status_code, headers=error.headers)
        return error_response(
            error.status_code, error.code, error.detail, error.field, error.headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        request.app.state.metrics.rejected.labels("invalid_request").inc()
        first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
        field = field_path(tuple(first["loc"]))
        detail = f"{field}: {first['msg']}" if field else str(first["msg"])
        return error_response(422, "invalid_request", detail, field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return error_response(error.status_code, code, str(error.detail))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "the server failed to answer this request")
