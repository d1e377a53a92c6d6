"""The `unknown` answer's threshold and its figures.

The exported graph computes each image's novelty score (`training.model.Novelty`). Training
fits the threshold from both sides:
- the class photos': the lowest score that keeps KEEP of the held-out photos the model
  answers right, as taken and under every condition of the photo suite
  (`training.corruptions`: the light, contrast, blur and noise the answers must survive, so
  a dim or blurred mug is not refused) and on another table (`TABLE`). The wrong answers do
  not set that edge: refusing a photo the model would misread anyway loses nothing and is
  the honest answer, and where the classifier is weak (a quarter of the flower photos
  wrong, more under the suite) they sit highest and would carry the threshold up to where
  it refuses little else;
- the non-class images': the highest score that still answers NON_CLASS_UNKNOWN of fresh
  images of none of the classes unknown (`training.non_mugs.threshold_non_mugs`).
The threshold is the higher of the two. Photos taken elsewhere score higher than any held-out
version of the training photos, so a threshold at the class photos' edge refuses more of them
than it kept of the held-out ones; where the non-class images leave room above that edge,
the threshold uses it. Where the two overlap (a weaker classifier, photos the subject
fills), the class photos' side wins and nothing changes. It then reports what that does to
the evaluation photos and to the validation images of `training.non_mugs`, which neither
side saw. Measured in training/EXPERIMENTS.md.

Another table, because training.task's held-out photos share the training photos' grey table
and uploads do not: fitted without it, the threshold kept only 77-87% of test/ (a greenish
table) with the right label for three seeds, though the score itself separates those photos
from non-mug images well (AUROC 0.98-0.99). With it, the same three models keep 92-96%, and
still answer 97-98% of the non-mug validation images unknown. training.full's held-out photos
show both tables; it leaves the condition out (`TrainConfig.threshold_on_another_table`).
Once per photo, not under every condition too: that kept 97-99% of test/ with the right
label, but answered only 75-77% of the non-mug validation images unknown.

Fitted on the held-out photos and their augmented training copies instead (the first try),
the threshold let 42% of the validation photo crops through: those copies stack zoom, dark
exposure, blur and noise at once, further from a mug than many a photo of something else.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from service.runtime import NOVELTY, PROBABILITIES, Predictor
from training.augment import RandomTableColour

KEEP = 0.99  # of the held-out class photos the threshold must keep
# Of the fresh non-class images the threshold must still answer unknown: the bar for the
# validation images is 90%, and fresh draws track them within a point or two.
NON_CLASS_UNKNOWN = 0.92
METHOD = (
    "outlier exposure (non-class images trained to a uniform answer); score -log(top softmax "
    "of the logits); threshold: the higher of the score keeping {keep:.0%} of the held-out "
    "class photos answered right and the score below which {spare:.0%} of fresh non-class "
    "images fall"
)


# Another table: every held-out photo once, its table x0.4..x1.2 as bright, each channel
# x0.75..x1.33 (the grey table darkened to the test photos' greenish one is within reach).
TABLE = {"brightness": (0.4, 1.2), "tint": (0.75, 1.33)}


def on_another_table(held_out: np.ndarray, seed: int) -> np.ndarray:
    """Each held-out photo once more, its table recoloured (`TABLE`)."""
    recolour = RandomTableColour(1.0, **TABLE, seed=seed)
    return np.asarray(recolour(held_out.astype(np.float32))).round().astype(np.uint8)


def fit_threshold(
    held_out_scores: np.ndarray,
    held_out_right: np.ndarray,
    non_class_scores: np.ndarray,
    fitted_on: str,
) -> dict[str, Any]:
    """The higher of two thresholds (a score above it is unknown): the one that keeps KEEP of
    `held_out_scores` (class photos) where `held_out_right` (the model's answer is their
    label; all of them if it answers none right) and the highest that still answers
    NON_CLASS_UNKNOWN of `non_class_scores` unknown."""
    right = held_out_scores[held_out_right] if held_out_right.any() else held_out_scores
    keeping = _up(float(np.quantile(right, KEEP, method="higher")))
    ordered = np.sort(non_class_scores)
    # The lowest score that must be answered unknown: at most this many may be kept.
    may_keep = int(np.floor((1 - NON_CLASS_UNKNOWN) * len(ordered)))
    refusing = _below(float(ordered[may_keep]))
    threshold = max(keeping, refusing)
    return {
        "method": METHOD.format(keep=KEEP, spare=1 - NON_CLASS_UNKNOWN),
        "threshold": threshold,
        "keep": KEEP,
        "n": len(held_out_scores),
        "n_right": int(held_out_right.sum()),
        "held_out_kept": round(float((held_out_scores <= threshold).mean()), 4),
        "held_out_right_kept": round(float((right <= threshold).mean()), 4),
        "fitted_on": fitted_on,
        "keeping_threshold": keeping,
        "non_class_unknown": NON_CLASS_UNKNOWN,
        "non_class_threshold": refusing,
        "non_class_n": len(non_class_scores),
        "non_class_answered_unknown": round(float((non_class_scores > threshold).mean()), 4),
        "chosen_by": "class photos" if threshold == keeping else "non-class images",
    }


def format_threshold(fit: dict[str, Any]) -> str:
    """One line on how `fit_threshold` chose: which side set it, and each side's value."""
    return (
        f"Unknown threshold {fit['threshold']:.4f}, set by the {fit['chosen_by']} "
        f"(keeping {fit['keep']:.0%} of the held-out photos answered right: "
        f"{fit['keeping_threshold']:.4f}; "
        f"{fit['non_class_unknown']:.0%} of fresh non-class images unknown: "
        f"{fit['non_class_threshold']:.4f})"
    )


