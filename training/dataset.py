"""Folders of photos, one folder per class -> uint8 image arrays and labels, through the
service's decoder. The classes come from the data, never from the code.

A data folder is either a class tree (`<class>/<photos>`) or holds `train/` and `test/` (or
`eval/`) class trees. A class folder's name is its label; a leading number (`0white`) fixes
the order and is dropped from the label; numbered classes come first, in their numbers'
order, the others after them alphabetically. Several data folders are merged by label.
Photos may be of any size and any format the service accepts; files below a class folder
are read recursively, hidden names left out. Every problem is one DataError line naming the
path it concerns.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from service.cpus import usable_cpus
from service.imaging import ImageError, decode_image
from service.runtime import MAX_CLASSES, MIN_CLASSES, label_problem

log = logging.getLogger(__name__)

DATA_DIR_ENV = "MUGS_DATA_DIR"
TRAIN_SPLIT = "train"
# Later versions of the public mug dataset call the test split `eval/`.
TEST_SPLITS = ("test", "eval")
TEST_FRACTION = 0.2  # of each class, when the data has no test split of its own
# A class of a tree without test/ gives one photo to test, one to the calibration hold-out
# and needs one to train on.
MIN_PHOTOS_TO_SPLIT = 3
MIN_TRAINING_PHOTOS = 2  # one to train on, one held out for calibration
# Folder names spelt otherwise than the label they stand for, renamed unless --rename says
# otherwise: the public mug dataset's `3transparant` is the class the service has always
# answered `transparent`.
DEFAULT_RENAMES = {"transparant": "transparent"}
_NUMBERED = re.compile(r"^(\d+)[\s_.-]*(.*)$")


class DataError(Exception):
    """The data on disk is not usable; the message names the path and what is wrong."""


@dataclass(frozen=True)
class LabelledImages:
    """Decoded images with their labels (indices into `class_names`) and source paths, in a
    stable order."""

    images: np.ndarray  # uint8 [N, size, size, 3]
    labels: np.ndarray  # int32 [N]
    paths: tuple[str, ...]
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, counts, strict=True)}

    def subset(self, indices: np.ndarray) -> LabelledImages:
        return LabelledImages(
            images=self.images[indices],
            labels=self.labels[indices],
            paths=tuple(self.paths[i] for i in indices),
            class_names=self.class_names,
        )

    def split_holdout(self, fraction: float, seed: int) -> tuple[LabelledImages, LabelledImages]:
        """(the rest, a held-out share `fraction` of every class, at least one photo of each),
        drawn with `seed`. The held-out photos fit what must not be fitted on the training
        photos or on test/: the calibration temperature and the unknown threshold."""
        held = stratified_choice(self.labels, fraction, seed)
        mask = np.zeros(len(self), dtype=bool)
        mask[held] = True
        return self.subset(np.flatnonzero(~mask)), self.subset(np.flatnonzero(mask))

    @staticmethod
    def concatenate(parts: list[LabelledImages]) -> LabelledImages:
        return LabelledImages(
            images=np.concatenate([p.images for p in parts]),
            labels=np.concatenate([p.labels for p in parts]),
            paths=tuple(path for p in parts for path in p.paths),
            class_names=parts[0].class_names,
        )


def stratified_choice(labels: np.ndarray, fraction: float, seed: int) -> list[int]:
    """Indices of a seeded share `fraction` of every class (at least one, never all)."""
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = min(len(members) - 1, max(1, round(len(members) * fraction)))
        chosen.extend(rng.choice(members, count, replace=False).tolist())
    return sorted(chosen)


@dataclass(frozen=True)
class ClassFolder:
    label: str
    number: int | None  # the leading number of its name, if any
    path: Path


@dataclass
class Photos:
    """Photo files with their class labels, not yet decoded."""

    files: list[tuple[str, str]] = field(default_factory=list)  # (path, label)

    def labels(self) -> list[str]:
        return [label for _, label in self.files]


@dataclass(frozen=True)
class DataPlan:
    """Which files train and which test, with the classes in order: what the commands load.
    `split` records a split made here (None when the data brought its own test/)."""

    class_names: tuple[str, ...]
    train: Photos
    test: Photos | None
    sources: dict[str, int]  # each data folder as given -> photos taken from it
    split: dict[str, object] | None = None


def default_data_dir() -> Path:
    """`$MUGS_DATA_DIR` if set, else `data/`."""
    return Path(os.environ.get(DATA_DIR_ENV, "data"))


def parse_label(name: str, renames: dict[str, str]) -> tuple[str, int | None]:
    """A class folder's name -> (label, number): `0white` -> (`white`, 0); renamed by
    `renames` (folder label -> label)."""
    match = _NUMBERED.match(name)
    label, number = (match.group(2), int(match.group(1))) if match else (name, None)
    return renames.get(label, label), number


def class_folders(root: Path, renames: dict[str, str] | None = None) -> list[ClassFolder]:
    """The class folders directly below `root`, with their labels (not yet ordered)."""
    root = _existing_dir(root)
    renames = DEFAULT_RENAMES if renames is None else renames
    folders: dict[str, ClassFolder] = {}
    for child in sorted(root.iterdir()):
        if not child.is_dir() or child.name.startswith("."):
            continue
        label, number = parse_label(child.name, renames)
        if problem := label_problem(label):
            raise DataError(f"{child}: the folder name {child.name!r} gives no label ({problem})")
        if label in folders:
            raise DataError(f"{child}: label {label!r} is also the label of {folders[label].path}")
        folders[label] = ClassFolder(label, number, child)
    return list(folders.values())


def photo_files(folder: Path) -> list[Path]:
    """Every file below a class folder, recursively, sorted; hidden names left out."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and not any(p.startswith(".") for p in path.relative_to(folder).parts)
    )


