"""/explain and :explain: the heatmap's shape and range, that it follows the mug (a test photo
shrunk into one corner of a plain canvas) and mirrors with the photo, and bad input answered
as /predict answers it."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageOps

from tests.service.test_predict import assert_prediction


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def in_corner(photo: Path, corner: str) -> Image.Image:
    """The photo at half size in the top-left or bottom-right of a 64x64 canvas of its mean
    colour: the mug is then in that quadrant and nowhere else."""
    image = Image.open(photo).convert("RGB")
    mean = tuple(int(v) for v in np.asarray(image).reshape(-1, 3).mean(axis=0))
    canvas = Image.new("RGB", (64, 64), mean)
    canvas.paste(
        image.resize((32, 32), Image.Resampling.LANCZOS), (0, 0) if corner == "tl" else (32, 32)
    )
    return canvas


def centre_of_mass(heatmap: list[list[float]]) -> tuple[float, float]:
    """(row, column) in cells; the centre of an 8x8 map is (3.5, 3.5), also the answer for
    an empty map (no cell hidden lowered the answer's lead), which is in no quadrant."""
    values = np.asarray(heatmap)
    rows, cols = np.indices(values.shape)
    total = values.sum()
    if total == 0:
        return 3.5, 3.5
    return float((rows * values).sum() / total), float((cols * values).sum() / total)


def explain(client: TestClient, image: bytes) -> dict:
    response = client.post("/explain", files={"image": image})
    assert response.status_code == 200, response.text
    return response.json()


def test_explanation_is_the_prediction_plus_an_8x8_heatmap(
    client: TestClient, test_photos, model_dir: Path
) -> None:
    photo, label = test_photos[130]
    answer = explain(client, photo.read_bytes())
    heatmap = answer.pop("heatmap")
    prediction = client.post("/predict", files={"image": photo.read_bytes()}).json()
    assert answer == prediction and answer["index"] == label
    assert_prediction(answer, prediction["model_version"])
    values = np.asarray(heatmap)
    assert values.shape == (8, 8) and values.min() >= 0 and values.max() <= 1
    assert values.max() == pytest.approx(1, abs=0.02)  # scaled to its peak
    as_json = client.post("/explain", json={"image": base64.b64encode(photo.read_bytes()).decode()})
    assert as_json.json()["heatmap"] == heatmap


def test_heatmap_follows_the_mug_into_either_corner(client: TestClient, test_photos) -> None:
    photos = [photo for photo, _ in test_photos[::5]]  # 100 photos, every class
    hits = {"tl": 0, "br": 0}
    for photo in photos:
        for corner in hits:
            row, col = centre_of_mass(explain(client, png(in_corner(photo, corner)))["heatmap"])
            inside = row < 3.5 and col < 3.5 if corner == "tl" else row > 3.5 and col > 3.5
            hits[corner] += inside
    assert min(hits.values()) >= 0.9 * len(photos), hits


def test_flipping_the_photo_flips_the_heatmap(client: TestClient, test_photos) -> None:
    photos = [photo for photo, _ in test_photos[::25]]
    mirrored = 0
    for photo in photos:
        image = in_corner(photo, "tl")  # the mug top-left; flipped, top-right
        original = explain(client, png(image))["heatmap"]
        flipped = explain(client, png(ImageOps.mirror(image)))["heatmap"]
        _, col = centre_of_mass(original)
        _, flipped_col = centre_of_mass(flipped)
        closer = (
            np.abs(np.fliplr(original) - flipped).mean()
            < np.abs(np.asarray(original) - flipped).mean()
        )
        mirrored += col < 3.5 < flipped_col and closer
    assert mirrored >= 0.9 * len(photos), f"{mirrored} of {len(photos)}"


def test_tfserving_explain_shape(client: TestClient, test_photos) -> None:
    chosen = test_photos[::125]
    instances = [{"b64": base64.b64encode(p.read_bytes()).decode()} for p, _ in chosen]
    response = client.post("/v1/models/mugs:explain", json={"instances": instances})
    assert response.status_code == 200
    explanations = response.json()["explanations"]
    assert [e["classes"] for e in explanations] == [label for _, label in chosen]
    for explanation in explanations:
        assert set(explanation) == {"classes", "probabilities", "unknown", "heatmap"}
        assert explanation["unknown"] is False
        assert np.asarray(explanation["heatmap"]).shape == (8, 8)


@pytest.mark.parametrize(
    ("request_kwargs", "status", "code"),
    [
        ({"files": {"image": b"not an image"}}, 400, "not_an_image"),
        ({"files": [("images", b"a"), ("images", b"b")]}, 422, "invalid_request"),
        ({"json": {"image": "%%%"}}, 422, "invalid_request"),
        ({"json": {"images": ["aGVsbG8="]}}, 422, "invalid_request"),
        ({"content": b"raw", "headers": {"content-type": "text/plain"}}, 415, None),
    ],
)
def test_bad_input_is_answered_as_predict_answers_it(
    client: TestClient, request_kwargs: dict, status: int, code: str | None
) -> None:
    response = client.post("/explain", **request_kwargs)
    assert response.status_code == status, response.text
    if code:
        assert response.json()["error"] == code
    assert client.get("/health").status_code == 200
