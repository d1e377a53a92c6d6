"""The service's input contract: any uploaded image -> the square RGB array the network sees
(its side is the model's input size, from the model folder's metadata).

Training reads its photos through `decode_image` too, so a model is only ever trained on
exactly what it will be served. Errors are a small set of types; the HTTP layer maps them
to status codes.
"""

from __future__ import annotations

import io
import struct
import warnings

import numpy as np
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

# HEIF is what iPhones save (HEIC), through pillow-heif; AVIF, from newer Android phones and
# browsers, Pillow reads itself.
ACCEPTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "HEIF", "AVIF")
pillow_heif.register_heif_opener()
DEFAULT_MAX_PIXELS = 50_000_000

# Alpha is composited onto white, the background a browser shows behind a transparent image.
_BACKGROUND = (255, 255, 255)
# Pillow raises these (besides OSError) on malformed files.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError)


class ImageError(ValueError):
    """An upload that cannot become a model input; the message is safe to show a client."""


class NotAnImageError(ImageError):
    """The bytes are not an image in any format Pillow knows."""


class UnsupportedFormatError(ImageError):
    """A real image, but in a format the service does not accept (TIFF, ICO, ...)."""


class CorruptImageError(ImageError):
    """An accepted format whose data is truncated or damaged."""


class ImageTooLargeError(ImageError):
    """More pixels than allowed: refused from the header, before any decoding."""


def decode_image(data: bytes, size: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode, orient, convert to RGB and fit to a `size` square; returns uint8 [size, size, 3].

    Non-square images are centre-cropped to a square (no distortion) before resizing
    (`fit_image`); an RGB JPEG already `size` square passes through unchanged.
    """
    if not data:
        raise NotAnImageError("the upload is empty (0 bytes)")
    image = _open(data)
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} pixels; at most {max_pixels} pixels are accepted"
        )
    try:
        # JPEG can decode at 1/2, 1/4 or 1/8 scale directly: big photos cost little.
        image.draft("RGB", (size, size))
        image.load()
        return fit_image(ImageOps.exif_transpose(image), size)
    except _DECODE_ERRORS as error:
        raise CorruptImageError(f"the {image.format} image is truncated or corrupt") from error


def fit_image(image: Image.Image, size: int) -> np.ndarray:
    """A decoded image of any mode and size -> uint8 [size, size, 3]: RGB, centre-cropped to
    a square (no distortion), resized. Every model input, served or trained on, passes here."""
    image = _to_rgb(image)
    if image.size != (size, size):  # the same size would be an exact copy
        image = ImageOps.fit(image, (size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def _open(data: bytes) -> Image.Image:
    """Identify the format from the header alone; refuse anything not accepted."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageTooLargeError("image has too many pixels to decode safely") from error
    except UnidentifiedImageError:
        pass
    except _DECODE_ERRORS as error:
        raise CorruptImageError("the image header is corrupt") from error
    other_format = _identify_any_format(data)
    if other_format:
        accepted = ", ".join(ACCEPTED_FORMATS)
        raise UnsupportedFormatError(f"{other_format} images are not accepted; send {accepted}")
    raise NotAnImageError("the upload is not a recognisable image")


def _identify_any_format(data: bytes) -> str | None:
    """Name the format of an image we refuse, so the error can say what was sent."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.format
    except (UnidentifiedImageError, Image.DecompressionBombError, *_DECODE_ERRORS):
        return None


def _to_rgb(image: Image.Image) -> Image.Image:
    """Bring every mode a phone or browser produces to 8-bit RGB."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        # 16-bit greyscale: keep the high byte instead of clipping everything to white.
        pixels = np.asarray(image, dtype=np.uint32) >> 8
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    ):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_BACKGROUND, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")