def _up(score: float) -> float:
    """The lowest 4-decimal number (what metadata.json keeps) at or above `score`."""
    rounded = math.ceil(score * 1e4) / 1e4
    return rounded if rounded >= score else round(rounded + 1e-4, 4)


def _below(score: float) -> float:
    """The highest 4-decimal number strictly below `score`."""
    rounded = math.floor(score * 1e4) / 1e4
    return rounded if rounded < score else round(rounded - 1e-4, 4)


def novelty_by_source(
    predictor: Predictor, images_by_source: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The predictor's novelty scores for images of none of the classes, by source."""
    return {name: predictor.output_batches(x)[NOVELTY] for name, x in images_by_source.items()}


def unknown_figures(
    threshold: float,
    outputs: dict[str, np.ndarray],
    labels: np.ndarray,
    non_class_scores: dict[str, np.ndarray],
) -> dict[str, Any]:
    """On class photos (`outputs`, a predictor's for them, and their `labels`): the share kept
    (not unknown) and kept with the right label; on images of none of the classes (their
    `novelty_by_source`): the share answered unknown, overall and by source."""
    kept = outputs[NOVELTY] <= threshold
    right = outputs[PROBABILITIES].argmax(1) == labels
    every = np.concatenate(list(non_class_scores.values()))
    return {
        "threshold": round(threshold, 4),
        "kept": round(float(kept.mean()), 4),
        "kept_correct": round(float((kept & right).mean()), 4),
        "non_mug_unknown": round(float((every > threshold).mean()), 4),
        "non_mug_unknown_by_source": {
            name: round(float((s > threshold).mean()), 4) for name, s in non_class_scores.items()
        },
        "non_mug_counts": {name: len(s) for name, s in non_class_scores.items()},
    }


def format_unknown(figures: dict[str, Any]) -> str:
    sources = ", ".join(
        f"{name} {share:.1%}" for name, share in figures["non_mug_unknown_by_source"].items()
    )
    return (
        f"unknown threshold {figures['threshold']:.3f}: photos kept {figures['kept']:.2%} "
        f"({figures['kept_correct']:.2%} kept with the right label); validation images of none "
        "of the classes "
        f"answered unknown {figures['non_mug_unknown']:.2%} ({sources})"
    )
