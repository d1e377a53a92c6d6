"""The input contract: any image in, square RGB uint8 at the asked size out; bad input, a
typed error."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.imaging import (
    CorruptImageError,
    ImageTooLargeError,
    NotAnImageError,
    UnsupportedFormatError,
    decode_image,
)
from tests.conftest import MUG_SIZE


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def gradient(width: int, height: int) -> Image.Image:
    """An image whose left and right halves differ, so crops and flips are visible."""
    x = np.linspace(0, 255, width, dtype=np.uint8)
    rgb = np.stack(
        [
            np.tile(x, (height, 1)),
            np.full((height, width), 80, np.uint8),
            np.tile(x[::-1], (height, 1)),
        ],
        axis=-1,
    )
    return Image.fromarray(rgb, "RGB")


def test_dataset_photo_passes_through_unchanged(test_photos: list[tuple[Path, int]]) -> None:
    photo, _ = test_photos[0]
    decoded = decode_image(photo.read_bytes(), MUG_SIZE)
    assert decoded.shape == (MUG_SIZE, MUG_SIZE, 3) and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, np.asarray(Image.open(photo).convert("RGB")))


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [
        ("RGB", "PNG"),
        ("RGBA", "PNG"),
        ("L", "PNG"),
        ("LA", "PNG"),
        ("P", "PNG"),
        ("P", "GIF"),
        ("CMYK", "JPEG"),
        ("L", "JPEG"),
        ("RGB", "WEBP"),
        ("RGB", "BMP"),
        ("1", "BMP"),
    ],
)
def test_every_mode_and_format_becomes_rgb(mode: str, fmt: str) -> None:
    data = encode(gradient(300, 200).convert(mode), fmt)
    decoded = decode_image(data, MUG_SIZE)
    assert decoded.shape == (MUG_SIZE, MUG_SIZE, 3) and decoded.dtype == np.uint8


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_phone_formats_decode_like_the_same_photo_as_png(fmt: str) -> None:
    """HEIC (iPhones) and AVIF (newer Android phones, browsers), really encoded here."""
    photo = gradient(1200, 900)
    data = encode(photo, fmt, quality=90)
    assert data[4:12] in (b"ftypheic", b"ftypavif")
    decoded = decode_image(data, MUG_SIZE).astype(int)
    reference = decode_image(encode(photo, "PNG"), MUG_SIZE).astype(int)
    assert decoded.shape == (MUG_SIZE, MUG_SIZE, 3)
    assert np.abs(decoded - reference).mean() < 4


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_phone_formats_over_the_pixel_limit_are_refused_before_decoding(fmt: str) -> None:
    data = encode(gradient(1200, 900), fmt, quality=50)
    with pytest.raises(ImageTooLargeError, match="1200x900"):
        decode_image(data, MUG_SIZE, max_pixels=1000 * 900)


def test_transparent_pixels_become_white() -> None:
    image = Image.new("RGBA", (80, 80), (0, 0, 0, 0))
    decoded = decode_image(encode(image, "PNG"), MUG_SIZE)
    assert (decoded == 255).all()


def test_sixteen_bit_greyscale_keeps_its_tones() -> None:
    values = np.linspace(0, 65535, 100 * 100).reshape(100, 100).astype(np.uint16)
    decoded = decode_image(encode(Image.fromarray(values), "PNG"), MUG_SIZE)
    assert decoded.min() < 10 and decoded.max() > 245  # not clipped to white


def test_non_square_is_centre_cropped_not_squashed() -> None:
    wide = gradient(256, 64)  # the centre 64 columns of a 256-wide ramp
    decoded = decode_image(encode(wide, "PNG"), MUG_SIZE).astype(int)
    red = decoded[..., 0].mean(axis=0)
    assert 90 < red[0] < 110 and 145 < red[-1] < 165  # middle of the ramp, not 0..255


def test_exif_orientation_is_applied() -> None:
    upright = gradient(64, 64)
    rotated = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated; viewers turn it 90 degrees clockwise
    turned = decode_image(encode(rotated, "JPEG", quality=95, exif=exif), MUG_SIZE)
    plain = decode_image(encode(upright, "JPEG", quality=95), MUG_SIZE)
    assert np.abs(turned.astype(int) - plain.astype(int)).mean() < 4


def test_large_photo_is_downscaled() -> None:
    decoded = decode_image(encode(gradient(4000, 3000), "JPEG"), MUG_SIZE)
    assert decoded.shape == (MUG_SIZE, MUG_SIZE, 3)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", NotAnImageError),
        (b"hello, I am a text file", NotAnImageError),
        (b"<html><body>not an image</body></html>", NotAnImageError),
    ],
)
def test_non_images_are_refused(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_image(data, MUG_SIZE)


def test_tiff_is_an_unsupported_format() -> None:
    with pytest.raises(UnsupportedFormatError, match="TIFF"):
        decode_image(encode(gradient(32, 32), "TIFF"), MUG_SIZE)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_images_are_corrupt(fmt: str) -> None:
    data = encode(gradient(200, 200), fmt)
    with pytest.raises(CorruptImageError):
        decode_image(data[: len(data) // 2], MUG_SIZE)


def test_pixel_limit_is_checked_before_decoding() -> None:
    data = encode(gradient(400, 300), "PNG")
    with pytest.raises(ImageTooLargeError, match="400x300"):
        decode_image(data, MUG_SIZE, max_pixels=100_000)
