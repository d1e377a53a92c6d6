"""The two runtimes behind one interface give the same answers on every test photo."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from service.imaging import decode_image
from service.runtime import ModelLoadError, load_predictor


def test_litert_and_tensorflow_agree_on_every_test_photo(
    model_dir: Path, test_photos: list[tuple[Path, int]]
) -> None:
    images = np.stack([decode_image(photo.read_bytes()) for photo, _ in test_photos])
    litert = load_predictor(model_dir, "litert", precision="float").predict(images)
    tensorflow = load_predictor(model_dir, "tensorflow").predict(images)
    assert litert.shape == tensorflow.shape == (len(test_photos), 4)
    np.testing.assert_allclose(litert, tensorflow, atol=1e-4, rtol=0)


def test_litert_answers_any_batch_size(model_dir: Path, test_photos) -> None:
    predictor = load_predictor(model_dir, "litert")
    images = np.stack([decode_image(photo.read_bytes()) for photo, _ in test_photos[:7]])
    whole = predictor.predict(images)
    one_by_one = np.concatenate([predictor.predict(images[i : i + 1]) for i in range(7)])
    np.testing.assert_allclose(whole, one_by_one, atol=1e-6)


def test_unknown_runtime_is_refused(model_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="unknown runtime 'onnx'"):
        load_predictor(model_dir, "onnx")


def test_quantized_model_is_served_by_default_when_its_parity_passed(
    model_dir: Path, test_photos
) -> None:
    """The bundled model's int8 twin passed training's parity check: auto serves it, and on
    the test photos it agrees with the float model as the check says."""
    auto = load_predictor(model_dir)
    float_model = load_predictor(model_dir, precision="float")
    assert auto.metadata.quantization["passed"] is True
    assert (auto.precision, float_model.precision) == ("int8", "float")
    images = np.stack([decode_image(photo.read_bytes()) for photo, _ in test_photos])
    quantized, full = auto.predict_batches(images), float_model.predict_batches(images)
    assert np.abs(quantized - full).max() <= 0.01
    assert (quantized.argmax(1) == full.argmax(1)).mean() >= 0.995


def test_failed_parity_serves_the_float_model(model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    metadata["quantization"]["passed"] = False
    (copy / "metadata.json").write_text(json.dumps(metadata))
    assert load_predictor(copy).precision == "float"
    assert load_predictor(copy, precision="int8").precision == "int8"  # asked for explicitly


def test_int8_on_tensorflow_is_refused(model_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="int8 runs on LiteRT only"):
        load_predictor(model_dir, "tensorflow", precision="int8")
