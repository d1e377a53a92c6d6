"""The `unknown` answer's threshold and its figures.

The exported graph computes each image's novelty score (`training.model.Novelty`). Training
picks the threshold on held-out mug photos, as taken and under every condition of the photo
suite (`training.corruptions`: the light, contrast, blur and noise the answers must survive,
so a dim or blurred mug is not refused), as the lowest score that keeps KEEP of them. It then
reports what that does to the evaluation photos and to the non-mug validation images of
`training.non_mugs`.

Fitted on the held-out photos and their augmented training copies instead (the first try),
the threshold let 42% of the validation photo crops through: those copies stack zoom, dark
exposure, blur and noise at once, further from a mug than many a photo of something else.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from service.runtime import NOVELTY, PROBABILITIES, Predictor
from training.corruptions import SUITE, corrupt

KEEP = 0.99  # of the held-out mug photos the threshold must keep
METHOD = (
    "outlier exposure (non-mug images trained to 1/4 for each class); score -log(top softmax "
    "of the logits); threshold keeps {keep:.0%} of held-out mug photos"
)


def threshold_images(held_out: np.ndarray, seed: int) -> np.ndarray:
    """The held-out photos, then each under every condition of the suite at both severities
    (seeded apart from the suite's evaluation seed)."""
    conditions = [corrupt(held_out, c, severity, seed) for c in SUITE for severity in (1, 2)]
    return np.concatenate([held_out, *conditions])


def fit_threshold(held_out_scores: np.ndarray, fitted_on: str) -> dict[str, Any]:
    """The threshold that keeps KEEP of `held_out_scores` (a score above it is unknown)."""
    threshold = float(np.quantile(held_out_scores, KEEP, method="higher"))
    return {
        "method": METHOD.format(keep=KEEP),
        "threshold": round(threshold, 4),
        "keep": KEEP,
        "n": len(held_out_scores),
        "held_out_kept": round(float((held_out_scores <= threshold).mean()), 4),
        "fitted_on": fitted_on,
    }


def unknown_figures(
    predictor: Predictor,
    threshold: float,
    outputs: dict[str, np.ndarray],
    labels: np.ndarray,
    non_mugs: dict[str, np.ndarray],
) -> dict[str, Any]:
    """On mug photos (`outputs`, the predictor's for them, and their `labels`): the share kept
    (not unknown) and kept with the right label; on `non_mugs` (images by source): the share
    `predictor` answers unknown, overall and by source."""
    kept = outputs[NOVELTY] <= threshold
    right = outputs[PROBABILITIES].argmax(1) == labels
    scores = {name: predictor.output_batches(images)[NOVELTY] for name, images in non_mugs.items()}
    every = np.concatenate(list(scores.values()))
    return {
        "threshold": round(threshold, 4),
        "kept": round(float(kept.mean()), 4),
        "kept_correct": round(float((kept & right).mean()), 4),
        "non_mug_unknown": round(float((every > threshold).mean()), 4),
        "non_mug_unknown_by_source": {
            name: round(float((s > threshold).mean()), 4) for name, s in scores.items()
        },
        "non_mug_counts": {name: len(s) for name, s in scores.items()},
    }


def format_unknown(figures: dict[str, Any]) -> str:
    sources = ", ".join(
        f"{name} {share:.1%}" for name, share in figures["non_mug_unknown_by_source"].items()
    )
    return (
        f"unknown threshold {figures['threshold']:.3f}: mug photos kept {figures['kept']:.2%} "
        f"({figures['kept_correct']:.2%} kept with the right label); non-mug validation images "
        f"answered unknown {figures['non_mug_unknown']:.2%} ({sources})"
    )
