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
    """Train on `train_data`, evaluate on `eval_data` if given, export the model with its
    report to `export_dir`. Returns the report (also written as metrics.json)."""
    started = time.monotonic()
    model = train(config, train_data, eval_data)
    wall_time = time.monotonic() - started
    report: dict[str, Any] = {
        "trained_on": trained_on,
        "train_counts": train_data.class_counts(),
        "config": config.as_dict(),
        "seed": config.seed,
        "epochs": config.epochs,
        "wall_time_s": round(wall_time, 1),
        "train_accuracy": classification_metrics(
            train_data.labels, predict_probabilities(model, train_data.images)
        )["accuracy"],
    }
    if eval_data is not None:
        evaluation = classification_metrics(
            eval_data.labels, predict_probabilities(model, eval_data.images)
        )
        report |= {
            "evaluated_on": evaluated_on,
            "eval_counts": eval_data.class_counts(),
            "evaluation": evaluation,
        }
        print(f"\nEvaluation on {evaluated_on}:\n{format_metrics(evaluation)}")
    summary_keys = ("trained_on", "train_counts", "epochs", "seed", "train_accuracy")
    summary = {key: report[key] for key in summary_keys}
    if eval_data is not None:
        summary |= {"evaluated_on": evaluated_on, "eval_accuracy": report["evaluation"]["accuracy"]}
    metadata = export_model(model, export_dir, summary)
    report["model_version"] = metadata.model_version
    write_report(export_dir, report)
    print(f"\nTrained in {wall_time:.0f}s; model {metadata.model_version} written to {export_dir}")
    return report
