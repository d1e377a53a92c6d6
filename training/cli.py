"""What the training commands share: their options, and turning known failures into one
clear line on stderr instead of a traceback."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from service.runtime import ModelLoadError
from training.dataset import DataError, default_data_dir
from training.train import TrainConfig


def training_parser(description: str, default_output: Path) -> argparse.ArgumentParser:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help="folder with train/ and test/ (or eval/); default $MUGS_DATA_DIR, else data/",
    )
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--output",
        "--export-dir",
        dest="output",
        type=Path,
        default=default_output,
        help=f"where the model and its report are written (default {default_output})",
    )
    parser.add_argument(
        "--skip-bad-files",
        action="store_true",
        help="skip unreadable image files with a warning instead of stopping",
    )
    return parser


def config_from(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)


def run_command(main: Callable[[], None]) -> None:
    """Run a command's main; data and model problems end it with one line and exit 2."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    for noisy in ("tensorflow", "absl"):  # SavedModel writing logs renamed inputs at INFO
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        main()
    except (DataError, ModelLoadError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