def class_order(folders: Iterable[ClassFolder]) -> tuple[str, ...]:
    """Labels in order: numbered first by number, then the others alphabetically. One label
    must not carry two numbers, nor two labels one number."""
    numbers: dict[str, ClassFolder] = {}
    labels: set[str] = set()
    for folder in folders:
        labels.add(folder.label)
        if folder.number is None:
            continue
        known = numbers.get(folder.label)
        if known is not None and known.number != folder.number:
            raise DataError(
                f"{folder.path}: label {folder.label!r} is numbered {folder.number} here and "
                f"{known.number} in {known.path}"
            )
        numbers[folder.label] = folder
    by_number: dict[int, ClassFolder] = {}
    for folder in numbers.values():
        other = by_number.setdefault(folder.number, folder)  # type: ignore[arg-type]
        if other.label != folder.label:
            raise DataError(
                f"{folder.path}: number {folder.number} also numbers {other.label!r} "
                f"({other.path}); each class needs its own"
            )
    numbered = [f.label for f in sorted(numbers.values(), key=lambda f: f.number or 0)]
    return tuple(numbered + sorted(labels - set(numbered)))


def plan_dataset(
    data_dirs: Sequence[tuple[str, Path]],
    seed: int,
    split_off_test: bool,
    renames: dict[str, str] | None = None,
) -> DataPlan:
    """The classes and files of `data_dirs` ((name as given, local folder) pairs), merged by
    label. A folder with `train/` contributes it to training and its test/ (or eval/) to
    testing; any other folder is a class tree whose photos train, or, with
    `split_off_test`, are split with `seed`: TEST_FRACTION of each class to test."""
    train, test, unsplit = Photos(), Photos(), Photos()
    given_test = False
    folders: list[ClassFolder] = []
    flat_folders: list[ClassFolder] = []  # of class trees without a test split
    sources: dict[str, int] = {}
    for name, root in data_dirs:
        root = _existing_dir(root)
        if (root / TRAIN_SPLIT).is_dir():
            trees = [(root / TRAIN_SPLIT, train)]
            test_dir = next((root / t for t in TEST_SPLITS if (root / t).is_dir()), None)
            if test_dir is not None:
                trees.append((test_dir, test))
                given_test = True
        else:
            trees = [(root, unsplit)]
        count = 0
        for tree, photos in trees:
            found = class_folders(tree, renames)
            if not found:
                raise DataError(f"{tree}: no class folders (one folder of photos per class)")
            for folder in found:
                files = photo_files(folder.path)
                if not files:
                    raise DataError(f"{folder.path}: class folder is empty")
                photos.files.extend((str(path), folder.label) for path in files)
                count += len(files)
            folders.extend(found)
            if photos is unsplit:
                flat_folders.extend(found)
        sources[name] = count
    class_names = class_order(folders)
    if len(class_names) < MIN_CLASSES:
        roots = ", ".join(str(root) for _, root in data_dirs)
        raise DataError(
            f"{roots}: {len(class_names)} class ({', '.join(class_names)}); at least "
            f"{MIN_CLASSES} class folders are needed"
        )
    if len(class_names) > MAX_CLASSES:
        raise DataError(f"{data_dirs[0][1]}: {len(class_names)} classes; at most {MAX_CLASSES}")
    split = None
    if split_off_test and unsplit.files:
        _check_counts(unsplit, flat_folders, MIN_PHOTOS_TO_SPLIT, "to split into train and test")
        chosen = set(stratified_choice(_indices(unsplit, class_names), TEST_FRACTION, seed))
        for index, item in enumerate(unsplit.files):
            (test if index in chosen else train).files.append(item)
        split = {
            "seed": seed,
            "test_fraction": TEST_FRACTION,
            "test": [path for i, (path, _) in enumerate(unsplit.files) if i in chosen],
            "train": [path for i, (path, _) in enumerate(unsplit.files) if i not in chosen],
        }
    else:
        train.files.extend(unsplit.files)
    _check_counts(train, folders, MIN_TRAINING_PHOTOS, "in training (to train on and to calibrate)")
    has_test = given_test or split is not None
    return DataPlan(class_names, train, test if has_test else None, sources, split)


