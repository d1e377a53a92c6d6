"""The hostile-input corpus: every bad upload gets its 4xx and a JSON error, as a file and
as base64; odd but valid images get a normal prediction; the service keeps serving."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from service.model import UNKNOWN
from tests.conftest import MUG_LABELS as CLASS_NAMES
from tests.corpus import BAD_UPLOADS, ODD_BUT_VALID


def assert_json_error(response, status: int) -> None:
    assert response.status_code == status, response.text[:300]
    body = response.json()
    assert body["error"] and body["detail"]
    assert "Traceback" not in response.text


@pytest.fixture(scope="module")
def good_photo(test_photos) -> bytes:
    return test_photos[0][0].read_bytes()


@pytest.mark.parametrize("name", BAD_UPLOADS)
def test_bad_upload_as_file(client: TestClient, good_photo: bytes, name: str) -> None:
    data, status = BAD_UPLOADS[name]
    assert_json_error(client.post("/predict", files={"image": ("mug.jpg", data)}), status)
    assert client.post("/predict", files={"image": good_photo}).status_code == 200


@pytest.mark.parametrize("name", BAD_UPLOADS)
def test_bad_upload_as_base64(client: TestClient, name: str) -> None:
    data, status = BAD_UPLOADS[name]
    encoded = base64.b64encode(data).decode()
    if not data:
        status = 400  # empty base64 decodes to an empty upload
    assert_json_error(client.post("/predict", json={"image": encoded}), status)
    body = {"instances": [{"b64": encoded}]}
    assert_json_error(client.post("/v1/models/mugs:predict", json=body), status)


@pytest.mark.parametrize("name", ODD_BUT_VALID)
def test_odd_but_valid_images_are_classified(client: TestClient, name: str) -> None:
    response = client.post("/predict", files={"image": ("odd", ODD_BUT_VALID[name])})
    assert response.status_code == 200, response.text
    # None of them is a photo of a mug: "unknown" is as valid an answer as a mug.
    assert response.json()["label"] in (*CLASS_NAMES, UNKNOWN)


def test_fifty_megabyte_json_is_413(client: TestClient, good_photo: bytes) -> None:
    body = b'{"image": "' + b"A" * (50 * 1024 * 1024) + b'"}'
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert_json_error(response, 413)
    assert client.post("/predict", files={"image": good_photo}).status_code == 200


def test_deeply_nested_json_is_422(client: TestClient) -> None:
    for path in ("/predict", "/v1/models/mugs:predict"):
        body = b"[" * 50_000 + b"]" * 50_000
        response = client.post(path, content=body, headers={"content-type": "application/json"})
        assert_json_error(response, 422)
        nested = b'{"image": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001
        response = client.post(path, content=nested, headers={"content-type": "application/json"})
        assert_json_error(response, 422)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "image/jpeg",
        "application/x-www-form-urlencoded",
        "application/octet-stream",
    ],
)
def test_wrong_content_types_are_415(
    client: TestClient, good_photo: bytes, content_type: str
) -> None:
    response = client.post("/predict", content=good_photo, headers={"content-type": content_type})
    assert_json_error(response, 415)


def test_tfserving_route_wants_json(client: TestClient, good_photo: bytes) -> None:
    response = client.post("/v1/models/mugs:predict", files={"image": good_photo})
    assert_json_error(response, 415)


def test_multipart_with_empty_file_and_with_no_file(client: TestClient) -> None:
    assert_json_error(client.post("/predict", files={"image": ("empty.jpg", b"")}), 400)
    assert_json_error(client.post("/predict", data={"note": "no file"}, files={"x": b""}), 422)
    two = [("image", ("a.jpg", b"1")), ("image", ("b.jpg", b"2"))]
    assert_json_error(client.post("/predict", files=two), 422)


def test_malformed_multipart_is_400(client: TestClient) -> None:
    headers = {"content-type": "multipart/form-data"}  # no boundary
    assert_json_error(client.post("/predict", content=b"--x\r\n", headers=headers), 400)


def test_slow_requests_hit_the_time_limit_and_the_service_goes_on(model_dir) -> None:
    from PIL import Image

    from service.app import create_app
    from service.config import Settings
    from tests.corpus import encode

    big = encode(Image.new("RGB", (5000, 5000), (120, 130, 140)), "PNG")  # 25 Mpx, small file
    settings = Settings(model_dir=model_dir, request_timeout_s=0.001)
    with TestClient(create_app(settings)) as client:
        response = client.post("/predict", files={"image": big})
        assert_json_error(response, 503)
        assert response.json()["error"] == "timeout"
        assert client.get("/health").status_code == 200
