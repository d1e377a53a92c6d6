"""What the training commands share: their options, and turning known failures into one
clear line on stderr instead of a traceback."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.runtime import DEFAULT_MODEL_NAME, ModelLoadError
from service.storage import StorageError, fetch_folder, is_remote, upload_folder
from training.dataset import (
    DataError,
    DataPlan,
    LabelledImages,
    default_data_dir,
    load_photos,
    parse_renames,
    plan_dataset,
)
from training.publish import next_version_folder
from training.train import RECIPES, TrainConfig

# Vertex AI custom training sets this to the gs:// folder where the job's model belongs.
VERTEX_MODEL_DIR_ENV = "AIP_MODEL_DIR"


def training_parser(description: str, default_output: Path) -> argparse.ArgumentParser:
    defaults = TrainConfig()
    output = os.environ.get(VERTEX_MODEL_DIR_ENV) or str(default_output)
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--data-dir",
        action="append",
        help="a folder of class folders, or with train/ and test/ (or eval/) ones; local or "
        "gs://bucket/prefix; repeat to merge several by class name (default $MUGS_DATA_DIR, "
        "else data/)",
    )
    recipes = "; ".join(
        f"{name}: {recipe.epochs} epochs, {recipe.members} network{'s' * (recipe.members > 1)}"
        for name, recipe in RECIPES.items()
    )
    parser.add_argument(
        "--epochs", type=int, help=f"passes over the photos (default: the recipe's; {recipes})"
    )
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--image-size",
        type=int,
        default=defaults.image_size,
        help=f"the network's input side in pixels (default {defaults.image_size})",
    )
    parser.add_argument(
        "--members",
        type=int,
        help="networks in the ensemble (default: the recipe's; 1 is the cheapest)",
    )
    parser.add_argument(
        "--recipe",
        choices=list(RECIPES),
        help="plain-ground: a small subject on a plain ground, as the mugs; full-frame: the "
        "subject fills the photo (default: chosen from the photos' corners)",
    )
    parser.add_argument(
        "--rename",
        action="append",
        metavar="FOLDER_LABEL=LABEL",
        help="label a class folder otherwise than its name says (default: transparant=transparent)",
    )
    parser.add_argument("--name", help="the model's name in URLs (default: the data folder's)")
    parser.add_argument("--title", help="what the page calls the model, e.g. 'Which mug is it?'")
    parser.add_argument("--description", help="the page's one line under the title")
    parser.add_argument(
        "--output",
        "--export-dir",
        dest="output",
        default=output,
        help="where the model and its report are written, local or gs://bucket/prefix "
        f"(default ${VERTEX_MODEL_DIR_ENV} when set, else {default_output})",
    )
    parser.add_argument(
        "--next-version",
        action="store_true",
        help="--output is a base path of numbered versions: publish as the next one, made "
        "visible to a polling server only once complete",
    )
    parser.add_argument(
        "--skip-bad-files",
        action="store_true",
        help="skip unreadable image files with a warning instead of stopping",
    )
    return parser


def config_from(args: argparse.Namespace) -> TrainConfig:
    for option in ("epochs", "batch_size", "members"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            raise DataError(f"--{option.replace('_', '-')} must be at least 1")
    if not 16 <= args.image_size <= 1024:
        raise DataError("--image-size must be between 16 and 1024 pixels")
    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        image_size=args.image_size,
        members=args.members,
        recipe=args.recipe,
    )


@dataclass(frozen=True)
class TrainingData:
    """What a training command read: the plan, the decoded photos, and names for reports."""

    plan: DataPlan
    train: LabelledImages
    test: LabelledImages | None
    data_dirs: list[str]  # as given

    @property
    def trained_on(self) -> str:
        return " + ".join(self.data_dirs)


def read_training_data(args: argparse.Namespace, split_off_test: bool) -> TrainingData:
    """The photos of every --data-dir (a gs:// one copied down once), planned and decoded at
    --image-size through the service's decoder."""
    given = args.data_dir or [str(default_data_dir())]
    local = [(name, fetch_folder(name)) for name in given]
    plan = plan_dataset(local, args.seed, split_off_test, parse_renames(args.rename))
    # Reports name the folders as given (a bucket, not its temporary copy).
    for name, path in local:
        if is_remote(name):
            plan = _renamed(plan, str(path), name)
    size, skip = args.image_size, args.skip_bad_files
    train = load_photos(plan.train, plan.class_names, size, skip)
    test = load_photos(plan.test, plan.class_names, size, skip) if plan.test else None
    return TrainingData(plan, train, test, list(given))


def about_model(args: argparse.Namespace, data: TrainingData) -> dict[str, Any]:
    """The metadata training records about the model: its name (--name, else the first data
    folder's), title and description (--title, --description), and the data it learnt from."""
    return {
        "name": args.name or model_name_for(data.data_dirs[0]),
        "title": args.title,
        "description": args.description,
        "data_sources": data.plan.sources,
    }


def model_name_for(location: str) -> str:
    """A URL-safe name from a data folder's last path part (`.../mugs` -> `mugs`)."""
    last = location.rstrip("/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", last).strip("-_.")[:64]
    return name or DEFAULT_MODEL_NAME


def write_split(output: Path, plan: DataPlan) -> None:
    """The split training.task made (none when the data brought its test/): which file went
    where, so the figures can be checked and the split repeated."""
    if plan.split is not None:
        output.mkdir(parents=True, exist_ok=True)
        (output / SPLIT_FILE).write_text(json.dumps(plan.split, indent=1) + "\n")


SPLIT_FILE = "split.json"


def _renamed(plan: DataPlan, local: str, given: str) -> DataPlan:
    """`plan` with paths below the temporary copy `local` named below `given` instead, in
    the split record only (the files themselves are read from the copy)."""
    if plan.split is None:
        return plan
    split = {
        key: [path.replace(local, given.rstrip("/"), 1) for path in value]
        if isinstance(value, list)
        else value
        for key, value in plan.split.items()
    }
    return DataPlan(plan.class_names, plan.train, plan.test, plan.sources, split)


@contextmanager
def output_folder(location: str, next_version: bool = False) -> Iterator[Path]:
    """A local folder to write the model into; a `gs://` location gets a temporary one,
    uploaded when the block ends without error. With `next_version`, `location` is a base
    path and the model becomes its next numbered version, visible only once complete."""
    if next_version:
        with next_version_folder(location) as (local, target):
            yield local
        print(f"published as {target}")
        return
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
