"""A folder of class folders -> uint8 image arrays and labels, through the service's decoder.

Layout: `<split>/<digit><anything>/<image files>`; the leading digit is the label
(`0white 1black 2blue 3transparant`). Every problem names the path it concerns.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.imaging import CLASS_NAMES, ImageError, decode_image

log = logging.getLogger(__name__)

DATA_DIR_ENV = "MUGS_DATA_DIR"
TRAIN_SPLIT = "train"
# Later versions of the public dataset call the test split `eval/`.
TEST_SPLITS = ("test", "eval")


class DataError(Exception):
    """The data on disk is not usable; the message names the path and what is wrong."""


@dataclass(frozen=True)
class LabelledImages:
    """Decoded images with their labels and source paths, in a stable order."""

    images: np.ndarray  # uint8 [N, 64, 64, 3]
    labels: np.ndarray  # int32 [N]
    paths: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(CLASS_NAMES))
        return {name: int(n) for name, n in zip(CLASS_NAMES, counts, strict=True)}

    def subset(self, indices: np.ndarray) -> LabelledImages:
        return LabelledImages(
            images=self.images[indices],
            labels=self.labels[indices],
            paths=tuple(self.paths[i] for i in indices),
        )

    def split_holdout(self, fraction: float, seed: int) -> tuple[LabelledImages, LabelledImages]:
        """(the rest, a held-out share `fraction` of every class, at least one photo of each),
        drawn with `seed`. The
        held-out photos fit what must not be fitted on the training photos or on test/:
        the calibration temperature."""
        rng = np.random.default_rng(seed)
        held: list[int] = []
        for label in np.unique(self.labels):
            members = np.flatnonzero(self.labels == label)
            count = min(len(members) - 1, max(1, round(len(members) * fraction)))
            held.extend(rng.choice(members, count, replace=False).tolist())
        mask = np.zeros(len(self), dtype=bool)
        mask[held] = True
        return self.subset(np.flatnonzero(~mask)), self.subset(np.flatnonzero(mask))

    @staticmethod
    def concatenate(parts: list[LabelledImages]) -> LabelledImages:
        return LabelledImages(
            images=np.concatenate([p.images for p in parts]),
            labels=np.concatenate([p.labels for p in parts]),
            paths=tuple(path for p in parts for path in p.paths),
        )


def default_data_dir() -> Path:
    """`$MUGS_DATA_DIR` if set, else `data/`."""
    return Path(os.environ.get(DATA_DIR_ENV, "data"))


def training_split(data_dir: Path) -> Path:
    return _existing_dir(data_dir / TRAIN_SPLIT)


def evaluation_split(data_dir: Path) -> Path:
    """`test/`, or `eval/` as later versions of the dataset name it."""
    for name in TEST_SPLITS:
        if (data_dir / name).is_dir():
            return data_dir / name
    raise DataError(f"{data_dir}: no test split found (expected a folder named test/ or eval/)")


def class_folders(split_dir: Path) -> dict[int, Path]:
    """Map label -> class folder; every label 0..3 exactly once."""
    split_dir = _existing_dir(split_dir)
    folders: dict[int, Path] = {}
    for child in sorted(split_dir.iterdir()):
        if not child.is_dir() or child.name.startswith("."):
            continue
        if not child.name[0].isdigit():
            raise DataError(f"{child}: class folder names must start with their label digit")
        label = int(child.name[0])
        if label >= len(CLASS_NAMES):
            raise DataError(f"{child}: label {label} is out of range 0..{len(CLASS_NAMES) - 1}")
        if label in folders:
            raise DataError(f"{child}: label {label} is also used by {folders[label]}")
        folders[label] = child
    missing = [f"{i} ({CLASS_NAMES[i]})" for i in range(len(CLASS_NAMES)) if i not in folders]
    if missing:
        raise DataError(f"{split_dir}: missing class folder(s) for label {', '.join(missing)}")
    return folders


def load_split(split_dir: Path, skip_bad: bool = False) -> LabelledImages:
    """Decode every image below `split_dir`. With `skip_bad`, unreadable files are
    skipped with one warning listing each; otherwise the first one is an error."""
    images: list[np.ndarray] = []
    labels: list[int] = []
    paths: list[str] = []
    skipped: list[str] = []
    for label, folder in class_folders(split_dir).items():
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise DataError(f"{folder}: class folder is empty")
        readable = 0
        for path in files:
            try:
                images.append(decode_image(path.read_bytes()))
            except (ImageError, OSError) as error:
                if not skip_bad:
                    raise DataError(f"{path}: not a readable image ({error})") from error
                skipped.append(f"{path}: {error}")
                continue
            labels.append(label)
            paths.append(str(path))
            readable += 1
        if not readable:
            raise DataError(f"{folder}: class folder has no readable image")
    if skipped:
        log.warning("skipped %d unreadable file(s):\n  %s", len(skipped), "\n  ".join(skipped))
    return LabelledImages(
        images=np.stack(images),
        labels=np.asarray(labels, dtype=np.int32),
        paths=tuple(paths),
    )


def _existing_dir(path: Path) -> Path:
    if not path.is_dir():
        raise DataError(f"{path}: folder not found")
    return path
