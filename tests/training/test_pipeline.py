"""The training commands end to end, on a handful of real photos for one epoch, and the
bundled model on the whole test split."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from service.runtime import DEFAULT_MODEL_DIR, ModelMetadata, load_predictor
from tests.conftest import MUG_LABELS as CLASS_NAMES
from tests.conftest import MUG_SIZE, subprocess_env
from tests.report_figures import figures_of
from training.calibration import softmax
from training.corruptions import SUITE
from training.dataset import load_folder, load_photos, plan_dataset
from training.export import export_model
from training.model import build_members, ensemble, serving_model
from training.non_mugs import training_photos
from training.report_page import MAX_MISTAKES
from training.train import TrainConfig, predict_outputs, train

pytestmark = pytest.mark.training


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=subprocess_env(), timeout=300
    )


@pytest.fixture(scope="module")
def one_epoch_model(tiny_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m training.task` for one epoch on 16 photos, exported to a temp folder."""
    output = tmp_path_factory.mktemp("model")
    result = run(
        "-m", "training.task", "--data-dir", str(tiny_data_dir),
        "--epochs", "1", "--batch-size", "8", "--output", str(output),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Evaluation on" in result.stdout and "confusion matrix" in result.stdout
    # The report is not buried: no converter listing, no INFO chatter from SavedModel writing.
    assert "TensorSpec" not in result.stdout
    assert "unsupported characters" not in result.stdout + result.stderr
    return output


def test_task_writes_model_metadata_and_report(one_epoch_model: Path) -> None:
    assert (one_epoch_model / "saved_model" / "saved_model.pb").is_file()
    assert (one_epoch_model / "report.html").stat().st_size > 1000
    metadata = ModelMetadata.read(one_epoch_model)
    assert metadata.class_names == list(CLASS_NAMES) and metadata.model_version.isdigit()
    report = json.loads((one_epoch_model / "metrics.json").read_text())
    assert report["epochs"] == 1 and report["seed"] == TrainConfig().seed
    # One photo of each class's four is held out for the calibration.
    assert report["train_counts"] == dict.fromkeys(CLASS_NAMES, 3)
    assert report["held_out_counts"] == dict.fromkeys(CLASS_NAMES, 1)
    assert report["calibration"]["temperature"] == metadata.calibration["temperature"]
    # The temperature is fitted on the 4 held-out photos as taken and under the suite.
    assert report["calibration"]["n"] == 4 * (1 + 2 * len(SUITE))
    assert report["corruptions"]["n"] == 16
    assert len(report["corruptions"]["conditions"]) == 2 * len(SUITE)
    assert metadata.metrics["corruption_worst"] == report["corruptions"]["worst"]
    evaluation = report["evaluation"]
    assert evaluation["n"] == 16 and 0 <= evaluation["accuracy"] <= 1
    assert set(evaluation["per_class"]) == set(CLASS_NAMES)
    assert np.asarray(evaluation["confusion_matrix"]).sum() == 16
    assert report["wall_time_s"] > 0
    held_out = report["held_out"]  # accuracy on the 4 held-out photos, as taken and the suite
    assert held_out["n"] == 4 and held_out["accuracy"] in (0, 0.25, 0.5, 0.75, 1)
    assert 0 <= held_out["suite_mean_accuracy"] <= 1
    assert metadata.metrics["held_out_accuracy"] == held_out["accuracy"]
    # The unknown threshold keeps 99% of the held-out photos the model answers right (all of
    # them when it answers none right) and is what the service reads.
    unknown = report["unknown"]
    assert metadata.novelty["threshold"] == unknown["threshold"] > 0
    assert metadata.novelty["held_out_right_kept"] >= 0.99
    assert 0 <= unknown["n_right"] <= unknown["n"]
    # ... and is the higher of that and the score under which 8% of fresh non-class images fall.
    sides = (unknown["keeping_threshold"], unknown["non_class_threshold"])
    assert unknown["threshold"] == max(sides)
    assert unknown["non_class_n"] == len(training_photos()) * 30 + 600
    if unknown["chosen_by"] == "non-class images":
        assert unknown["non_class_answered_unknown"] >= 0.92
    # Fitted on the 4 held-out photos as taken, under the suite and on another table.
    assert unknown["n"] == 4 * (1 + 2 * len(SUITE) + 1)
    assert unknown["fitted_on"].endswith("and on another table")
    assert 0 <= unknown["kept_correct"] <= unknown["kept"] <= 1
    assert set(unknown["non_mug_validation_counts"]) == {
        "photos", "generated", "mug_photo_corners"
    }  # fmt: skip
    assert metadata.metrics["non_mug_validation_unknown"] == unknown["non_mug_validation_unknown"]


def test_exported_signatures_agree(one_epoch_model: Path, tiny_data_dir: Path) -> None:
    photos = load_folder(tiny_data_dir / "test", CLASS_NAMES, MUG_SIZE)
    loaded = tf.saved_model.load(str(one_epoch_model / "saved_model"))
    as_float = loaded.signatures["serving_default"](images=tf.constant(photos.images, tf.float32))
    as_uint8 = loaded.signatures["serving_uint8"](images=tf.constant(photos.images))
    encoded = tf.constant([Path(path).read_bytes() for path in photos.paths])
    as_bytes = loaded.signatures["serving_bytes"](bytes=encoded)

    probabilities = as_float["probabilities"].numpy()
    assert probabilities.shape == (16, len(CLASS_NAMES))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(as_uint8["probabilities"].numpy(), probabilities, atol=1e-6)
    np.testing.assert_allclose(as_bytes["probabilities"].numpy(), probabilities, atol=1e-4)
    np.testing.assert_array_equal(as_bytes["classes"].numpy(), probabilities.argmax(axis=1))


def every_runtime_outputs(model_dir: Path, data_dir: Path) -> dict[str, dict]:
    """The exported model's outputs for data_dir's test photos, by every signature of the
    SavedModel and both LiteRT files."""
    photos = load_folder(data_dir / "test", CLASS_NAMES, MUG_SIZE)
    loaded = tf.saved_model.load(str(model_dir / "saved_model"))
    encoded = tf.constant([Path(path).read_bytes() for path in photos.paths])
    return {
        "serving_default": loaded.signatures["serving_default"](
            images=tf.constant(photos.images, tf.float32)
        ),
        "serving_uint8": loaded.signatures["serving_uint8"](images=tf.constant(photos.images)),
        "serving_bytes": loaded.signatures["serving_bytes"](bytes=encoded),
        "litert": load_predictor(model_dir, precision="float").outputs(photos.images),
        "litert-int8": load_predictor(model_dir, precision="int8").outputs(photos.images),
    }


def test_exported_model_applies_the_stored_temperature(tiny_data_dir: Path, tmp_path: Path) -> None:
    """Every signature and LiteRT give softmax(logits / T) with the T in metadata.json. The
    exported graph is what is tested, so the network is an untrained one with T fixed at
    2.5: a one-epoch fit can land on a T near 1 (0.99 once), which would prove nothing."""
    keras.utils.set_random_seed(0)
    model = serving_model(ensemble(build_members(len(CLASS_NAMES), MUG_SIZE)), 2.5)
    export_model(model, tmp_path, {"temperature": 2.5}, CLASS_NAMES)
    temperature = ModelMetadata.read(tmp_path).calibration["temperature"]
    assert temperature == 2.5
    outputs = every_runtime_outputs(tmp_path, tiny_data_dir)
    for name, output in outputs.items():
        logits, probabilities = np.asarray(output["logits"]), np.asarray(output["probabilities"])
        np.testing.assert_allclose(
            probabilities, softmax(logits, temperature), atol=2e-6, err_msg=name
        )
        assert np.abs(probabilities - softmax(logits)).max() > 1e-3, name


def test_every_runtime_computes_the_same_novelty_score(
    one_epoch_model: Path, tiny_data_dir: Path
) -> None:
    """The score is part of the graph: -log of the top softmax of the logits, everywhere."""
    outputs = every_runtime_outputs(one_epoch_model, tiny_data_dir)
    for name, output in outputs.items():
        logits, novelty = np.asarray(output["logits"]), np.asarray(output["novelty"])
        expected = -np.log(softmax(logits).max(axis=1))
        np.testing.assert_allclose(novelty, expected, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(
        outputs["litert"]["novelty"], outputs["serving_default"]["novelty"], atol=1e-4
    )


def test_evaluate_reads_the_exported_model(
    one_epoch_model: Path, tiny_data_dir: Path, tmp_path: Path
) -> None:
    result = run(
        "-m", "training.evaluate", "--model-dir", str(one_epoch_model), "--json",
        "--corruptions", "--precision", "float", str(tiny_data_dir / "test"),
        "--html", str(tmp_path / "report.html"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    page = figures_of((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert page.values["accuracy"] == metrics["accuracy"]
    assert page.confusion == metrics["confusion_matrix"] and page.external == []
    report = json.loads((one_epoch_model / "metrics.json").read_text())
    assert f"<li>Trained on: {report['trained_on']}</li>" in (tmp_path / "report.html").read_text(
        encoding="utf-8"
    )
    # The report's figures are the float model's (its int8 twin's are its parity check).
    assert metrics["n"] == 16 and metrics["precision"] == "float"
    assert metrics["confusion_matrix"] == report["evaluation"]["confusion_matrix"]
    assert metrics["accuracy"] == report["evaluation"]["accuracy"]
    assert metrics["ece"] == pytest.approx(report["evaluation"]["ece"], abs=1e-3)
    # The fixed --json schema of the suite; the exported model gives the training figures.
    assert set(metrics) >= {"accuracy", "ece", "n", "errors", "per_class", "confusion_matrix"}
    suite = metrics["corruptions"]
    assert set(suite) == {"seed", "n", "conditions", "mean_accuracy", "worst"}
    assert set(suite["worst"]) == {"name", "severity", "accuracy"}
    assert [(c["name"], c["severity"]) for c in suite["conditions"]] == [
        (condition.name, severity) for condition in SUITE for severity in (1, 2)
    ]
    for condition in suite["conditions"]:
        assert set(condition) == {"name", "severity", "level", "accuracy", "ece"}
        assert 0 <= condition["accuracy"] <= 1 and 0 <= condition["ece"] <= 1
    unknown = metrics["unknown"]
    assert set(unknown) == {
        "threshold", "kept", "kept_correct", "non_mug_unknown", "non_mug_unknown_by_source",
        "non_mug_counts",
    }  # fmt: skip
    assert unknown["threshold"] == report["unknown"]["threshold"]
    assert unknown["kept"] == report["unknown"]["kept"]


def test_full_trains_on_train_and_test(tiny_data_dir: Path, tmp_path: Path) -> None:
    """`python -m training.full`: the model the service ships, trained on both splits, here
    published as the next version of a base path that already holds version 1."""
    base = tmp_path / "base"
    (base / "1").mkdir(parents=True)
    (base / "1" / "metadata.json").write_text("{}")
    result = run(
        "-m", "training.full", "--data-dir", str(tiny_data_dir),
        "--epochs", "1", "--batch-size", "8", "--output", str(base), "--next-version",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"published as {base / '2'}" in result.stdout
    assert sorted(p.name for p in base.iterdir()) == ["1", "2"]  # no partial folder left
    tmp_path = base / "2"
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["trained_on"] == str(tiny_data_dir)
    # One photo of each class's eight (four per table) is held out for the calibration.
    assert report["train_counts"] == dict.fromkeys(CLASS_NAMES, 7)
    assert report["evaluation"]["n"] == 16
    assert "in the training data" in report["evaluated_on"]
    # Its measure of generalisation: the held-out photos (one of each class), never trained on.
    assert report["held_out"]["n"] == 4
    # Its held-out photos show both tables: the threshold needs no imagined one.
    unknown = report["unknown"]
    assert unknown["n"] == 4 * (1 + 2 * len(SUITE))
    assert not unknown["fitted_on"].endswith("and on another table")
    metadata = ModelMetadata.read(tmp_path)
    assert metadata.novelty["threshold"] == unknown["threshold"]
    assert "in the training data" in metadata.metrics["evaluated_on"]


def test_same_seed_gives_the_same_model(tiny_data_dir: Path) -> None:
    plan = plan_dataset([("tiny", tiny_data_dir)], seed=1, split_off_test=False)
    data = load_photos(plan.train, plan.class_names, MUG_SIZE)
    config = TrainConfig(epochs=1, batch_size=8, seed=7)
    first = predict_outputs(train(config, data).model, data.images)
    second = predict_outputs(train(config, data).model, data.images)
    np.testing.assert_array_equal(first, second)


def test_missing_data_is_one_clear_line(tmp_path: Path) -> None:
    result = run("-m", "training.task", "--data-dir", str(tmp_path / "nowhere"), "--epochs", "1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    reasons = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert reasons == [f"error: {tmp_path / 'nowhere'}: folder not found"]


def test_evaluate_without_a_model_is_one_clear_line(tmp_path: Path, data_dir: Path) -> None:
    result = run("-m", "training.evaluate", "--model-dir", str(tmp_path), str(data_dir / "test"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    reasons = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(reasons) == 1 and "metadata file not found" in reasons[0]


def test_bundled_model_reaches_99_percent_on_test(data_dir: Path) -> None:
    result = run("-m", "training.evaluate", "--json", str(data_dir / "test"))
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert metrics["n"] == 500
    assert metrics["accuracy"] >= 0.99, metrics["confusion_matrix"]
    # The unknown answer's targets: 99% keep their label, 95% of non-mug images are unknown.
    assert metrics["unknown"]["kept_correct"] >= 0.99, metrics["unknown"]
    assert metrics["unknown"]["non_mug_unknown"] >= 0.95, metrics["unknown"]
    served = load_predictor(DEFAULT_MODEL_DIR)  # what the service serves, as MODEL_PRECISION=auto
    assert metrics["model_version"] == served.metadata.model_version
    assert metrics["precision"] == served.precision


def test_training_writes_a_report_page_with_the_reports_figures(one_epoch_model: Path) -> None:
    report = json.loads((one_epoch_model / "metrics.json").read_text())
    figures = figures_of((one_epoch_model / "report.html").read_text(encoding="utf-8"))
    evaluation, unknown = report["evaluation"], report["unknown"]
    assert figures.values == {
        "accuracy": evaluation["accuracy"],
        "ece": evaluation["ece"],
        "errors": evaluation["errors"],
        "threshold": unknown["threshold"],
        "kept-correct": unknown["kept_correct"],
        "non-class-unknown": unknown["non_mug_validation_unknown"],
        "temperature": report["calibration"]["temperature"],
    }
    assert figures.precision == {n: row["precision"] for n, row in evaluation["per_class"].items()}
    assert figures.recall == {n: row["recall"] for n, row in evaluation["per_class"].items()}
    assert figures.confusion == evaluation["confusion_matrix"]
    assert figures.mistakes == min(evaluation["errors"], MAX_MISTAKES)
    # The curves of the one epoch (loss and accuracy), the reliability diagonal, the
    # threshold's trade-off curve with its chosen point; nothing fetched from elsewhere.
    assert report["history"]["loss"] and report["history"]["accuracy"]
    assert figures.polylines["curves"] >= 2 and figures.polylines["reliability"] == 1
    assert figures.polylines["threshold-curve"] == 1 and figures.chosen_points == 1
    assert figures.external == []
