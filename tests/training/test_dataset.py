"""Folders of class folders: labels from the names, their order, splits, merging, and the one
line every bad tree stops with."""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import MUG_LABELS, MUG_SIZE, subprocess_env
from training.dataset import (
    TEST_FRACTION,
    DataError,
    load_folder,
    load_photos,
    parse_label,
    parse_renames,
    plan_dataset,
)


def photo(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> Path:
    """A small real image file, its format from the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(sum(colour) + size[0])
    pixels = np.clip(np.array(colour) + rng.normal(0, 8, (size[1], size[0], 3)), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format=path.suffix.lstrip(".").upper())
    path.write_bytes(buffer.getvalue())
    return path


def class_tree(root: Path, classes: dict[str, int]) -> Path:
    """`root/<class>/` with that many photos each, PNG and JPEG of assorted sizes."""
    for index, (name, count) in enumerate(classes.items()):
        for i in range(count):
            suffix = ".png" if i % 2 else ".jpeg"
            photo(root / name / f"{i}{suffix}", (40 * index, 200 - 30 * index, 90), (30 + i, 50))
    return root


def plan(*roots: Path, split: bool = True, renames: dict[str, str] | None = None):
    return plan_dataset([(str(r), r) for r in roots], seed=1, split_off_test=split, renames=renames)


def copy_tiny(tiny_data_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the tiny mug dataset, to break in each test."""
    target = tmp_path / "mugs"
    shutil.copytree(tiny_data_dir, target, symlinks=False)
    return target


def test_mug_folders_keep_their_labels_and_order(data_dir: Path) -> None:
    """`0white 1black 2blue 3transparant`: the numbers fix the order and are dropped, and the
    dataset's spelling of the glass keeps the label the service has always answered."""
    mugs = plan(data_dir)
    assert mugs.class_names == MUG_LABELS
    assert mugs.split is None  # the data brings its own test/
    test = load_photos(mugs.test, mugs.class_names, MUG_SIZE)
    assert test.images.shape == (500, 64, 64, 3) and test.images.dtype == np.uint8
    assert test.class_counts() == dict.fromkeys(MUG_LABELS, 125)
    assert len(mugs.train.files) == 2000 and mugs.sources == {str(data_dir): 2500}


def test_folder_names_become_labels() -> None:
    renames = parse_renames(None)
    assert parse_label("0white", renames) == ("white", 0)
    assert parse_label("3transparant", renames) == ("transparent", 3)
    assert parse_label("12_red apple", renames) == ("red apple", 12)
    assert parse_label("daisy", renames) == ("daisy", None)
    assert parse_label("3transparant", parse_renames(["transparant=transparant"]))[0] == (
        "transparant"
    )


def test_numbered_classes_come_first_then_the_rest_alphabetically(tmp_path: Path) -> None:
    root = class_tree(tmp_path / "d", {"tulip": 3, "2rose": 3, "daisy": 3, "10sunflower": 3})
    assert plan(root).class_names == ("rose", "sunflower", "daisy", "tulip")


def test_a_tree_without_test_is_split_seeded_and_stratified(tmp_path: Path) -> None:
    root = class_tree(tmp_path / "d", {"cat": 10, "dog": 5, "bird": 3})
    first, again = plan(root), plan(root)
    assert first.split == again.split and first.split is not None
    assert first.split["seed"] == 1 and first.split["test_fraction"] == TEST_FRACTION
    by_class = {}
    for path, label in first.test.files:
        by_class.setdefault(label, []).append(path)
    assert {label: len(paths) for label, paths in by_class.items()} == {
        "cat": 2, "dog": 1, "bird": 1
    }  # fmt: skip
    assert sorted(first.split["test"]) == sorted(p for p, _ in first.test.files)
    assert sorted(first.split["train"]) == sorted(p for p, _ in first.train.files)
    assert not set(first.split["test"]) & set(first.split["train"])
    other_seed = plan_dataset([("d", root)], seed=2, split_off_test=True)
    assert other_seed.split["test"] != first.split["test"]
    # training.full splits nothing: every photo trains.
    assert plan(root, split=False).test is None and len(plan(root, split=False).train.files) == 18


def test_photos_of_any_size_and_format_come_out_at_the_asked_size(tmp_path: Path) -> None:
    root = class_tree(tmp_path / "d", {"a": 3, "b": 3})
    photo(root / "a" / "big.webp", (10, 200, 10), (900, 500))
    photo(root / "b" / "nested" / "deep.bmp", (200, 10, 10), (17, 23))  # read recursively
    (root / "b" / ".hidden.png").write_bytes(b"not read")
    data = plan(root, split=False)
    images = load_photos(data.train, data.class_names, 96)
    assert images.images.shape == (8, 96, 96, 3)
    assert images.class_counts() == {"a": 4, "b": 4}


def test_several_data_folders_merge_by_class_name(tmp_path: Path) -> None:
    first = class_tree(tmp_path / "one", {"0cat": 3, "1dog": 3})
    second = class_tree(tmp_path / "two", {"dog": 2, "fox": 3})
    merged = plan(first, second, split=False)
    assert merged.class_names == ("cat", "dog", "fox")
    labels = [label for _, label in merged.train.files]
    assert labels.count("dog") == 5 and labels.count("fox") == 3
    assert merged.sources == {str(first): 6, str(second): 5}


def test_a_tree_with_train_and_test_merges_with_a_flat_one(tiny_data_dir: Path, tmp_path: Path):
    extra = class_tree(tmp_path / "extra", {"black": 3, "white": 3})
    merged = plan(tiny_data_dir, extra)
    assert merged.class_names == MUG_LABELS
    assert len(merged.test.files) == 16 + 2  # the mugs' test/, and a photo a class split off


@pytest.mark.parametrize(
    ("classes", "expected"),
    [
        ({"only": 5}, r"1 class \(only\); at least 2 class folders are needed"),
        ({"cat": 3, "dog": 2}, r"dog: 2 photo\(s\) of 'dog'; at least 3 are needed to split"),
        ({"cat": 3, "unknown": 3}, r"unknown: the folder name 'unknown' gives no label"),
        ({"cat": 3, "0": 3}, r"/0: the folder name '0' gives no label"),
        ({"cat": 3, "dog?": 3}, r"dog\?: the folder name 'dog\?' gives no label"),
        ({"0cat": 3, "0dog": 3}, r"0dog: number 0 also numbers 'cat'"),
        ({"1cat": 3, "cat": 3}, r"label 'cat' is also the label of"),
    ],
)
def test_a_bad_tree_is_one_line_naming_the_path(
    tmp_path: Path, classes: dict[str, int], expected: str
) -> None:
    root = class_tree(tmp_path / "d", classes)
    with pytest.raises(DataError, match=expected) as caught:
        plan(root)
    assert "\n" not in str(caught.value) and str(root) in str(caught.value)


def test_an_empty_class_folder_is_named(tmp_path: Path) -> None:
    root = class_tree(tmp_path / "d", {"cat": 3, "dog": 3})
    (root / "bird").mkdir()
    with pytest.raises(DataError, match=f"^{root / 'bird'}: class folder is empty$"):
        plan(root)


def test_a_class_only_in_test_has_nothing_to_train_on(tiny_data_dir: Path, tmp_path: Path):
    root = copy_tiny(tiny_data_dir, tmp_path)
    photo(root / "test" / "4red" / "a.png", (200, 0, 0))
    with pytest.raises(DataError, match=r"4red: 0 photo\(s\) of 'red'; at least 2 are needed"):
        plan(root)


def test_eval_is_accepted_in_place_of_test(tiny_data_dir: Path, tmp_path: Path) -> None:
    root = copy_tiny(tiny_data_dir, tmp_path)
    (root / "test").rename(root / "eval")
    assert len(plan(root).test.files) == 16


def test_missing_folder_names_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=f"^{tmp_path / 'nowhere'}: folder not found$"):
        plan(tmp_path / "nowhere")


