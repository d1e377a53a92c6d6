"""Datasets that are not the four mugs, made by the tests: the mug photos regrouped into two
classes, and generated pictures of seven. Each is a plain folder of class folders without a
test/ split, as a user's own photos would be."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tests.conftest import CLASS_FOLDERS, subprocess_env

# The mug photos regrouped: dark mugs against light ones.
TWO_CLASSES = {"dark": ("1black", "2blue"), "light": ("0white", "3transparant")}
# Generated pictures: a shape in a colour each, on a noisy background.
SEVEN_CLASSES = (
    "red circle", "green square", "blue triangle", "yellow bar", "purple ring", "grey cross",
    "orange dot",
)  # fmt: skip
_SHAPES = {
    "red circle": ((210, 40, 40), "ellipse"),
    "green square": ((40, 170, 60), "rectangle"),
    "blue triangle": ((40, 70, 210), "triangle"),
    "yellow bar": ((220, 200, 30), "bar"),
    "purple ring": ((140, 50, 160), "ring"),
    "grey cross": ((120, 120, 120), "cross"),
    "orange dot": ((240, 130, 20), "dot"),
}


def regrouped_mugs(data_dir: Path, root: Path, per_class: int = 6) -> Path:
    """`root/dark` and `root/light`, each with `per_class` mug photos of each of its mugs."""
    for label, folders in TWO_CLASSES.items():
        target = root / label
        target.mkdir(parents=True)
        for folder in folders:
            assert folder in CLASS_FOLDERS
            for photo in sorted((data_dir / "train" / folder).glob("*.jpg"))[:per_class]:
                (target / f"{folder}-{photo.name}").symlink_to(photo)
    return root


def shape_picture(label: str, rng: np.random.Generator, size: tuple[int, int]) -> bytes:
    """A PNG of `label`'s shape in its colour, at a random place and scale."""
    colour, shape = _SHAPES[label]
    width, height = size
    background = rng.integers(150, 255, 3)
    pixels = np.clip(background + rng.normal(0, 12, (height, width, 3)), 0, 255)
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    side = int(min(size) * rng.uniform(0.35, 0.6))
    left = int(rng.integers(0, width - side))
    top = int(rng.integers(0, height - side))
    box = (left, top, left + side, top + side)
    if shape == "ellipse":
        draw.ellipse(box, fill=colour)
    elif shape == "rectangle":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon(
            [(left, top + side), (left + side // 2, top), (left + side, top + side)], colour
        )
    elif shape == "bar":
        draw.rectangle((left, top + side // 3, left + side, top + 2 * side // 3), fill=colour)
    elif shape == "ring":
        draw.ellipse(box, outline=colour, width=max(3, side // 6))
    elif shape == "cross":
        draw.line((left, top, left + side, top + side), fill=colour, width=max(3, side // 6))
        draw.line((left, top + side, left + side, top), fill=colour, width=max(3, side // 6))
    else:
        draw.ellipse((left + side // 3, top + side // 3, left + 2 * side // 3, top + 2 * side // 3),
                     fill=colour)  # fmt: skip
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def generated_shapes(root: Path, per_class: int = 5, seed: int = 0) -> Path:
    """`root/<n>_<label>/` for each of SEVEN_CLASSES (numbered in that order): PNG pictures
    of assorted sizes."""
    rng = np.random.default_rng(seed)
    for number, label in enumerate(SEVEN_CLASSES):
        folder = root / f"{number}_{label}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            size = (int(rng.integers(60, 140)), int(rng.integers(60, 140)))
            (folder / f"{i}.png").write_bytes(shape_picture(label, rng, size))
    return root


def train_model(data: Path, output: Path, epochs: int, *options: str) -> str:
    """`python -m training.task` with one network, a few epochs: the pipeline end to end.
    Returns what it printed."""
    command = [
        sys.executable, "-m", "training.task", "--data-dir", str(data), "--output", str(output),
        "--epochs", str(epochs), "--batch-size", "8", "--members", "1", *options,
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, env=subprocess_env(), timeout=600
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout
