"""/predict, /health and the TF Serving routes over HTTP, on the real model and real photos."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from service.imaging import decode_image
from service.runtime import SAVED_MODEL_DIR, ModelMetadata, load_predictor
from service.schemas import Prediction, TFServingResponse
from tests.conftest import MUG_LABELS as CLASS_NAMES
from tests.conftest import MUG_SIZE
from training.pipeline import PARITY_MAX_PROBABILITY_GAP


def b64(photo: Path) -> str:
    return base64.b64encode(photo.read_bytes()).decode()


@pytest.fixture(scope="module")
def sample(test_photos: list[tuple[Path, int]]) -> list[tuple[Path, int]]:
    """Three photos of each class, interleaved so order mistakes show."""
    by_class = [[p for p in test_photos if p[1] == label][:3] for label in range(4)]
    return [by_class[label][i] for i in range(3) for label in range(4)]


def direct_probabilities(model_dir: Path, photos: list[Path]) -> np.ndarray:
    """The model the service runs (LiteRT, int8 when its parity passed), called directly on
    the training pipeline's tensors; checked against the SavedModel within the parity bound."""
    images = np.stack([decode_image(photo.read_bytes(), MUG_SIZE) for photo in photos])
    served = load_predictor(model_dir).predict(images)
    signature = tf.saved_model.load(str(model_dir / SAVED_MODEL_DIR)).signatures["serving_default"]
    saved_model = signature(images=tf.constant(images, tf.float32))["probabilities"].numpy()
    np.testing.assert_allclose(served, saved_model, atol=PARITY_MAX_PROBABILITY_GAP)
    return served


