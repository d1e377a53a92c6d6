"""Train, measure, export: the steps `training.task` and `training.full` share."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from training.dataset import LabelledImages
from training.export import export_model
from training.report import classification_metrics, format_metrics, write_report
from training.train import TrainConfig, predict_probabilities, train


def train_and_export(
    config: TrainConfig,
    train_data: LabelledImages,
    export_dir: Path,
    trained_on: str,
    eval_data: LabelledImages | None = None,
    evaluated_on: str | None = None,
) -> dict[str, Any]:
    """Train on `train_data`, evaluate on `eval_data`, export the model with its report to
    `export_dir`. Without `eval_data` (training.full) the report describes the training data
    itself, labelled as such. Returns the report (also written as metrics.json)."""
    started = time.monotonic()
    model = train(config, train_data, eval_data)
    wall_time = time.monotonic() - started
    train_metrics = classification_metrics(
        train_data.labels, predict_probabilities(model, train_data.images)
    )
    if eval_data is None:
        eval_data, evaluation = train_data, train_metrics
        evaluated_on = f"{trained_on} (the training data itself: not a measure of generalisation)"
    else:
        evaluation = classification_metrics(
            eval_data.labels, predict_probabilities(model, eval_data.images)
        )
    print(f"\nEvaluation on {evaluated_on}:\n{format_metrics(evaluation)}")
    report: dict[str, Any] = {
        "trained_on": trained_on,
        "train_counts": train_data.class_counts(),
        "config": config.as_dict(),
        "seed": config.seed,
        "epochs": config.epochs,
        "wall_time_s": round(wall_time, 1),
        "train_accuracy": train_metrics["accuracy"],
        "evaluated_on": evaluated_on,
        "eval_counts": eval_data.class_counts(),
        "evaluation": evaluation,
    }
    summary_keys = ("trained_on", "train_counts", "epochs", "seed", "train_accuracy")
    summary = {key: report[key] for key in summary_keys}
    summary |= {"evaluated_on": evaluated_on, "eval_accuracy": evaluation["accuracy"]}
    metadata = export_model(model, export_dir, summary)
    report["model_version"] = metadata.model_version
    write_report(export_dir, report)
    print(f"\nTrained in {wall_time:.0f}s; model {metadata.model_version} written to {export_dir}")
    return report
