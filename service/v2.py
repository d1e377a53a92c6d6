"""The Open Inference Protocol (V2, KServe's, Triton's and Seldon's REST form): its request and
response bodies, and the binary tensor data extension, for this service's one input and its
outputs. The routes are in `service.routes.v2`; they run the same inference path as ours.

Input `images`, BYTES [N]: the encoded images, as the binary tensor data extension carries them
(each element a 4-byte little-endian length and the bytes), or in JSON as base64 strings.
Outputs: `probabilities` FP32 [N, classes] in the model's label order, `label` BYTES [N] (a
label, or `unknown`), `classes` INT64 [N] (the most probable class's index) and, for a model
with a novelty score, `novelty` FP32 [N].
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from service.errors import MalformedBodyError, RequestError
from service.model import Classification
from service.uploads import Upload, decode_base64, validate_json

INPUT = "images"
HEADER_LENGTH = "inference-header-content-length"
_LENGTH = struct.Struct("<I")


class TensorIn(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] = {}
    data: list[Any] | None = None


class OutputRequest(BaseModel):
    name: str
    parameters: dict[str, Any] = {}


class InferenceRequest(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] = {}
    inputs: list[TensorIn] = Field(min_length=1)
    outputs: list[OutputRequest] | None = None


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadataResponse(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


def model_metadata(
    name: str, versions: list[str], platform: str, classes: int, novelty: bool
) -> ModelMetadataResponse:
    outputs = [
        TensorMetadata(name="probabilities", datatype="FP32", shape=[-1, classes]),
        TensorMetadata(name="label", datatype="BYTES", shape=[-1]),
        TensorMetadata(name="classes", datatype="INT64", shape=[-1]),
    ]
    if novelty:
        outputs.append(TensorMetadata(name="novelty", datatype="FP32", shape=[-1]))
    return ModelMetadataResponse(
        name=name,
        versions=versions,
        platform=platform,
        inputs=[TensorMetadata(name=INPUT, datatype="BYTES", shape=[-1])],
        outputs=outputs,
    )


def parse_request(body: bytes, header_length: str | None) -> tuple[InferenceRequest, bytes]:
    """The request's JSON header and the binary data after it (none without the extension)."""
    if header_length is None:
        header, binary = body, b""
    else:
        try:
            length = int(header_length)
        except ValueError as error:
            raise MalformedBodyError("Inference-Header-Content-Length is not a number") from error
        if not 0 < length <= len(body):
            raise MalformedBodyError("Inference-Header-Content-Length is past the body's end")
        header, binary = body[:length], body[length:]
    return validate_json(header, InferenceRequest), binary


def request_images(request: InferenceRequest, binary: bytes, max_images: int) -> list[Upload]:
    """The encoded images of the `images` input, from binary data or base64 JSON strings."""
    if len(request.inputs) != 1 or request.inputs[0].name != INPUT:
        names = [tensor.name for tensor in request.inputs]
        raise RequestError(f"inputs: expected one input named {INPUT!r}, got {names}", "inputs")
    tensor = request.inputs[0]
    if tensor.datatype != "BYTES":
        raise RequestError(f"inputs[0]: {INPUT} is BYTES, not {tensor.datatype}", "inputs[0]")
    count = int(np.prod(tensor.shape)) if tensor.shape else 0
    if count < 1 or count > max_images:
        raise RequestError(f"inputs[0].shape: 1 to {max_images} images, not {count}", "inputs")
    size = tensor.parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size != len(binary):
            raise MalformedBodyError("binary_data_size does not match the binary data sent")
        elements = _split_bytes(binary)
        uploads = [Upload(f"images[{i}]", data) for i, data in enumerate(elements)]
    elif tensor.data is not None:
        flat = _flatten(tensor.data)
        if not all(isinstance(item, str) for item in flat):
            raise RequestError("inputs[0].data: base64 strings of encoded images", "inputs")
        uploads = [decode_base64(text, f"images[{i}]") for i, text in enumerate(flat)]
    else:
        raise RequestError("inputs[0]: no data (send data, or binary_data_size)", "inputs")
    if len(uploads) != count:
        raise RequestError(
            f"inputs[0]: shape says {count} images, {len(uploads)} were sent", "inputs"
        )
    return uploads


def response(
    request: InferenceRequest,
    model_name: str,
    version: str,
    answers: list[Classification],
) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers: JSON, or JSON then binary data for the outputs the
    request asked in binary (per output, or `binary_data_output` for all)."""
    tensors = _outputs(answers)
    wanted = {o.name: o.parameters for o in request.outputs} if request.outputs else None
    if wanted is not None:
        unknown = sorted(set(wanted) - set(tensors))
        if unknown:
            raise RequestError(f"outputs: no output named {unknown[0]!r}", "outputs")
    all_binary = bool(request.parameters.get("binary_data_output"))
    outputs, chunks = [], []
    for name, (datatype, values) in tensors.items():
        if wanted is not None and name not in wanted:
            continue
        binary = bool((wanted or {}).get(name, {}).get("binary_data", all_binary))
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(values.shape)}
        if binary:
            data = _to_bytes(datatype, values)
            entry["parameters"] = {"binary_data_size": len(data)}
            chunks.append(data)
        else:
            entry["data"] = values.flatten().tolist()
        outputs.append(entry)
    body: dict[str, Any] = {"model_name": model_name, "model_version": version, "outputs": outputs}
    if request.id is not None:
        body["id"] = request.id
    header = json.dumps(body, separators=(",", ":")).encode()
    if not chunks:
        return header, {"content-type": "application/json"}
    headers = {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(header))}
    return header + b"".join(chunks), headers


def _outputs(answers: list[Classification]) -> dict[str, tuple[str, np.ndarray]]:
    outputs = {
        "probabilities": (
            "FP32",
            np.asarray([a.probabilities for a in answers], dtype=np.float32),
        ),
        "label": ("BYTES", np.asarray([a.label for a in answers], dtype=object)),
        "classes": ("INT64", np.asarray([a.top_index for a in answers], dtype=np.int64)),
    }
    if all(a.novelty is not None for a in answers):
        outputs["novelty"] = ("FP32", np.asarray([a.novelty for a in answers], np.float32))
    return outputs


def _to_bytes(datatype: str, values: np.ndarray) -> bytes:
    if datatype != "BYTES":
        return values.astype(values.dtype.newbyteorder("<")).tobytes()
    encoded = [str(item).encode() for item in values.flatten()]
    return b"".join(_LENGTH.pack(len(item)) + item for item in encoded)


def _split_bytes(binary: bytes) -> list[bytes]:
    """BYTES tensor data: elements, each a 4-byte little-endian length and its bytes."""
    elements, offset = [], 0
    while offset < len(binary):
        if offset + 4 > len(binary):
            raise MalformedBodyError("binary BYTES data ends inside an element's length")
        (length,) = _LENGTH.unpack_from(binary, offset)
        offset += 4
        if offset + length > len(binary):
            raise MalformedBodyError("binary BYTES data ends inside an element")
        elements.append(binary[offset : offset + length])
        offset += length
    return elements


def _flatten(data: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for item in data:
        flat.extend(_flatten(item) if isinstance(item, list) else [item])
    return flat
