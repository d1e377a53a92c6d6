"""Calibration figures: the ECE, the temperature fit, the held-out split they come from."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibration import fit_temperature, softmax
from training.dataset import LabelledImages
from training.report import expected_calibration_error


def test_ece_is_the_gap_between_confidence_and_accuracy() -> None:
    labels = np.array([0, 0, 1, 1])
    # All four at confidence 0.9, three right: |0.75 - 0.9| = 0.15.
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.9, 0.1]])
    assert expected_calibration_error(labels, probabilities) == pytest.approx(0.15)
    # Perfectly calibrated certainty.
    assert expected_calibration_error(labels, np.eye(2)[labels]) == 0.0


def test_fit_recovers_the_temperature_the_labels_were_drawn_with() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (20000, 4))
    true_temperature = 2.5
    labels = np.array([rng.choice(4, p=p) for p in softmax(logits, true_temperature)])
    fit = fit_temperature(logits, labels)
    assert fit["temperature"] == pytest.approx(true_temperature, rel=0.05)
    assert fit["nll_after"] < fit["nll_before"] and fit["ece_after"] < fit["ece_before"]


def test_holdout_is_stratified_disjoint_and_seeded() -> None:
    labels = np.repeat(np.arange(4), 50).astype(np.int32)
    data = LabelledImages(
        images=np.zeros((200, 2, 2, 3), np.uint8),
        labels=labels,
        paths=tuple(f"p{i}" for i in range(200)),
        class_names=("a", "b", "c", "d"),
    )
    rest, held = data.split_holdout(0.1, seed=1)
    assert held.class_counts() == dict.fromkeys(held.class_counts(), 5)
    assert len(rest) == 180 and not set(rest.paths) & set(held.paths)
    assert data.split_holdout(0.1, seed=1)[1].paths == held.paths
    assert data.split_holdout(0.1, seed=2)[1].paths != held.paths
