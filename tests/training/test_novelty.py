"""The unknown threshold's rule: the higher of the score keeping KEEP of the held-out class
photos answered right and the highest score still answering NON_CLASS_UNKNOWN of fresh
non-class images unknown."""

from __future__ import annotations

import numpy as np
import pytest

from training.non_mugs import threshold_non_mugs, training_non_mugs, validation_non_mugs
from training.novelty import KEEP, NON_CLASS_UNKNOWN, fit_threshold, format_threshold

RNG = np.random.default_rng(0)


def all_right(scores: np.ndarray) -> np.ndarray:
    """Every held-out score counted as answered right."""
    return np.ones(len(scores), bool)


def test_where_the_non_class_images_leave_room_the_threshold_moves_up_to_them() -> None:
    held_out = RNG.uniform(0.0, 0.5, 5000)  # class photos: low novelty
    non_class = RNG.uniform(1.0, 1.4, 1000)  # far above them
    fit = fit_threshold(held_out, all_right(held_out), non_class, "test")
    assert fit["chosen_by"] == "non-class images"
    assert fit["threshold"] == fit["non_class_threshold"] > fit["keeping_threshold"] >= 0.49
    assert fit["held_out_kept"] == 1.0
    answered_unknown = (non_class > fit["threshold"]).mean()
    assert fit["non_class_answered_unknown"] == round(answered_unknown, 4)
    # As high as it may go: one step up would keep more non-class images than allowed.
    assert NON_CLASS_UNKNOWN <= answered_unknown < NON_CLASS_UNKNOWN + 0.002
    line = format_threshold(fit)
    assert line.startswith(f"Unknown threshold {fit['threshold']:.4f}, set by the non-class")
    assert f"{fit['keeping_threshold']:.4f}" in line and f"{KEEP:.0%}" in line


def test_where_the_two_overlap_the_class_photos_keep_their_share() -> None:
    held_out = RNG.uniform(0.0, 1.3, 5000)
    non_class = RNG.uniform(0.8, 1.4, 1000)
    fit = fit_threshold(held_out, all_right(held_out), non_class, "test")
    assert fit["chosen_by"] == "class photos"
    assert fit["threshold"] == fit["keeping_threshold"] > fit["non_class_threshold"]
    assert KEEP <= fit["held_out_kept"] < KEEP + 0.002
    assert fit["non_class_answered_unknown"] < NON_CLASS_UNKNOWN
    assert "set by the class photos" in format_threshold(fit)


def test_the_wrong_answers_do_not_set_the_class_photos_edge() -> None:
    right_scores = RNG.uniform(0.0, 0.6, 4000)  # answered right: confident
    wrong_scores = RNG.uniform(0.9, 1.5, 1000)  # answered wrong: unsure, a fifth of them
    held_out = np.concatenate([right_scores, wrong_scores])
    right = np.arange(len(held_out)) < len(right_scores)
    non_class = RNG.uniform(0.3, 1.6, 1000)  # overlapping the class photos
    fit = fit_threshold(held_out, right, non_class, "test")
    assert fit["chosen_by"] == "class photos" and fit["n_right"] == len(right_scores)
    assert fit["keeping_threshold"] < 0.6
    assert KEEP <= fit["held_out_right_kept"] < KEEP + 0.002
    # Counted over every held-out version, the wrong answers are refused.
    assert fit["held_out_kept"] == round((held_out <= fit["threshold"]).mean(), 4) < 0.8
    # All of them set the edge above the wrong answers, answering few non-class images unknown.
    every = fit_threshold(held_out, all_right(held_out), non_class, "test")
    assert every["keeping_threshold"] > 1.4
    assert every["non_class_answered_unknown"] < 0.25 < fit["non_class_answered_unknown"]


def test_a_model_that_answers_none_right_keeps_its_share_of_all() -> None:
    held_out = RNG.uniform(0.0, 1.3, 1000)
    fit = fit_threshold(held_out, np.zeros(len(held_out), bool), RNG.uniform(0, 1, 100), "t")
    assert fit["n_right"] == 0 and KEEP <= fit["held_out_kept"] < KEEP + 0.002


def test_tied_non_class_scores_are_all_answered_unknown() -> None:
    # A tenth of the non-class images score exactly 0.9: keeping any would keep them all.
    non_class = np.concatenate([np.full(100, 0.9), RNG.uniform(1.0, 1.4, 900)])
    held_out = np.full(100, 0.1)
    fit = fit_threshold(held_out, all_right(held_out), non_class, "test")
    assert fit["threshold"] == 0.8999 and fit["non_class_answered_unknown"] == 1.0


@pytest.mark.slow  # crops thousands of images
def test_the_images_fitted_against_are_neither_trained_on_nor_validated_on() -> None:
    photos = np.full((8, 64, 64, 3), 128, np.uint8)
    fresh = threshold_non_mugs(64, seed=1)
    assert fresh.shape[1:] == (64, 64, 3) and fresh.dtype == np.uint8
    trained = training_non_mugs(photos, seed=1, corners=False)
    validated = np.concatenate(list(validation_non_mugs(photos, seed=1, corners=False).values()))
    seen = {image.tobytes() for image in np.concatenate([trained, validated])}
    repeats = sum(image.tobytes() in seen for image in fresh)
    # Flat colours may coincide by chance; crops and textures do not.
    assert repeats <= 0.01 * len(fresh)
