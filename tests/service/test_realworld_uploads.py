"""Photos as phones and browsers send them: every test photo upscaled to 512x512 and
re-encoded five ways is classified like the original 64x64 photo."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

UPLOAD_SIZE = 512
BATCH = 50


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def exif_rotated_jpeg(image: Image.Image) -> bytes:
    """Stored turned on its side with an EXIF orientation tag, as phone cameras do."""
    exif = Image.Exif()
    exif[0x0112] = 6  # the viewer must rotate 90 degrees clockwise
    return _save(image.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=85, exif=exif)


ENCODINGS: dict[str, Callable[[Image.Image], bytes]] = {
    "jpeg-q85": lambda image: _save(image, "JPEG", quality=85),
    "png": lambda image: _save(image, "PNG", compress_level=1),
    "rgba-png": lambda image: _save(image.convert("RGBA"), "PNG", compress_level=1),
    "webp": lambda image: _save(image, "WEBP", quality=90, method=0),
    "exif-rotated-jpeg": exif_rotated_jpeg,
}


def classify(client: TestClient, blobs: list[bytes]) -> list[int]:
    labels: list[int] = []
    for start in range(0, len(blobs), BATCH):
        files = [("images", blob) for blob in blobs[start : start + BATCH]]
        response = client.post("/predict", files=files)
        assert response.status_code == 200, response.text
        labels += [p["index"] for p in response.json()["predictions"]]
    return labels


@pytest.fixture(scope="module")
def originals(client: TestClient, test_photos: list[tuple[Path, int]]) -> list[int]:
    return classify(client, [photo.read_bytes() for photo, _ in test_photos])


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_upscaled_reencoded_photos_keep_their_class(
    client: TestClient, test_photos: list[tuple[Path, int]], originals: list[int], encoding: str
) -> None:
    encode = ENCODINGS[encoding]
    blobs = [
        encode(
            Image.open(photo).convert("RGB").resize((UPLOAD_SIZE,) * 2, Image.Resampling.BICUBIC)
        )
        for photo, _ in test_photos
    ]
    labels = classify(client, blobs)
    agreement = sum(a == b for a, b in zip(labels, originals, strict=True)) / len(originals)
    assert agreement >= 0.97, f"{encoding}: {agreement:.1%} classified like the original"


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_phone_formats_are_classified_like_the_original(
    client: TestClient, test_photos: list[tuple[Path, int]], originals: list[int], fmt: str
) -> None:
    """HEIC as an iPhone saves it and AVIF as newer Android phones do, encoded here for real
    (two photos of each class: HEIC encoding takes a while), sent through /predict."""
    chosen = list(range(0, len(test_photos), len(test_photos) // 8))[:8]
    blobs = [
        _save(
            Image.open(test_photos[i][0])
            .convert("RGB")
            .resize((256, 256), Image.Resampling.BICUBIC),
            fmt,
            quality=85,
        )
        for i in chosen
    ]
    assert all(blob[4:12] in (b"ftypheic", b"ftypavif") for blob in blobs)
    assert classify(client, blobs) == [originals[i] for i in chosen]
