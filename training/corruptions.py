"""A fixed, seeded suite of photo conditions people upload in: other light, low contrast,
blur, a phone's upscaled and recompressed photo, sensor noise, heavy JPEG, a tilted camera,
colour casts and a camera farther away. Each condition has two severities; the second is
the harsher.

Every condition turns a square uint8 photo into another of its size. Those that go through an
encoded file (the phone upload, JPEG) come back through `service.imaging.decode_image`, exactly
as an upload would reach the model. Noise and the rotation's direction come from a generator seeded
by (suite seed, condition, severity, photo index): the same seed gives the same pixels,
whatever else is in the batch.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from service.cpus import usable_cpus
from service.imaging import decode_image
from training.report import expected_calibration_error

DEFAULT_SEED = 0
# The severities are set for a 64-pixel photo; blurs scale with the side of larger ones, so
# a condition is the same photo condition at any input size.
REFERENCE_SIZE = 64
Corrupt = Callable[[np.ndarray, Any, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Condition:
    name: str
    describe: str  # formatted with the severity's level
    levels: tuple[Any, Any]  # severity 1, severity 2
    apply: Corrupt


def _to_linear(srgb: np.ndarray) -> np.ndarray:
    """sRGB 0..1 -> linear light 0..1 (the standard transfer curve)."""
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _to_srgb(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)


def _uint8(pixels: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def _exposure(image: np.ndarray, gain: float, rng: np.random.Generator) -> np.ndarray:
    """Pixel values times `gain`, clipped: 0.5 is "half the light" as the robustness issue
    measured it (harsher than one stop in linear light, which is about x0.73 in sRGB)."""
    return _uint8(image * gain)


def _contrast(image: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Pillow's contrast: pixels pulled towards the mean grey by `factor`."""
    return np.asarray(ImageEnhance.Contrast(Image.fromarray(image)).enhance(factor))


def _blur(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    scaled = sigma * image.shape[0] / REFERENCE_SIZE
    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(scaled)))


def _jpeg(image: Image.Image, quality: int, size: int) -> np.ndarray:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return decode_image(buffer.getvalue(), size)


def _phone_upload(
    image: np.ndarray, level: tuple[int, float, int], rng: np.random.Generator
) -> np.ndarray:
    """Upscaled to `size` px, defocused by `sigma` (in pixels of a 64-px photo), saved as JPEG
    at `quality`, then decoded as an upload: what a phone photo of the scene goes through."""
    size, sigma, quality = level
    large = Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC)
    large = large.filter(ImageFilter.GaussianBlur(sigma * size / REFERENCE_SIZE))
    return _jpeg(large, quality, image.shape[0])


def _noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian sensor noise, independent per pixel and channel, `sigma` in 0..255 units."""
    return _uint8(image + rng.normal(0.0, sigma, image.shape))


def _compress(image: np.ndarray, quality: int, rng: np.random.Generator) -> np.ndarray:
    return _jpeg(Image.fromarray(image), quality, image.shape[0])


def _rotate(image: np.ndarray, degrees: float, rng: np.random.Generator) -> np.ndarray:
    """A tilted camera: rotated by `degrees` either way, then the largest upright square
    inside the rotated frame, so no invented corners."""
    angle = degrees * rng.choice((-1.0, 1.0))
    rotated = Image.fromarray(image).rotate(angle, Image.Resampling.BICUBIC)
    radians = np.deg2rad(abs(angle))
    size = image.shape[0]
    side = size / (np.cos(radians) + np.sin(radians))
    margin = (size - side) / 2
    box = (margin, margin, size - margin, size - margin)
    return np.asarray(rotated.resize((size, size), Image.Resampling.BICUBIC, box))


def _farther(image: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """A camera `factor` times farther away: the mug `factor` times smaller in the frame,
    the table around it extended from the photo's edges (one mug, not mirrored copies)."""
    size = image.shape[0]
    pad = round(size * (factor - 1) / 2)
    wider = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    small = Image.fromarray(wider).resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(small)


