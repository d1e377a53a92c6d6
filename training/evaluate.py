"""`python -m training.evaluate [--model-dir DIR] [--corruptions] [--json] FOLDER`: accuracy and
calibration of any exported model (default: the bundled one) on any folder of class folders,
with `--corruptions` under the photo-condition suite of `training.corruptions`; and for a
model with a novelty score, its `unknown` answer: the share of FOLDER's photos kept with their
label, and the share of the non-mug validation images (`training.non_mugs`) answered unknown."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from service.runtime import DEFAULT_MODEL_DIR, PROBABILITIES, load_predictor
from training.cli import run_command
from training.corruptions import DEFAULT_SEED, evaluate_suite, format_suite
from training.dataset import load_folder
from training.non_mugs import corners_are_background, validation_non_mugs
from training.novelty import format_unknown, unknown_figures
from training.report import classification_metrics, format_metrics


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
    if novelty is not None:
        metrics["unknown"] = unknown_figures(
            predictor,
            novelty["threshold"],
            outputs,
            data.labels,
            validation_non_mugs(data.images, seed=1, corners=corners_are_background(data.images)),
        )
    if args.corruptions:
        metrics["corruptions"] = evaluate_suite(
            predictor.predict_batches, data.images, data.labels, args.corruption_seed
        )
    if args.json:
        print(json.dumps(metrics))
        return
    version, precision = metrics["model_version"], metrics["precision"]
    print(f"model {version} ({precision}) on {args.folder}\n{format_metrics(metrics)}")
    if "unknown" in metrics:
        print(format_unknown(metrics["unknown"]))
    if args.corruptions:
        print(f"\nunder the photo-condition suite:\n{format_suite(metrics['corruptions'])}")


if __name__ == "__main__":
    run_command(main)
