"""The two runtimes behind one interface give the same answers on every test photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.imaging import decode_image
from service.runtime import ModelLoadError, load_predictor


def test_litert_and_tensorflow_agree_on_every_test_photo(
    model_dir: Path, test_photos: list[tuple[Path, int]]
) -> None:
    images = np.stack([decode_image(photo.read_bytes()) for photo, _ in test_photos])
    litert = load_predictor(model_dir, "litert").predict(images)
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
