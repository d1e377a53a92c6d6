"""Write a trained model as a servable directory: SavedModel with three signatures, the
same network converted for LiteRT, metadata.json, and the report that training produced.

Signatures (every one, like the LiteRT models, gives the calibrated `probabilities`,
softmax(logits / temperature), and the raw `logits`):
- `serving_default`: `images` float32 [N, size, size, 3] (0..255) -> `probabilities`,
  `logits` [N, classes].
- `serving_uint8`: the same for uint8 batches.
- `serving_bytes`: `bytes` tf.string [N] (encoded JPEG/PNG/GIF/BMP) -> `classes`, `probabilities`,
  `logits`,
  so the artifact runs unchanged on TensorFlow Serving or a Vertex AI prebuilt container
  (`{"instances": [{"bytes": {"b64": ...}}]}`). Our own service never uses it: it decodes
  with `service.imaging`. For photos already at the input size both paths feed the network
  identical pixels.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from service.runtime import SAVED_MODEL_DIR, TFLITE_FILE, TFLITE_INT8_FILE, ModelMetadata


def export_model(
    model: keras.Model,
    export_dir: Path,
    calibration: dict[str, Any],
    class_names: tuple[str, ...],
    about: dict[str, Any] | None = None,
) -> ModelMetadata:
    """Replace `export_dir` with the serving model (`training.model.serving_model`: a dict of
    `probabilities` and `logits`), as a SavedModel, LiteRT float and LiteRT dynamic-range
    quantised; returns the metadata it wrote, with `class_names` and `about` (the model's
    name, title and description, the data it was trained on). The caller adds the figures
    measured on the exported files."""
    size = int(model.input.shape[1])
    commit = _git_commit()  # before writing: exporting into the repository dirties it
    export_dir.mkdir(parents=True, exist_ok=True)
    saved_model_dir = export_dir / SAVED_MODEL_DIR
    if saved_model_dir.exists():
        shutil.rmtree(saved_model_dir)
    _save_signatures(model, saved_model_dir, size)
    (export_dir / TFLITE_FILE).write_bytes(_to_litert(model))
    (export_dir / TFLITE_INT8_FILE).write_bytes(_to_litert(model, quantize=True))
    now = dt.datetime.now(dt.UTC)
    metadata = ModelMetadata(
        **(about or {}),
        class_names=list(class_names),
        input_size=size,
        # Numeric, so it doubles as a TensorFlow Serving version number.
        model_version=now.strftime("%Y%m%d%H%M%S"),
        trained_at=now.isoformat(timespec="seconds"),
        git_commit=commit,
        calibration=calibration,
    )
    metadata.write(export_dir)
    return metadata


def _save_signatures(model: keras.Model, path: Path, size: int) -> None:
    """A plain tf.Module (Keras' ExportArchive stores every weight twice here)."""
    image_batch = [None, size, size, 3]

    def probabilities(images: tf.Tensor) -> dict[str, tf.Tensor]:
        return model(tf.cast(images, tf.float32), training=False)

    def classify_bytes(bytes: tf.Tensor) -> dict[str, tf.Tensor]:  # TF Serving's input key
        images = tf.map_fn(
            lambda encoded: _decode_for_serving(encoded, size),
            bytes,
            fn_output_signature=tf.float32,
        )
        outputs = model(images, training=False)
        return {"classes": tf.argmax(outputs["probabilities"], axis=-1), **outputs}

    signatures = {
        "serving_default": tf.function(
            probabilities, input_signature=[tf.TensorSpec(image_batch, tf.float32, name="images")]
        ),
        "serving_uint8": tf.function(
            probabilities, input_signature=[tf.TensorSpec(image_batch, tf.uint8, name="images")]
        ),
        "serving_bytes": tf.function(
            classify_bytes, input_signature=[tf.TensorSpec([None], tf.string, name="bytes")]
        ),
    }
    module = tf.Module()
    module.weights = list(model.weights)  # the weights alone: no optimizer state
    tf.saved_model.save(module, str(path), signatures=signatures)


def _to_litert(model: keras.Model, quantize: bool = False) -> bytes:
    """The serving model converted for LiteRT: float32 as trained, so both runtimes give the
    same probabilities, or with `quantize` its weights stored as int8 and its activations
    quantised on the fly (dynamic range): a quarter of the size and about twice as fast.
    Converted from the Keras model: converting the SavedModel gave a model without its
    weights (44 KB, NaN outputs) with TensorFlow 2.21.
    The converter prints every captured variable of its temporary export (a hundred lines
    of TensorSpecs) to stdout; that listing is swallowed."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    with contextlib.redirect_stdout(io.StringIO()):
        return converter.convert()


def _decode_for_serving(encoded: tf.Tensor, size: int) -> tf.Tensor:
    """TensorFlow's rendering of `service.imaging.decode_image`: centre square, `size`."""
    image = tf.cond(
        tf.io.is_jpeg(encoded),
        # Pillow's JPEG decoding is libjpeg's accurate integer DCT; TensorFlow defaults to fast.
        lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(encoded, channels=3, expand_animations=False),
    )
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    side = tf.minimum(height, width)
    image = tf.image.crop_to_bounding_box(
        image, (height - side) // 2, (width - side) // 2, side, side
    )
    image = tf.image.resize(image, [size, size], antialias=True)
    return tf.reshape(image, [size, size, 3])


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
