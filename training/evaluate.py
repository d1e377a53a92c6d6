"""`python -m training.evaluate [--model-dir DIR] [--corruptions] [--json] [--html FILE] FOLDER`:
accuracy and calibration of any exported model (default: the bundled one) on any folder of
class folders, with `--corruptions` under the photo-condition suite of `training.corruptions`;
and for a model with a novelty score, its `unknown` answer: the share of FOLDER's photos kept
with their label, and the share of the validation images of none of the classes
(`training.non_mugs`) answered unknown. `--html` also writes the report page
(`training.report_page`) for what was measured."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from service.runtime import (
    DEFAULT_MODEL_DIR,
    NOVELTY,
    PROBABILITIES,
    Predictor,
    load_predictor,
)
from training.cli import run_command
from training.corruptions import DEFAULT_SEED, evaluate_suite, format_suite
from training.dataset import LabelledImages, load_folder
from training.non_mugs import corners_are_background, validation_non_mugs
from training.novelty import format_unknown, novelty_by_source, unknown_figures
from training.report import CLASSIFICATION_KEYS, classification_metrics, format_metrics
from training.report_page import Evidence, report_title, write_report_html


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path, help="a folder of class folders, e.g. data/test")
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--corruptions", action="store_true", help="also evaluate under the photo-condition suite"
    )
    parser.add_argument("--corruption-seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--precision",
        choices=["auto", "float", "int8"],
        default="auto",
        help="the LiteRT model to evaluate (default: what the service serves, as MODEL_PRECISION)",
    )
    parser.add_argument("--skip-bad-files", action="store_true")
    parser.add_argument("--html", type=Path, help="also write the report page to this file")
    args = parser.parse_args()
    predictor = load_predictor(args.model_dir, precision=args.precision)
    class_names = predictor.metadata.class_names
    data = load_folder(
        args.folder, class_names, predictor.metadata.input_size, skip_bad=args.skip_bad_files
    )
    outputs = predictor.output_batches(data.images)
    metrics = classification_metrics(data.labels, outputs[PROBABILITIES], class_names)
    metrics["model_version"] = predictor.metadata.model_version
    metrics["precision"] = predictor.precision
    novelty = predictor.metadata.novelty
    non_class_scores = None
    if novelty is not None:
        corners = corners_are_background(data.images)
        non_class_scores = novelty_by_source(
            predictor, validation_non_mugs(data.images, seed=1, corners=corners)
        )
        metrics["unknown"] = unknown_figures(
            novelty["threshold"], outputs, data.labels, non_class_scores
        )
    if args.corruptions:
        metrics["corruptions"] = evaluate_suite(
            predictor.predict_batches, data.images, data.labels, args.corruption_seed
        )
    if args.html:
        write_html(args.html, args.folder, metrics, data, outputs, non_class_scores, predictor)
    if args.json:
        print(json.dumps(metrics))
        return
    version, precision = metrics["model_version"], metrics["precision"]
    print(f"model {version} ({precision}) on {args.folder}\n{format_metrics(metrics)}")
    if "unknown" in metrics:
        print(format_unknown(metrics["unknown"]))
    if args.corruptions:
        print(f"\nunder the photo-condition suite:\n{format_suite(metrics['corruptions'])}")


def write_html(
    path: Path,
    folder: Path,
    metrics: dict[str, Any],
    data: LabelledImages,
    outputs: dict[str, np.ndarray],
    non_class_scores: dict[str, np.ndarray] | None,
    predictor: Predictor,
) -> None:
    """The report page of this evaluation, shaped as training's metrics.json."""
    metadata, unknown = predictor.metadata, metrics.get("unknown")
    report = {
        "model_version": metadata.model_version,
        "evaluated_on": f"{folder} ({predictor.precision} model)",
        # Beside it, so a reader sees when the photos evaluated on were trained on too.
        "trained_on": metadata.metrics.get("trained_on"),
        "eval_counts": data.class_counts(),
        "evaluation": {key: metrics[key] for key in CLASSIFICATION_KEYS},
        "unknown": unknown and unknown | {"non_mug_validation_unknown": unknown["non_mug_unknown"]},
        "calibration": metadata.calibration,
        "corruptions": metrics.get("corruptions"),
    }
    evidence = Evidence(
        data.images,
        data.labels,
        outputs[PROBABILITIES],
        outputs.get(NOVELTY),
        None if non_class_scores is None else np.concatenate(list(non_class_scores.values())),
    )
    write_report_html(path, report, evidence, report_title(metadata))
    print(f"report page written to {path}")


if __name__ == "__main__":
    run_command(main)