def load_photos(
    photos: Photos, class_names: Sequence[str], size: int, skip_bad: bool = False
) -> LabelledImages:
    """Decode `photos` at `size` through the service's decoder, in threads. With `skip_bad`,
    unreadable files are skipped with one warning listing each; otherwise the first one is
    an error naming it. A label outside `class_names` is an error."""
    index = {name: i for i, name in enumerate(class_names)}
    for path, label in photos.files:
        if label not in index:
            raise DataError(
                f"{Path(path).parent}: class {label!r} is not one of the model's: "
                f"{', '.join(class_names)}"
            )

    def decode(path: str) -> np.ndarray | str:
        try:
            return decode_image(Path(path).read_bytes(), size)
        except (ImageError, OSError) as error:
            return str(error)

    with ThreadPoolExecutor(usable_cpus()) as pool:
        decoded = list(pool.map(decode, [path for path, _ in photos.files]))
    images, labels, paths, skipped = [], [], [], []
    for (path, label), result in zip(photos.files, decoded, strict=True):
        if isinstance(result, str):
            if not skip_bad:
                raise DataError(f"{path}: not a readable image ({result})")
            skipped.append(f"{path}: {result}")
            continue
        images.append(result)
        labels.append(index[label])
        paths.append(path)
    if skipped:
        log.warning("skipped %d unreadable file(s):\n  %s", len(skipped), "\n  ".join(skipped))
    empty = sorted(set(label for _, label in photos.files) - {class_names[i] for i in labels})
    if empty:
        raise DataError(f"class {empty[0]!r} has no readable image (of {len(photos.files)} files)")
    return LabelledImages(
        images=np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8),
        labels=np.asarray(labels, dtype=np.int32),
        paths=tuple(paths),
        class_names=tuple(class_names),
    )


def load_folder(
    folder: Path, class_names: Sequence[str], size: int, skip_bad: bool = False
) -> LabelledImages:
    """One class tree (for example a test/ folder) decoded against a model's `class_names`."""
    photos = Photos()
    for found in class_folders(folder):
        files = photo_files(found.path)
        if not files:
            raise DataError(f"{found.path}: class folder is empty")
        photos.files.extend((str(path), found.label) for path in files)
    if not photos.files:
        raise DataError(f"{folder}: no class folders (one folder of photos per class)")
    return load_photos(photos, class_names, size, skip_bad)


def parse_renames(items: Sequence[str] | None) -> dict[str, str]:
    """`--rename FOLDER_LABEL=LABEL` items, over DEFAULT_RENAMES (`x=x` keeps a name)."""
    renames = dict(DEFAULT_RENAMES)
    for item in items or ():
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            raise DataError(f"--rename {item!r}: expected FOLDER_LABEL=LABEL")
        renames[old] = new
    return renames


def _indices(photos: Photos, class_names: Sequence[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(class_names)}
    return np.asarray([index[label] for label in photos.labels()], dtype=np.int32)


def _check_counts(photos: Photos, folders: list[ClassFolder], least: int, purpose: str) -> None:
    """Every class among `folders` has at least `least` of `photos`; else one line naming
    its folder."""
    counts: dict[str, int] = {}
    for label in photos.labels():
        counts[label] = counts.get(label, 0) + 1
    for folder in folders:
        count = counts.get(folder.label, 0)
        if count < least:
            raise DataError(
                f"{folder.path}: {count} photo(s) of {folder.label!r}; at least {least} are "
                f"needed {purpose}"
            )


def _existing_dir(path: Path) -> Path:
    if not path.is_dir():
        raise DataError(f"{path}: folder not found")
    return path
