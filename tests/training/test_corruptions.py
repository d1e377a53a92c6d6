"""The photo-condition suite: deterministic, every condition really changes the photo, and
the figures it reports."""

from __future__ import annotations

import numpy as np
import pytest

from service.imaging import decode_image
from tests.conftest import MUG_LABELS as CLASS_NAMES
from tests.conftest import MUG_SIZE
from training.corruptions import SEVERITIES, SUITE, corrupt, evaluate_suite


@pytest.fixture(scope="module")
def photos(test_photos) -> np.ndarray:
    """Two real test photos of each class."""
    chosen = [photo for label in range(4) for photo, lab in test_photos if lab == label][::60]
    return np.stack([decode_image(path.read_bytes(), MUG_SIZE) for path in chosen[:8]])


def test_the_suite_has_the_conditions_people_upload_in() -> None:
    names = {c.name for c in SUITE}
    assert names >= {
        "under_exposure", "over_exposure", "low_contrast", "gaussian_blur", "phone_upload",
        "sensor_noise", "jpeg", "rotation", "warm_cast", "cool_cast", "farther",
    }  # fmt: skip
    assert all(len(c.levels) == len(SEVERITIES) == 2 for c in SUITE)


@pytest.mark.parametrize("condition", SUITE, ids=lambda c: c.name)
def test_same_seed_same_pixels_and_every_condition_changes_the_photo(
    condition, photos: np.ndarray
) -> None:
    for severity in SEVERITIES:
        first = corrupt(photos, condition, severity, seed=3)
        again = corrupt(photos, condition, severity, seed=3)
        assert first.shape == photos.shape and first.dtype == np.uint8
        np.testing.assert_array_equal(first, again)
        changed = np.abs(first.astype(int) - photos).mean(axis=(1, 2, 3))
        assert (changed > 1.0).all(), f"{condition.name} {severity}: {changed}"
    # The harsher severity moves the pixels further.
    mild, harsh = (corrupt(photos, condition, s, seed=3).astype(int) for s in SEVERITIES)
    assert np.abs(harsh - photos).mean() > np.abs(mild - photos).mean()


def test_a_photo_gets_the_same_noise_whatever_else_is_in_the_batch(photos: np.ndarray) -> None:
    noise = next(c for c in SUITE if c.name == "sensor_noise")
    whole = corrupt(photos, noise, 2, seed=5)
    np.testing.assert_array_equal(corrupt(photos[:3], noise, 2, seed=5), whole[:3])
    assert not np.array_equal(corrupt(photos, noise, 2, seed=6), whole)


def test_suite_report_counts_right_answers(photos: np.ndarray) -> None:
    labels = np.repeat(np.arange(4), 2)

    def always_white(images: np.ndarray) -> np.ndarray:
        return np.tile([[0.7, 0.1, 0.1, 0.1]], (len(images), 1)).astype(np.float32)

    report = evaluate_suite(always_white, photos, labels)
    assert len(report["conditions"]) == len(SUITE) * 2
    assert {c["accuracy"] for c in report["conditions"]} == {0.25}
    assert report["mean_accuracy"] == 0.25 and report["worst"]["accuracy"] == 0.25
    # Confidence 0.7 at accuracy 0.25: the calibration error is the gap.
    assert report["conditions"][0]["ece"] == pytest.approx(0.45)
    assert len(CLASS_NAMES) == 4
