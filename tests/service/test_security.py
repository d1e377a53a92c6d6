"""Optional API keys, CORS off by default, and no route that reads a client-chosen path."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings

KEYS = "first-key-123,second-key-456"
VERTEX_PREDICT = "/vertex/predict"  # AIP_PREDICT_ROUTE: Vertex AI's own name for :predict


@pytest.fixture(scope="module")
def keyed_client(model_dir: Path) -> Iterator[TestClient]:
    settings = Settings(model_dir=model_dir, api_keys=KEYS, aip_predict_route=VERTEX_PREDICT)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def photo(test_photos) -> bytes:
    return test_photos[0][0].read_bytes()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer first-key-12"},  # a prefix of a valid key
        {"X-API-Key": "second-key-4567"},
        {"Authorization": "Basic Zmlyc3Qta2V5LTEyMw=="},
    ],
)
def test_missing_or_wrong_key_is_401_without_hints(
    keyed_client: TestClient, photo: bytes, headers: dict[str, str]
) -> None:
    for path, kwargs in [
        ("/predict", {"files": {"image": photo}}),
        ("/explain", {"files": {"image": photo}}),
        ("/v1/models/mugs:predict", {"json": {"instances": [{"b64": "AAAA"}]}}),
        ("/v1/models/mugs:explain", {"json": {"instances": [{"b64": "AAAA"}]}}),
        (VERTEX_PREDICT, {"json": {"instances": [{"b64": "AAAA"}]}}),
    ]:
        response = keyed_client.post(path, headers=headers, **kwargs)
        assert response.status_code == 401, path
        assert response.json() == {"error": "unauthorized", "detail": "missing or invalid API key"}
        assert response.headers["www-authenticate"] == "Bearer"
        assert "key-" not in response.text


@pytest.mark.parametrize("path", ["/v2/models/mugs/infer", "/v2/models/mugs/versions/1/infer"])
def test_open_inference_routes_refuse_without_a_key_in_their_protocols_form(
    keyed_client: TestClient, path: str
) -> None:
    response = keyed_client.post(path, json={"inputs": []}, headers={"X-API-Key": "nope"})
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"error": "missing or invalid API key", "code": "unauthorized"}


@pytest.mark.parametrize(
    "headers", [{"Authorization": "Bearer first-key-123"}, {"X-API-Key": "second-key-456"}]
)
def test_valid_key_in_either_header_is_accepted(
    keyed_client: TestClient, photo: bytes, headers: dict[str, str]
) -> None:
    response = keyed_client.post("/predict", headers=headers, files={"image": photo})
    assert response.status_code == 200
    response = keyed_client.post("/explain", headers=headers, files={"image": photo})
    assert response.status_code == 200 and len(response.json()["heatmap"]) == 8
    instances = {"instances": [{"b64": base64.b64encode(photo).decode()}]}
    response = keyed_client.post(VERTEX_PREDICT, headers=headers, json=instances)
    assert response.status_code == 200 and len(response.json()["predictions"]) == 1


def test_health_stays_open_with_keys(keyed_client: TestClient) -> None:
    assert keyed_client.get("/health").status_code == 200


def test_without_keys_the_service_is_open_and_says_so(
    model_dir: Path, photo: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(create_app(Settings(model_dir=model_dir))) as client:
        assert client.post("/predict", files={"image": photo}).status_code == 200
    assert "API_KEYS is not set" in caplog.text


def test_cors_is_off_unless_configured(client: TestClient, model_dir: Path) -> None:
    preflight = {"Origin": "https://example.org", "Access-Control-Request-Method": "POST"}
    response = client.options("/predict", headers=preflight)
    assert "access-control-allow-origin" not in response.headers
    settings = Settings(model_dir=model_dir, cors_origins="https://example.org")
    with TestClient(create_app(settings)) as cors_client:
        response = cors_client.options("/predict", headers=preflight)
        assert response.headers["access-control-allow-origin"] == "https://example.org"


def test_no_route_takes_a_path_from_the_client(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        # The only path parameters name a model, a version or a label, each compared with
        # what is served, never used as a path.
        bare = path
        for name in ("{model_name}", "{version}", "{label}"):
            bare = bare.replace(name, "")
        assert "{" not in bare, path
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                assert (
                    "path" not in parameter["name"].lower()
                    and "file" not in parameter["name"].lower()
                )
    for name in ("..", "..%2F..%2Fetc", "mugs%00", "/etc/passwd"):
        response = client.get(f"/v1/models/{name}")
        assert response.status_code == 404, name
