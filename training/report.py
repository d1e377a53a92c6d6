"""Metrics of a model on labelled photos, and metrics.json, written next to a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

METRICS_FILE = "metrics.json"
ECE_BINS = 10
# What `classification_metrics` returns: metrics.json's "evaluation".
CLASSIFICATION_KEYS = (
    "accuracy", "ece", "n", "errors", "per_class", "confusion_matrix", "class_names"
)  # fmt: skip


def classification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, class_names: tuple[str, ...] | list[str]
) -> dict[str, Any]:
    """Accuracy, per-class precision/recall and the confusion matrix (rows = true class)."""
    n_classes = len(class_names)
    predicted = probabilities.argmax(axis=1)
    matrix = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(matrix, (labels, predicted), 1)
    per_class = {}
    for index, name in enumerate(class_names):
        true_positive = int(matrix[index, index])
        predicted_as = int(matrix[:, index].sum())
        actual = int(matrix[index, :].sum())
        per_class[name] = {
            "precision": round(true_positive / predicted_as, 4) if predicted_as else 0.0,
            "recall": round(true_positive / actual, 4) if actual else 0.0,
            "support": actual,
        }
    return {
        "accuracy": round(float((predicted == labels).mean()), 4) if len(labels) else 0.0,
        "ece": round(expected_calibration_error(labels, probabilities), 4),
        "n": len(labels),
        "errors": int((predicted != labels).sum()),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
        "class_names": list(class_names),
    }


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """ECE over ECE_BINS equal-width bins of the top probability: how far, on average over
    the photos, the stated confidence is from the accuracy actually reached at it."""
    if not len(labels):
        return 0.0
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    bins = np.minimum((confidence * ECE_BINS).astype(int), ECE_BINS - 1)
    gap = 0.0
    for b in np.unique(bins):
        members = bins == b
        gap += members.sum() * abs(correct[members].mean() - confidence[members].mean())
    return float(gap / len(labels))


def write_report(output_dir: Path, report: dict[str, Any]) -> None:
    """metrics.json: every figure of the training run (training.report_page shows them)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / METRICS_FILE).write_text(json.dumps(report, indent=2) + "\n")


def format_metrics(metrics: dict[str, Any]) -> str:
    """A human-readable table of `classification_metrics` output."""
    names = metrics["class_names"]
    width = max(len(name) for name in names) + 2
    lines = [
        f"accuracy {metrics['accuracy']:.2%} on {metrics['n']} photos ({metrics['errors']} wrong), "
        f"calibration error (ECE) {metrics['ece']:.3f}",
        "",
        f"{'':{width}}precision  recall  support",
    ]
    for name in names:
        row = metrics["per_class"][name]
        lines.append(
            f"{name:{width}}{row['precision']:>9.3f}  {row['recall']:>6.3f}  {row['support']:>7}"
        )
    lines += ["", "confusion matrix (rows = true, columns = predicted)"]
    lines.append(f"{'':{width}}" + "".join(f"{name:>{width}}" for name in names))
    for name, row in zip(names, metrics["confusion_matrix"], strict=True):
        lines.append(f"{name:{width}}" + "".join(f"{count:>{width}}" for count in row))
    return "\n".join(lines)
