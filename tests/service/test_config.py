"""Settings come from the environment; Vertex AI's variables take effect."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "AIP_HTTP_PORT", "MODEL_RUNTIME", "MAX_BATCH_IMAGES"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert (settings.host, settings.port, settings.model_runtime) == ("0.0.0.0", 8080, "litert")
    assert settings.max_upload_bytes == 10 * 1024 * 1024 and settings.max_batch_images == 64


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9000")
    monkeypatch.setenv("MAX_BATCH_IMAGES", "8")
    monkeypatch.setenv("MODEL_RUNTIME", "tensorflow")
    settings = Settings()
    assert (settings.port, settings.max_batch_images, settings.model_runtime) == (
        9000,
        8,
        "tensorflow",
    )
    monkeypatch.setenv("AIP_HTTP_PORT", "7080")  # Vertex AI's port wins over $PORT
    assert Settings().port == 7080


def test_invalid_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_RUNTIME", "onnx")
    with pytest.raises(ValueError, match="model_runtime"):
        Settings()


def test_vertex_ai_routes(model_dir: Path, test_photos) -> None:
    settings = Settings(
        model_dir=model_dir, aip_health_route="/vertex/health", aip_predict_route="/vertex/predict"
    )
    photo, label = test_photos[0]
    instances = {"instances": [{"b64": base64.b64encode(photo.read_bytes()).decode()}]}
    with TestClient(create_app(settings)) as client:
        assert client.get("/vertex/health").json()["status"] == "ok"
        response = client.post("/vertex/predict", json=instances)
        assert response.status_code == 200
        assert response.json()["predictions"][0]["classes"] == label