def _cast(gains: tuple[float, float, float]) -> Corrupt:
    def apply(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
        """Per-channel gains in linear light: a light source of another colour."""
        scale = 1 + strength * np.asarray(gains)
        return _uint8(_to_srgb(_to_linear(image / 255.0) * scale) * 255)

    return apply


SUITE: tuple[Condition, ...] = (
    Condition("under_exposure", "{}x the light", (0.7, 0.5), _exposure),
    Condition("over_exposure", "{}x the light", (1.25, 1.5), _exposure),
    Condition("low_contrast", "contrast x{}", (0.7, 0.5), _contrast),
    Condition("gaussian_blur", "sigma {} px", (1.0, 2.0), _blur),
    Condition(
        "phone_upload",
        "{0[0]} px, defocused by sigma {0[1]} px at 64, JPEG quality {0[2]}",
        ((1024, 0.5, 85), (1536, 1.0, 70)),
        _phone_upload,
    ),
    Condition("sensor_noise", "sigma {}", (12, 25), _noise),
    Condition("jpeg", "quality {}", (20, 8), _compress),
    Condition("rotation", "{} degrees", (10, 20), _rotate),
    Condition("warm_cast", "red +{0:.0%}, blue -{0:.0%}", (0.15, 0.3), _cast((1, 0, -1))),
    Condition("cool_cast", "red -{0:.0%}, blue +{0:.0%}", (0.15, 0.3), _cast((-1, 0, 1))),
    Condition("farther", "{}x the distance", (1.5, 2.0), _farther),
)
SEVERITIES = (1, 2)
# Conditions the suite adds beyond the ten the robustness issue asked for: its targets (mean
# >= 97%, worst >= 93%) are reported over its twenty as well as over the whole suite.
BEYOND_THE_ISSUE = ("farther",)


def corrupt(images: np.ndarray, condition: Condition, severity: int, seed: int) -> np.ndarray:
    """`images` (uint8 [N, size, size, 3]) under `condition` at `severity` (1 or 2)."""
    level = condition.levels[severity - 1]
    index = SUITE.index(condition)

    def one(i: int) -> np.ndarray:  # each image its own generator: same pixels in any order
        return condition.apply(images[i], level, np.random.default_rng((seed, index, severity, i)))

    # Pillow lets go of the GIL while it resizes, filters and codes: the phone uploads' large
    # JPEGs (most of the suite's time) are made on every CPU.
    with ThreadPoolExecutor(usable_cpus()) as pool:
        return np.stack(list(pool.map(one, range(len(images)))))


def under_every_condition(images: np.ndarray, seed: int) -> np.ndarray:
    """`images` as they are, then under every condition of the suite at both severities:
    what the temperature and the unknown threshold are fitted on (held-out photos, with a
    seed apart from the evaluation's), so that both hold for the conditions uploads come in."""
    conditions = [corrupt(images, c, severity, seed) for c in SUITE for severity in SEVERITIES]
    return np.concatenate([images, *conditions])


def evaluate_suites(
    predicts: dict[str, Callable[[np.ndarray], np.ndarray]],
    images: np.ndarray,
    labels: np.ndarray,
    seed: int = DEFAULT_SEED,
) -> dict[str, dict[str, Any]]:
    """`evaluate_suite` for several models at once, on the same corrupted photos (made once:
    the phone upload's large JPEGs are most of the suite's cost)."""
    conditions: dict[str, list[dict[str, Any]]] = {name: [] for name in predicts}
    for condition in SUITE:
        for severity in SEVERITIES:
            corrupted = corrupt(images, condition, severity, seed)
            for name, predict in predicts.items():
                probabilities = predict(corrupted)
                conditions[name].append(
                    {
                        "name": condition.name,
                        "severity": severity,
                        "level": condition.describe.format(condition.levels[severity - 1]),
                        "accuracy": round(float((probabilities.argmax(1) == labels).mean()), 4),
                        "ece": round(expected_calibration_error(labels, probabilities), 4),
                    }
                )
    return {name: _summary(rows, seed, len(labels)) for name, rows in conditions.items()}


def evaluate_suite(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    labels: np.ndarray,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """Accuracy and calibration error under every condition and severity, their mean and
    the worst. `predict` maps uint8 images to probabilities [N, 4]."""
    return evaluate_suites({"model": predict}, images, labels, seed)["model"]


def _summary(conditions: list[dict[str, Any]], seed: int, n: int) -> dict[str, Any]:
    worst = min(conditions, key=lambda c: c["accuracy"])
    return {
        "seed": seed,
        "n": n,
        "conditions": conditions,
        "mean_accuracy": round(float(np.mean([c["accuracy"] for c in conditions])), 4),
        "worst": {key: worst[key] for key in ("name", "severity", "accuracy")},
    }


def format_suite(suite: dict[str, Any]) -> str:
    """The suite's figures as a table for a terminal."""
    lines = [f"{'condition':<16}{'severity':>9}  {'accuracy':>8}  {'ECE':>6}  level"]
    for c in suite["conditions"]:
        lines.append(
            f"{c['name']:<16}{c['severity']:>9}  {c['accuracy']:>8.2%}  {c['ece']:>6.3f}  "
            f"{c['level']}"
        )
    worst = suite["worst"]
    lines.append(
        f"mean {suite['mean_accuracy']:.2%}; worst {worst['name']} (severity "
        f"{worst['severity']}) {worst['accuracy']:.2%}"
    )
    return "\n".join(lines)