def test_unreadable_file_names_its_path(tiny_data_dir: Path, tmp_path: Path) -> None:
    root = copy_tiny(tiny_data_dir, tmp_path)
    bad = root / "train" / "0white" / "notes.jpg"
    bad.write_text("not a photo")
    data = plan(root)
    with pytest.raises(DataError, match=f"^{bad}: not a readable image"):
        load_photos(data.train, data.class_names, MUG_SIZE)


def test_skip_bad_files_warns_with_each_path(
    tiny_data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = copy_tiny(tiny_data_dir, tmp_path)
    bad_files = [root / "train" / "0white" / "a.jpg", root / "train" / "3transparant" / "b.png"]
    for bad in bad_files:
        bad.write_bytes(b"\x00" * 10)
    data = plan(root)
    with caplog.at_level(logging.WARNING):
        images = load_photos(data.train, data.class_names, MUG_SIZE, skip_bad=True)
    assert len(images) == 16
    for bad in bad_files:
        assert str(bad) in caplog.text


def test_a_folder_is_read_against_a_models_labels(tiny_data_dir: Path, tmp_path: Path) -> None:
    test = load_folder(tiny_data_dir / "test", MUG_LABELS, MUG_SIZE)
    assert test.class_counts() == dict.fromkeys(MUG_LABELS, 4)
    with pytest.raises(DataError, match="class 'blue' is not one of the model's: white, black"):
        load_folder(tiny_data_dir / "test", ("white", "black"), MUG_SIZE)


@pytest.mark.slow  # a training step / a training process
def test_the_command_stops_with_one_line(tmp_path: Path) -> None:
    """What a user sees: `error: <path>: <why>` and nothing else, exit status 2."""
    root = class_tree(tmp_path / "d", {"only": 4})
    result = subprocess.run(
        [sys.executable, "-m", "training.task", "--data-dir", str(root), "--epochs", "1"],
        capture_output=True, text=True, env=subprocess_env(), timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"error: {root}: 1 class (only); at least 2 class folders are needed"]
