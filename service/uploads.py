"""Getting image bytes out of a request: multipart fields, base64 JSON, TF Serving instances.

Each image keeps the name of the field it came from (`image`, `images[2]`, `instances[0]`),
so an error can say which one was at fault.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from service.errors import (
    MalformedBodyError,
    RequestError,
    UnsupportedMediaTypeError,
    field_path,
)
from service.schemas import ExplainJSON, PredictJSON

_BASE64_WHITESPACE = re.compile(r"\s+")
SchemaT = TypeVar("SchemaT", bound=BaseModel)


@dataclass(frozen=True)
class Upload:
    field: str
    data: bytes


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def parse_json(request: Request, schema: type[SchemaT]) -> SchemaT:
    """The body as `schema`; malformed JSON or a wrong shape is a 422 naming the field."""
    if media_type(request) != "application/json":
        raise UnsupportedMediaTypeError(
            f"send application/json, not {media_type(request) or 'no content type'}"
        )
    return validate_json(await request.body(), schema)


def validate_json(body: bytes, schema: type[SchemaT]) -> SchemaT:
    """`body` as `schema`; malformed JSON or a wrong shape is a 422 naming the field."""
    try:
        return schema.model_validate_json(body)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        if first["type"] == "json_invalid":
            raise RequestError(f"body is not valid JSON ({first['msg']})", "body") from error
        field = field_path(tuple(first["loc"])) or "body"
        raise RequestError(f"{field}: {first['msg']}", field) from error


async def read_form(
    request: Request, max_files: int, max_fields: int, files_field: str
) -> FormData:
    """The multipart body; more than `max_files` files is a 422 on `files_field`, anything
    unparsable a 400. The caller closes the form."""
    try:
        return await request.form(max_files=max_files, max_fields=max_fields)
    except HTTPException as error:  # starlette's answer to a multipart it cannot parse
        if "Too many files" in str(error.detail):
            raise RequestError(
                f"{files_field}: at most {max_files} files per request", files_field
            ) from error
        raise MalformedBodyError(f"malformed multipart body ({error.detail})", "body") from error
    except ValueError as error:  # python-multipart's own parse errors
        raise MalformedBodyError(f"malformed multipart body ({error})", "body") from error


async def read_multipart(request: Request, max_images: int) -> tuple[list[Upload], bool]:
    """Files under `image` (exactly one) or `images` (one or more). Returns the uploads and
    whether the single-image form was used.

    A plain body, as every HTTP client sends, is split in one pass over the bytes
    (`plain_parts`); anything else goes through the full multipart parser, which gives the
    odd bodies and the malformed ones their answers."""
    max_fields = max_images + 8
    body = await request.body()
    parts = plain_parts(body, request.headers.get("content-type", ""))
    if parts is not None and _within(parts, max_images, max_fields):
        return _uploads(parts, max_images)
    form = await read_form(request, max_images, max_fields, "images")
    try:
        parts = [
            (name, await value.read() if isinstance(value, UploadFile) else value)
            for name, value in form.multi_items()
        ]
    finally:
        await form.close()  # each part's temporary file, now rather than when collected
    return _uploads(parts, max_images)


Part = tuple[str, bytes | str]  # a field's name, and a file's bytes or a text field's value


def plain_parts(body: bytes, content_type: str) -> list[Part] | None:
    """The parts of a multipart/form-data body whose parts carry only a Content-Disposition
    (`form-data; name="..."`, with `filename="..."` for a file) and a Content-Type, between
    delimiters with no preamble and nothing after the last; None for anything else."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        return None
    delimiter = b"--" + boundary
    if not body.startswith(delimiter):
        return None
    parts: list[Part] = []
    position = len(delimiter)
    while not body.startswith(b"--", position):
        if not body.startswith(b"\r\n", position):
            return None
        headers_end = body.find(b"\r\n\r\n", position)
        end = body.find(b"\r\n" + delimiter, headers_end)
        if headers_end < 0 or end < 0:
            return None
        part = _plain_part(body[position + 2 : headers_end], body[headers_end + 4 : end])
        if part is None:
            return None
        parts.append(part)
        position = end + 2 + len(delimiter)
    return parts if body[position + 2 :] in (b"", b"\r\n") else None


def _plain_part(headers: bytes, content: bytes) -> Part | None:
    disposition = None
    for line in headers.split(b"\r\n"):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-disposition" and disposition is None:
            disposition = value
        elif name != b"content-type":
            return None
    if disposition is None or b"\\" in disposition or b"*=" in disposition:
        return None  # escapes and RFC 5987 names are the full parser's
    kind, options = parse_options_header(disposition)
    if kind != b"form-data" or b"name" not in options:
        return None
    field = options[b"name"].decode("utf-8", "replace")
    if b"filename" in options:
        return field, content
    return field, content.decode("utf-8", "replace")


def _within(parts: list[Part], max_files: int, max_fields: int) -> bool:
    """Whether the full parser would take `parts` too (else its refusal is the answer)."""
    files = sum(isinstance(value, bytes) for _, value in parts)
    return files <= max_files and len(parts) - files <= max_fields


def _uploads(parts: list[Part], max_images: int) -> tuple[list[Upload], bool]:
    single = [value for name, value in parts if name == "image"]
    many = [value for name, value in parts if name == "images"]
    if single and many:
        raise RequestError("send files under `image` or under `images`, not both", "image")
    if len(single) > 1:
        raise RequestError("`image` takes one file; send several under `images`", "image")
    fields = [("image", single[0])] if single else [(f"images[{i}]", f) for i, f in enumerate(many)]
    if not fields:
        raise RequestError("no file: send one under `image` or several under `images`", "image")
    check_count(len(fields), max_images, "images")
    for name, value in fields:
        if not isinstance(value, bytes):
            raise RequestError(f"{name}: expected a file upload, got a text field", name)
    return [Upload(name, value) for name, value in fields], bool(single)


def decode_base64(text: str, field: str) -> Upload:
    """Standard or URL-safe base64, padding optional, `data:...;base64,` prefix allowed."""
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    text = _BASE64_WHITESPACE.sub("", text).replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return Upload(field, base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError) as error:
        raise RequestError(f"{field}: invalid base64", field) from error


async def read_uploads(
    request: Request, max_images: int, json_schema: type[PredictJSON] | type[ExplainJSON]
) -> tuple[list[Upload], bool]:
    """The images of a multipart or JSON (`json_schema`) request, and whether the one-image
    form (`image`) was used; any other content type is a 415."""
    kind = media_type(request)
    if kind == "multipart/form-data":
        return await read_multipart(request, max_images)
    if kind == "application/json":
        body = await parse_json(request, json_schema)
        return json_uploads(body, max_images), body.image is not None
    raise UnsupportedMediaTypeError(
        f"send multipart/form-data or application/json, not {kind or 'no content type'}"
    )


def json_uploads(body: PredictJSON | ExplainJSON, max_images: int) -> list[Upload]:
    """The images of a `/predict` or `/explain` JSON body, decoded from base64."""
    if body.image is not None:
        return [decode_base64(body.image, "image")]
    images = getattr(body, "images", None) or []
    check_count(len(images), max_images, "images")
    return [decode_base64(text, f"images[{i}]") for i, text in enumerate(images)]


def check_count(count: int, max_images: int, field: str) -> None:
    if count > max_images:
        raise RequestError(f"{field}: {count} images; at most {max_images} per request", field)
