"""The `unknown` answer over HTTP on the real model: images that are none of the four mugs
(made here, independently of the training's own generated images) are answered unknown, the
mug photos are not; UNKNOWN_THRESHOLD overrides or turns it off; the TF Serving field; the
count in /metrics."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw, ImageFont

from service.app import create_app
from service.config import Settings
from service.runtime import ModelMetadata
from tests.conftest import MUG_LABELS as CLASS_NAMES


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def non_mug_images() -> dict[str, bytes]:
    """Noise, flat colours, text and checkerboards, at phone-photo and thumbnail sizes."""
    rng = np.random.default_rng(2024)
    images = {
        f"noise-{i}": Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        for i, size in enumerate((64, 300, 1024))
    }
    for colour in ((255, 255, 255), (0, 0, 0), (128, 128, 128), (200, 30, 40), (20, 120, 60)):
        images[f"flat-{colour}"] = Image.new("RGB", (400, 300), colour)
    for i, (ink, paper) in enumerate((("black", "white"), ("navy", "lightyellow"))):
        text = Image.new("RGB", (480, 480), paper)
        font = ImageFont.load_default(size=36)
        for row in range(8):
            ImageDraw.Draw(text).text((10, 10 + 58 * row), "Meeting at 10:30", fill=ink, font=font)
        images[f"text-{i}"] = text
    for cell in (4, 16, 60):
        y, x = np.mgrid[0:480, 0:480] // cell
        board = np.where(((x + y) % 2 == 0)[..., None], 255, 0).astype(np.uint8)
        images[f"checkerboard-{cell}"] = Image.fromarray(np.repeat(board, 3, axis=2))
    return {name: png(image) for name, image in images.items()}


@pytest.fixture(scope="module")
def threshold(model_dir: Path) -> float:
    novelty = ModelMetadata.read(model_dir).novelty
    assert novelty is not None, "the bundled model must carry its unknown threshold"
    return novelty["threshold"]


@pytest.fixture(scope="module")
def client_with(model_dir: Path) -> Iterator:
    """A client on the real model with other settings; closed at the end of the module."""
    clients: list[TestClient] = []

    def make(**settings) -> TestClient:
        client = TestClient(create_app(Settings(model_dir=model_dir, **settings)))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.mark.parametrize("name", list(non_mug_images()))
def test_generated_non_mug_images_are_answered_unknown(
    client: TestClient, name: str, threshold: float
) -> None:
    response = client.post("/predict", files={"image": (f"{name}.png", non_mug_images()[name])})
    assert response.status_code == 200
    body = response.json()
    assert body["label"] == "unknown" and body["index"] is None, body
    assert list(body["probabilities"]) == list(CLASS_NAMES)
    assert sum(body["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert body["novelty"]["threshold"] == threshold
    assert body["novelty"]["score"] > threshold


def test_the_test_mug_photos_keep_their_label(client: TestClient, test_photos) -> None:
    """The bundled model's target: at least 99% of test/ keep their correct label."""
    right = 0
    for start in range(0, len(test_photos), 64):
        chunk = test_photos[start : start + 64]
        files = [("images", (p.name, p.read_bytes(), "image/jpeg")) for p, _ in chunk]
        response = client.post("/predict", files=files)
        assert response.status_code == 200
        labels = [p["label"] for p in response.json()["predictions"]]
        truths = [CLASS_NAMES[label] for _, label in chunk]
        right += sum(map(str.__eq__, labels, truths))
    assert right / len(test_photos) >= 0.99


def test_threshold_override_and_off(client_with, test_photos) -> None:
    mug = test_photos[0][0].read_bytes()
    noise = non_mug_images()["noise-1"]
    everything_unknown = client_with(unknown_threshold=0.0)
    body = everything_unknown.post("/predict", files={"image": ("m.jpg", mug)}).json()
    assert body["label"] == "unknown" and body["index"] is None
    assert body["novelty"]["threshold"] == 0.0 and body["novelty"]["score"] > 0
    off = client_with(unknown_threshold="off")
    for image in (mug, noise):
        body = off.post("/predict", files={"image": ("x.png", image)}).json()
        assert body["label"] in CLASS_NAMES and body["index"] == CLASS_NAMES.index(body["label"])
        assert body["novelty"]["threshold"] is None and body["novelty"]["score"] >= 0


def test_tensorflow_serving_route_keeps_classes_and_adds_unknown(
    client: TestClient, test_photos
) -> None:
    instances = [
        {"b64": base64.b64encode(test_photos[0][0].read_bytes()).decode()},
        {"b64": base64.b64encode(non_mug_images()["checkerboard-16"]).decode()},
    ]
    response = client.post("/v1/models/mugs:predict", json={"instances": instances})
    assert response.status_code == 200
    mug, board = response.json()["predictions"]
    assert mug["unknown"] is False and mug["classes"] == test_photos[0][1]
    assert board["unknown"] is True and board["classes"] in range(4)
    assert set(board) == {"classes", "probabilities", "unknown"}


def test_metrics_count_unknown_answers(client: TestClient) -> None:
    def unknown_count() -> float:
        text = client.get("/metrics").text
        pattern = r'^classifier_answers_total\{label="unknown",version="[^"]*"\} ([\d.e+]+)$'
        return sum(float(count) for count in re.findall(pattern, text, re.M))

    before = unknown_count()
    files = [("images", (f"{n}.png", data)) for n, data in list(non_mug_images().items())[:3]]
    assert client.post("/predict", files=files).status_code == 200
    assert unknown_count() == before + 3
