"""Images of anything but the four mugs: what the network is taught to meet with no preference
among the four (outlier exposure), and what the `unknown` answer is checked against.

Nothing is downloaded. Every image comes from one of three sources:
- **Generated** here from a seed (`generated`): white and smooth noise, flat colours, linear
  and radial gradients, shapes on a background, text, checkerboards and stripes.
- **Sample photos shipped inside installed packages** (`photo_crops`): scikit-image's
  `skimage/data` (an astronaut, a cat, a coffee cup, a rocket, coins, bricks, grass, a
  page of text, ...) for training; scikit-learn's `sklearn/datasets/images` (a Chinese temple,
  a flower) and matplotlib's `mpl-data/sample_data` (Grace Hopper, a gift pack, a logo) for
  validation. Random square crops, from a fifth of the photo up to all of it, as a phone
  photo of part of the scene would be.
- **The photos without their subject** (`background_crops`): their four corners, a quarter of
  the side each (the table and the wall behind a mug), enlarged as if the photo had missed
  it. Only where the corners are background (`corners_are_background`): in photos the
  subject fills, as most photo collections' do, the corners are the subject itself, and
  taught as "none of these" they would teach the model to refuse its own classes.

Training and validation never share a source photo or a seed: the validation images stand in
for the everyday photos a user may send, which the network has never seen. The unknown
threshold is fitted against a third set, fresh draws from the training sources with a seed of
their own (`threshold_non_mugs`), so the validation figure stays a measure.
"""

from __future__ import annotations

import importlib.resources
import string
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from service.imaging import fit_image

PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif")
CROPS_PER_PHOTO = 100
SMALLEST_CROP = 0.2  # of the photo's shorter side
# Corners are background when their texture is under this share of the photo centre's: the
# mug photos' corners measure 0.31 (a plain table and wall), the flower photos' 0.84 (petals
# and leaves to the edges).
PLAIN_CORNERS = 0.5


def training_photos() -> list[Path]:
    """scikit-image's sample photos (installed with the `train` extra)."""
    return _photos_in(importlib.resources.files("skimage") / "data")


def validation_photos() -> list[Path]:
    """scikit-learn's and matplotlib's sample photos: none of them is a training photo."""
    import matplotlib

    sklearn_images = importlib.resources.files("sklearn.datasets") / "images"
    return _photos_in(sklearn_images) + _photos_in(Path(matplotlib.get_data_path(), "sample_data"))


def corner_texture(images: np.ndarray) -> float:
    """The median over `images` of their corners' texture (the grey level's spread in each
    corner, a quarter of the side) over their centre's (the same area in the middle)."""
    grey = images.astype(np.float32).mean(axis=-1)
    size = grey.shape[1]
    side, middle = size // 4, slice(size // 2 - size // 8, size // 2 + size // 8)
    corners = [
        grey[:, rows, cols].std(axis=(1, 2))
        for rows in (slice(0, side), slice(-side, None))
        for cols in (slice(0, side), slice(-side, None))
    ]
    centre = grey[:, middle, middle].std(axis=(1, 2))
    return float(np.median(np.mean(corners, axis=0) / np.maximum(centre, 1.0)))


def corners_are_background(images: np.ndarray) -> bool:
    """Whether the photos' corners are plain background (texture under PLAIN_CORNERS of the
    centre's), so they can stand for "none of these": a small subject on a plain ground."""
    return corner_texture(images) < PLAIN_CORNERS


def training_non_mugs(mug_images: np.ndarray, seed: int, corners: bool = True) -> np.ndarray:
    """The non-class images training shows the network: crops of scikit-image's photos,
    generated images and, with `corners`, the corners of `mug_images` (the training photos),
    uint8 [N, size, size, 3] at their size."""
    size = mug_images.shape[1]
    rng = np.random.default_rng(seed)
    parts = [
        photo_crops(training_photos(), CROPS_PER_PHOTO, seed, size),
        generated(1500, seed, size),
    ]
    if corners:
        found = background_crops(mug_images)
        parts.append(found[rng.choice(len(found), min(len(found), 1500), replace=False)])
    return np.concatenate(parts)


def validation_non_mugs(
    mug_images: np.ndarray, seed: int, corners: bool = True
) -> dict[str, np.ndarray]:
    """The non-mug validation images by source: crops of the validation photos, generated
    images from another seed, and the corners of `mug_images` (held-out photos)."""
    size = mug_images.shape[1]
    sources = {
        "photos": photo_crops(validation_photos(), CROPS_PER_PHOTO, seed + 7919, size),
        "generated": generated(400, seed + 7919, size),
    }
    if corners:
        sources["mug_photo_corners"] = background_crops(mug_images)
    return sources


def threshold_non_mugs(size: int, seed: int) -> np.ndarray:
    """Fresh draws from the training sources, which the unknown threshold is fitted against
    (`training.novelty`): crops of scikit-image's photos and generated images, from a seed
    apart from training's and validation's, so that neither the network nor the validation
    figure has seen them. uint8 [N, size, size, 3]."""
    seed += 4241
    return np.concatenate(
        [photo_crops(training_photos(), 30, seed, size), generated(600, seed, size)]
    )


