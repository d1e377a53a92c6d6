"""Every kind of bad request gets its documented 4xx and a JSON error, and the service
keeps answering good requests afterwards."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.config import MIB


def png_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 130, 140)).save(buffer, "PNG")
    return buffer.getvalue()


def bomb_png() -> bytes:
    """A few-KB PNG whose header claims 50000x50000 pixels."""
    buffer = io.BytesIO()
    Image.new("1", (50000, 50000)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def good_photo(test_photos: list[tuple[Path, int]]) -> bytes:
    return test_photos[0][0].read_bytes()


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (200, 200), (10, 200, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


def tiff_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buffer, "TIFF")
    return buffer.getvalue()


MAX = 64
BAD_REQUESTS = {
    # name: (request kwargs, expected status, expected field or None)
    "text file as image": ({"files": {"image": b"just some text"}}, 400, "image"),
    "zero bytes": ({"files": {"image": b""}}, 400, "image"),
    "truncated jpeg": ({"files": {"image": jpeg_bytes()[:300]}}, 400, "image"),
    "tiff": ({"files": {"image": tiff_bytes()}}, 400, "image"),
    "decompression bomb": ({"files": {"image": bomb_png()}}, 413, "image"),
    "bad image among good ones": (
        {"files": [("images", png_bytes(8, 8)), ("images", b"garbage")]},
        400,
        "images[1]",
    ),
    "missing file field": ({"files": {"photo": png_bytes(8, 8)}}, 422, "image"),
    "text field instead of file": (
        {"data": {"image": "hello"}, "files": {"x": b"1"}},
        422,
        "image",
    ),
    "too many files": ({"files": [("images", png_bytes(4, 4))] * (MAX + 1)}, 422, "images"),
    "image and images together": (
        {"files": [("image", png_bytes(4, 4)), ("images", png_bytes(4, 4))]},
        422,
        "image",
    ),
    "invalid base64": ({"json": {"image": "not*base64!"}}, 422, "image"),
    "invalid base64 in a list": ({"json": {"images": ["AAAA", "%%%"]}}, 422, "images[1]"),
    "json without image": ({"json": {"picture": "AAAA"}}, 422, "picture"),
    "json with neither field": ({"json": {}}, 422, "body"),
    "json images not a list": ({"json": {"images": "AAAA"}}, 422, "images"),
    "empty images list": ({"json": {"images": []}}, 422, "images"),
    "too many json images": ({"json": {"images": ["AAAA"] * (MAX + 1)}}, 422, "images"),
    "malformed json": (
        {"content": b'{"image": ', "headers": {"content-type": "application/json"}},
        422,
        "body",
    ),
    "base64 of a non-image": (
        {"json": {"image": base64.b64encode(b"hello world").decode()}},
        400,
        "image",
    ),
    "plain text body": ({"content": b"hi", "headers": {"content-type": "text/plain"}}, 415, None),
    "no content type": ({"content": b"hi"}, 415, None),
    "body over the limit": ({"files": {"image": b"\0" * (10 * MIB + 1)}}, 413, None),
}


@pytest.mark.parametrize("name", BAD_REQUESTS)
def test_bad_predict_request(client: TestClient, good_photo: bytes, name: str) -> None:
    kwargs, status, field = BAD_REQUESTS[name]
    response = client.post("/predict", **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "detail"} and body["detail"]
    assert body.get("field") == field
    assert "Traceback" not in response.text and "/work" not in response.text
    # The service keeps answering good requests.
    assert client.post("/predict", files={"image": good_photo}).status_code == 200


TFSERVING_BAD = {
    "instances not a list": ({"instances": {"b64": "AAAA"}}, 422, "instances"),
    "empty instances": ({"instances": []}, 422, "instances"),
    "unknown instance form": ({"instances": [{"data": "AAAA"}]}, 422, "instances[0].data"),
    "invalid base64": ({"instances": [{"b64": "***"}]}, 422, "instances[0]"),
    "not an image": (
        {"instances": [{"bytes": {"b64": base64.b64encode(b"text").decode()}}]},
        400,
        "instances[0]",
    ),
    "too many instances": ({"instances": [{"b64": "AAAA"}] * (MAX + 1)}, 422, "instances"),
}


@pytest.mark.parametrize("name", TFSERVING_BAD)
def test_bad_tfserving_request(client: TestClient, good_photo: bytes, name: str) -> None:
    body, status, field = TFSERVING_BAD[name]
    response = client.post("/v1/models/mugs:predict", json=body)
    assert response.status_code == status, response.text
    assert response.json().get("field") == field
    good = {"instances": [{"b64": base64.b64encode(good_photo).decode()}]}
    assert client.post("/v1/models/mugs:predict", json=good).status_code == 200


def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    assert client.get("/nope").json()["error"] == "not_found"
    response = client.get("/predict")
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"


def test_url_safe_unpadded_and_data_url_base64_are_accepted(
    client: TestClient, good_photo: bytes
) -> None:
    standard = base64.b64encode(good_photo).decode()
    forms = [
        base64.urlsafe_b64encode(good_photo).decode().rstrip("="),
        "data:image/jpeg;base64," + standard,
        "\n".join(standard[i : i + 76] for i in range(0, len(standard), 76)),
    ]
    expected = client.post("/predict", json={"image": standard}).json()
    for text in forms:
        response = client.post("/predict", json={"image": text})
        assert response.status_code == 200
        assert response.json() == expected
