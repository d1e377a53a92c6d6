"""What the training commands share: their options, and turning known failures into one
clear line on stderr instead of a traceback."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from service.runtime import ModelLoadError
from service.storage import StorageError, is_remote, upload_folder
from training.dataset import DataError, default_data_dir
from training.train import TrainConfig

# Vertex AI custom training sets this to the gs:// folder where the job's model belongs.
VERTEX_MODEL_DIR_ENV = "AIP_MODEL_DIR"


def training_parser(description: str, default_output: Path) -> argparse.ArgumentParser:
    defaults = TrainConfig()
    output = os.environ.get(VERTEX_MODEL_DIR_ENV) or str(default_output)
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--data-dir",
        default=str(default_data_dir()),
        help="folder with train/ and test/ (or eval/), local or gs://bucket/prefix; "
        "default $MUGS_DATA_DIR, else data/",
    )
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--output",
        "--export-dir",
        dest="output",
        default=output,
        help="where the model and its report are written, local or gs://bucket/prefix "
        f"(default ${VERTEX_MODEL_DIR_ENV} when set, else {default_output})",
    )
    parser.add_argument(
        "--skip-bad-files",
        action="store_true",
        help="skip unreadable image files with a warning instead of stopping",
    )
    return parser


def config_from(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)


@contextmanager
def output_folder(location: str) -> Iterator[Path]:
    """A local folder to write the model into; a `gs://` location gets a temporary one,
    uploaded when the block ends without error."""
    if not is_remote(location):
        yield Path(location)
        return
    local = Path(tempfile.mkdtemp(prefix="model-"))
    try:
        yield local
        upload_folder(local, location)
        print(f"uploaded to {location}")
    finally:
        shutil.rmtree(local, ignore_errors=True)


def run_command(main: Callable[[], None]) -> None:
    """Run a command's main; data and model problems end it with one line and exit 2."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    for noisy in ("tensorflow", "absl"):  # SavedModel writing logs renamed inputs at INFO
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        main()
    except (DataError, ModelLoadError, StorageError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
