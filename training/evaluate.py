"""`python -m training.evaluate [--model-dir DIR] [--json] FOLDER`: accuracy of any exported
model (default: the bundled one) on any folder of class folders."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from service.runtime import DEFAULT_MODEL_DIR, load_predictor
from training.cli import run_command
from training.dataset import load_split
from training.report import classification_metrics, format_metrics

BATCH = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path, help="a folder of class folders, e.g. data/test")
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--skip-bad-files", action="store_true")
    args = parser.parse_args()
    data = load_split(args.folder, skip_bad=args.skip_bad_files)
    predictor = load_predictor(args.model_dir)
    probabilities = np.concatenate(
        [predictor.predict(data.images[i : i + BATCH]) for i in range(0, len(data), BATCH)]
    )
    metrics = classification_metrics(data.labels, probabilities)
    metrics["model_version"] = predictor.metadata.model_version
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"model {metrics['model_version']} on {args.folder}\n{format_metrics(metrics)}")


if __name__ == "__main__":
    run_command(main)