def background_crops(images: np.ndarray) -> np.ndarray:
    """Each image's four corners, a quarter of its side each, fitted to the images' size."""
    size = images.shape[1]
    side = size // 4
    corners = [
        images[:, rows, cols]
        for rows in (slice(0, side), slice(-side, None))
        for cols in (slice(0, side), slice(-side, None))
    ]
    return np.stack([fit_image(Image.fromarray(crop), size) for group in corners for crop in group])


def photo_crops(paths: list[Path], per_photo: int, seed: int, size: int) -> np.ndarray:
    """`per_photo` random square crops of each photo, from SMALLEST_CROP of its shorter side to
    all of it, mirrored half the time, fitted to `size` square."""
    rng = np.random.default_rng(seed)
    crops = []
    for path in paths:
        with Image.open(path) as opened:
            photo = opened.convert("RGB")
        width, height = photo.size
        for _ in range(per_photo):
            side = int(min(width, height) * rng.uniform(SMALLEST_CROP, 1.0))
            left = int(rng.integers(0, width - side + 1))
            top = int(rng.integers(0, height - side + 1))
            crop = photo.crop((left, top, left + side, top + side))
            if rng.random() < 0.5:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            crops.append(fit_image(crop, size))
    return np.stack(crops)


def generated(count: int, seed: int, size: int) -> np.ndarray:
    """`count` generated images, the kinds of GENERATORS in turn, uint8 [N, size, size, 3]."""
    rng = np.random.default_rng(seed)
    kinds = list(GENERATORS.values())
    return np.stack([fit_image(kinds[i % len(kinds)](rng, size), size) for i in range(count)])


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def _white_noise(rng: np.random.Generator, size: int) -> Image.Image:
    pixels = rng.integers(0, 256, (size, size, 3 if rng.random() < 0.7 else 1))
    return Image.fromarray(np.repeat(pixels, 3 // pixels.shape[2], axis=2).astype(np.uint8))


def _smooth_noise(rng: np.random.Generator, size: int) -> Image.Image:
    cells = int(rng.integers(2, 17))
    small = rng.integers(0, 256, (cells, cells, 3)).astype(np.uint8)
    return Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)


def _flat(rng: np.random.Generator, size: int) -> Image.Image:
    return Image.new("RGB", (size, size), _colour(rng))


def _gradient(rng: np.random.Generator, size: int) -> Image.Image:
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    if rng.random() < 0.5:  # linear, at any angle
        angle = rng.uniform(0, 2 * np.pi)
        t = x * np.cos(angle) + y * np.sin(angle)
    else:  # radial, about any centre
        cx, cy = rng.uniform(0, 1, 2)
        t = np.hypot(x - cx, y - cy)
    t = (t - t.min()) / (np.ptp(t) + 1e-9)
    start, end = np.array(_colour(rng)), np.array(_colour(rng))
    return Image.fromarray((start + t[..., None] * (end - start)).astype(np.uint8))


def _shapes(rng: np.random.Generator, size: int) -> Image.Image:
    image = Image.new("RGB", (size * 2, size * 2), _colour(rng))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 7))):
        box = sorted(rng.integers(0, size * 2, 2)), sorted(rng.integers(0, size * 2, 2))
        xy = [box[0][0], box[1][0], box[0][1] + 4, box[1][1] + 4]
        shape = rng.integers(0, 4)
        if shape == 0:
            draw.ellipse(xy, fill=_colour(rng))
        elif shape == 1:
            draw.rectangle(xy, fill=_colour(rng))
        elif shape == 2:
            draw.polygon([tuple(p) for p in rng.integers(0, size * 2, (3, 2))], fill=_colour(rng))
        else:
            draw.line(xy, fill=_colour(rng), width=int(rng.integers(1, 10)))
    return image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.5))))


def _text(rng: np.random.Generator, size: int) -> Image.Image:
    image = Image.new("RGB", (size * 2, size * 2), _colour(rng))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=float(rng.integers(10, 40)))
    letters = np.array(list(string.ascii_letters + string.digits + "  "))
    for row in range(0, size * 2, int(font.size) + 2):
        line = "".join(rng.choice(letters, 24))
        draw.text((int(rng.integers(-20, 10)), row), line, fill=_colour(rng), font=font)
    return image


def _checkerboard(rng: np.random.Generator, size: int) -> Image.Image:
    cell = int(rng.integers(2, 17))
    y, x = np.mgrid[0:size, 0:size] // cell
    board = np.where(((x + y) % 2 == 0)[..., None], _colour(rng), _colour(rng)).astype(np.uint8)
    return Image.fromarray(board).rotate(float(rng.choice([0, rng.uniform(0, 90)])))


def _stripes(rng: np.random.Generator, size: int) -> Image.Image:
    y, x = np.mgrid[0:size, 0:size]
    angle, period = rng.uniform(0, np.pi), rng.uniform(3, 24)
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period)
    start, end = np.array(_colour(rng)), np.array(_colour(rng))
    return Image.fromarray((start + wave[..., None] * (end - start)).astype(np.uint8))


GENERATORS: dict[str, Callable[[np.random.Generator, int], Image.Image]] = {
    "white_noise": _white_noise,
    "smooth_noise": _smooth_noise,
    "flat_colour": _flat,
    "gradient": _gradient,
    "shapes": _shapes,
    "text": _text,
    "checkerboard": _checkerboard,
    "stripes": _stripes,
}


def _photos_in(folder: Path) -> list[Path]:
    return sorted(
        Path(str(path)) for path in folder.iterdir() if path.name.lower().endswith(PHOTO_SUFFIXES)
    )
