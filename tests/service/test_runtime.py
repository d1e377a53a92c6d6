"""The two runtimes behind one interface give the same answers on every test photo."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from service.imaging import decode_image
from service.runtime import ModelLoadError, load_predictor
from tests.conftest import MUG_SIZE


def test_litert_and_tensorflow_agree_on_every_test_photo(
    model_dir: Path, test_photos: list[tuple[Path, int]]
) -> None:
    images = np.stack([decode_image(photo.read_bytes(), MUG_SIZE) for photo, _ in test_photos])
    litert = load_predictor(model_dir, "litert", precision="float").predict(images)
    tensorflow = load_predictor(model_dir, "tensorflow").predict(images)
    assert litert.shape == tensorflow.shape == (len(test_photos), 4)
    np.testing.assert_allclose(litert, tensorflow, atol=1e-4, rtol=0)


def test_litert_answers_any_batch_size(model_dir: Path, test_photos) -> None:
    predictor = load_predictor(model_dir, "litert")
    images = np.stack([decode_image(photo.read_bytes(), MUG_SIZE) for photo, _ in test_photos[:7]])
    whole = predictor.predict(images)
    one_by_one = np.concatenate([predictor.predict(images[i : i + 1]) for i in range(7)])
    np.testing.assert_allclose(whole, one_by_one, atol=1e-6)


def test_unknown_runtime_is_refused(model_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="unknown runtime 'onnx'"):
        load_predictor(model_dir, "onnx")


def test_quantized_model_parity_is_what_training_recorded(model_dir: Path, test_photos) -> None:
    """The int8 twin against the float model on the test photos, as training measured it:
    the recorded gap is the real one, and `auto` serves int8 exactly when it passed."""
    float_model = load_predictor(model_dir, precision="float")
    int8_model = load_predictor(model_dir, precision="int8")
    parity = float_model.metadata.quantization
    images = np.stack([decode_image(photo.read_bytes(), MUG_SIZE) for photo, _ in test_photos])
    full, quantized = float_model.predict_batches(images), int8_model.predict_batches(images)
    assert np.abs(quantized - full).max() == pytest.approx(parity["max_probability_gap"], abs=2e-4)
    assert (quantized.argmax(1) == full.argmax(1)).mean() >= 0.995
    expected = "int8" if parity["passed"] else "float"
    assert load_predictor(model_dir).precision == expected


@pytest.mark.parametrize(("passed", "served"), [(True, "int8"), (False, "float")])
def test_auto_serves_int8_exactly_when_its_parity_passed(
    model_dir: Path, tmp_path: Path, passed: bool, served: str
) -> None:
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    metadata["quantization"]["passed"] = passed
    (copy / "metadata.json").write_text(json.dumps(metadata))
    assert load_predictor(copy).precision == served
    for asked in ("float", "int8"):  # asked for explicitly, whatever the check said
        assert load_predictor(copy, precision=asked).precision == asked


def test_int8_on_tensorflow_is_refused(model_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="int8 runs on LiteRT only"):
        load_predictor(model_dir, "tensorflow", precision="int8")
