"""Write a trained model as a servable directory: SavedModel with two signatures,
metadata.json, and the report that training produced.

Signatures:
- `serving_default`: `images` float32 [N, 64, 64, 3] (0..255) -> `probabilities` [N, 4].
- `serving_uint8`: the same for uint8 batches.
- `serving_bytes`: `bytes` tf.string [N] (encoded JPEG/PNG/GIF/BMP) -> `classes`, `probabilities`,
  so the artifact runs unchanged on TensorFlow Serving or a Vertex AI prebuilt container
  (`{"instances": [{"bytes": {"b64": ...}}]}`). Our own service never uses it: it decodes
  with `service.imaging`. For 64x64 inputs both paths feed the network identical pixels.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from service.imaging import CLASS_NAMES, IMAGE_SIZE
from service.runtime import SAVED_MODEL_DIR, ModelMetadata


def export_model(model: keras.Model, export_dir: Path, metrics: dict[str, Any]) -> ModelMetadata:
    """Replace `export_dir` with the model; returns the metadata it wrote."""
    export_dir.mkdir(parents=True, exist_ok=True)
    saved_model_dir = export_dir / SAVED_MODEL_DIR
    if saved_model_dir.exists():
        shutil.rmtree(saved_model_dir)
    _archive(model).write_out(str(saved_model_dir), verbose=False)
    now = dt.datetime.now(dt.UTC)
    metadata = ModelMetadata(
        class_names=list(CLASS_NAMES),
        input_size=IMAGE_SIZE,
        # Numeric, so it doubles as a TensorFlow Serving version number.
        model_version=now.strftime("%Y%m%d%H%M%S"),
        trained_at=now.isoformat(timespec="seconds"),
        git_commit=_git_commit(),
        metrics=metrics,
    )
    metadata.write(export_dir)
    return metadata


def _archive(model: keras.Model) -> keras.export.ExportArchive:
    archive = keras.export.ExportArchive()
    archive.track(model)
    image_batch = [IMAGE_SIZE, IMAGE_SIZE, 3]

    def probabilities(images: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"probabilities": model(tf.cast(images, tf.float32), training=False)}

    def classify_bytes(bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        images = tf.map_fn(_decode_for_serving, bytes, fn_output_signature=tf.float32)
        probs = model(images, training=False)
        return {"classes": tf.argmax(probs, axis=-1), "probabilities": probs}

    archive.add_endpoint(
        "serving_default",
        probabilities,
        input_signature=[tf.TensorSpec([None, *image_batch], tf.float32, name="images")],
    )
    archive.add_endpoint(
        "serving_uint8",
        probabilities,
        input_signature=[tf.TensorSpec([None, *image_batch], tf.uint8, name="images")],
    )
    archive.add_endpoint(
        "serving_bytes",
        classify_bytes,
        input_signature=[tf.TensorSpec([None], tf.string, name="bytes")],
    )
    return archive


def _decode_for_serving(encoded: tf.Tensor) -> tf.Tensor:
    """TensorFlow's rendering of `service.imaging.decode_image`: centre square, 64x64."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    side = tf.minimum(height, width)
    image = tf.image.crop_to_bounding_box(
        image, (height - side) // 2, (width - side) // 2, side, side
    )
    image = tf.image.resize(image, [IMAGE_SIZE, IMAGE_SIZE], antialias=True)
    return tf.reshape(image, [IMAGE_SIZE, IMAGE_SIZE, 3])


def _git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return result.stdout.strip()
