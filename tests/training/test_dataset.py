"""Loading folders of class folders: labels, splits, and every bad-data error."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from service.imaging import CLASS_NAMES
from training.dataset import DataError, class_folders, evaluation_split, load_split, training_split


def copy_tiny(tiny_data_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the tiny dataset, to break in each test."""
    target = tmp_path / "mugs"
    shutil.copytree(tiny_data_dir, target, symlinks=False)
    return target


def test_real_test_split_labels_and_counts(data_dir: Path) -> None:
    data = load_split(evaluation_split(data_dir))
    assert data.images.shape == (500, 64, 64, 3) and data.images.dtype == np.uint8
    assert data.class_counts() == dict.fromkeys(CLASS_NAMES, 125)
    # The label is the folder's leading digit.
    for path, label in zip(data.paths, data.labels, strict=True):
        assert Path(path).parent.name[0] == str(label)


def test_class_folders_map_digits_to_labels(data_dir: Path) -> None:
    folders = class_folders(training_split(data_dir))
    assert {label: path.name for label, path in folders.items()} == {
        0: "0white",
        1: "1black",
        2: "2blue",
        3: "3transparant",
    }


def test_eval_is_accepted_in_place_of_test(tiny_data_dir: Path, tmp_path: Path) -> None:
    root = copy_tiny(tiny_data_dir, tmp_path)
    (root / "test").rename(root / "eval")
    assert evaluation_split(root) == root / "eval"
    assert len(load_split(evaluation_split(root))) == 16


def test_missing_split_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=str(tmp_path / "train")):
        training_split(tmp_path)
    with pytest.raises(DataError, match="test/ or eval/"):
        evaluation_split(tmp_path)


def test_missing_class_folder(tiny_data_dir: Path, tmp_path: Path) -> None:
    root = copy_tiny(tiny_data_dir, tmp_path)
    shutil.rmtree(root / "train" / "2blue")
    with pytest.raises(DataError, match=r"missing class folder.*2 \(blue\)"):
        load_split(root / "train")


def test_empty_class_folder(tiny_data_dir: Path, tmp_path: Path) -> None:
    root = copy_tiny(tiny_data_dir, tmp_path)
    for photo in (root / "train" / "1black").iterdir():
        photo.unlink()
    with pytest.raises(DataError, match=r"1black: class folder is empty"):
        load_split(root / "train")


def test_unreadable_file_names_its_path(tiny_data_dir: Path, tmp_path: Path) -> None:
    root = copy_tiny(tiny_data_dir, tmp_path)
    bad = root / "train" / "0white" / "notes.jpg"
    bad.write_text("not a photo")
    with pytest.raises(DataError, match=str(bad)):
        load_split(root / "train")


def test_skip_bad_files_warns_with_each_path(
    tiny_data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = copy_tiny(tiny_data_dir, tmp_path)
    bad_files = [root / "train" / "0white" / "a.jpg", root / "train" / "3transparant" / "b.png"]
    for bad in bad_files:
        bad.write_bytes(b"\x00" * 10)
    with caplog.at_level(logging.WARNING):
        data = load_split(root / "train", skip_bad=True)
    assert len(data) == 16
    for bad in bad_files:
        assert str(bad) in caplog.text


def test_folder_without_label_digit_is_refused(tiny_data_dir: Path, tmp_path: Path) -> None:
    root = copy_tiny(tiny_data_dir, tmp_path)
    (root / "train" / "misc").mkdir()
    with pytest.raises(DataError, match="must start with their label digit"):
        load_split(root / "train")