def assert_prediction(body: dict, version: str) -> None:
    assert set(body) == {"label", "index", "probabilities", "novelty", "model_version"}
    Prediction.model_validate(body)  # the answer is what the documented model says
    assert list(body["probabilities"]) == list(CLASS_NAMES)
    assert sum(body["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    novelty = body["novelty"]
    if body["label"] == "unknown":
        assert body["index"] is None and novelty["score"] > novelty["threshold"]
    else:
        assert body["label"] == CLASS_NAMES[body["index"]]
        assert body["index"] == int(np.argmax(list(body["probabilities"].values())))
        assert novelty["score"] <= novelty["threshold"]
    assert body["model_version"] == version


@pytest.fixture(scope="module")
def version(model_dir: Path) -> str:
    return ModelMetadata.read(model_dir).model_version


def test_health_reports_the_model_version(client: TestClient, version: str) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok", "model_version": version, "api_key_required": False, "feedback": False
    }  # fmt: skip


def test_health_is_503_until_the_model_is_loaded(model_dir: Path) -> None:
    app = create_app(Settings(model_dir=model_dir))
    not_started = TestClient(app)  # no `with`: the lifespan has not run
    response = not_started.get("/health")
    assert response.status_code == 503 and response.json()["status"] == "loading"
    photo = b"\xff\xd8"  # never decoded: the model check comes first
    assert not_started.post("/predict", files={"image": photo}).status_code == 503


def test_multipart_single_image(client: TestClient, sample, version: str) -> None:
    photo, label = sample[1]
    response = client.post("/predict", files={"image": photo.read_bytes()})
    assert response.status_code == 200
    assert_prediction(response.json(), version)
    assert response.json()["index"] == label


def test_json_single_image(client: TestClient, sample, version: str) -> None:
    photo, label = sample[2]
    response = client.post("/predict", json={"image": b64(photo)})
    assert response.status_code == 200
    assert_prediction(response.json(), version)
    assert response.json()["index"] == label


def test_batch_forms_keep_order(client: TestClient, sample, version: str, model_dir: Path) -> None:
    photos = [photo for photo, _ in sample]
    expected = direct_probabilities(model_dir, photos)
    multipart = client.post("/predict", files=[("images", p.read_bytes()) for p in photos])
    as_json = client.post("/predict", json={"images": [b64(p) for p in photos]})
    for response in (multipart, as_json):
        assert response.status_code == 200
        predictions = response.json()["predictions"]
        assert len(predictions) == len(photos)
        for prediction, row in zip(predictions, expected, strict=True):
            assert_prediction(prediction, version)
            np.testing.assert_allclose(list(prediction["probabilities"].values()), row, atol=1e-5)
    assert [p["index"] for p in multipart.json()["predictions"]] == [lbl for _, lbl in sample]


def test_every_route_agrees_with_the_model_called_directly(
    client: TestClient, sample, model_dir: Path
) -> None:
    photo, _ = sample[0]
    expected = direct_probabilities(model_dir, [photo])[0]
    multipart = client.post("/predict", files={"image": photo.read_bytes()}).json()
    as_json = client.post("/predict", json={"image": b64(photo)}).json()
    tfserving = client.post(
        "/v1/models/mugs:predict", json={"instances": [{"bytes": {"b64": b64(photo)}}]}
    ).json()
    assert multipart["probabilities"] == as_json["probabilities"]
    assert list(multipart["probabilities"].values()) == tfserving["predictions"][0]["probabilities"]
    np.testing.assert_allclose(list(multipart["probabilities"].values()), expected, atol=1e-5)


def test_tfserving_predict_accepts_all_three_instance_forms(client: TestClient, sample) -> None:
    photos = [photo for photo, _ in sample[:3]]
    instances = [
        {"bytes": {"b64": b64(photos[0])}},
        {"b64": b64(photos[1])},
        {"image_bytes": {"b64": b64(photos[2])}},
    ]
    response = client.post("/v1/models/mugs:predict", json={"instances": instances})
    assert response.status_code == 200
    TFServingResponse.model_validate(response.json())
    predictions = response.json()["predictions"]
    assert [p["classes"] for p in predictions] == [label for _, label in sample[:3]]
    for prediction in predictions:
        assert len(prediction["probabilities"]) == 4
        assert sum(prediction["probabilities"]) == pytest.approx(1, abs=1e-5)
        assert prediction["classes"] == int(np.argmax(prediction["probabilities"]))


def test_tfserving_model_status(client: TestClient, version: str) -> None:
    response = client.get("/v1/models/mugs")
    assert response.status_code == 200
    assert response.json() == {
        "model_version_status": [
            {
                "version": version,
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


def test_openapi_documents_both_input_forms(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    content = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(content)
    parameters = schema["paths"]["/predict"]["post"]["parameters"]
    assert {(p["name"], p["in"]) for p in parameters} == {("version", "query"), ("label", "query")}
    answers = schema["paths"]["/predict"]["post"]["responses"]["200"]["content"]
    assert "Prediction" in str(answers["application/json"]["schema"])
    assert "/v1/models/{model_name}:predict" in schema["paths"]
    assert client.get("/docs").status_code == 200


def test_openapi_examples_are_made_from_the_loaded_model(client: TestClient, version: str) -> None:
    schema = client.get("/openapi.json").json()
    clear, refused = schema["components"]["schemas"]["Prediction"]["examples"]
    assert list(clear["probabilities"]) == list(CLASS_NAMES) and clear["label"] == "black"
    assert clear["model_version"] == refused["model_version"] == version
    assert refused["label"] == "unknown" and refused["index"] is None
    threshold = client.app.state.registry.default.model.unknown_threshold
    assert refused["novelty"]["threshold"] == threshold < refused["novelty"]["score"]
    assert "white, black, blue, transparent" in schema["info"]["description"]


def test_another_model_name_is_not_found(client: TestClient) -> None:
    response = client.post("/v1/models/flowers:predict", json={"instances": [{"b64": "AAAA"}]})
    assert response.status_code == 404 and response.json()["error"] == "model_not_found"
    assert client.get("/v1/models/flowers").status_code == 404
