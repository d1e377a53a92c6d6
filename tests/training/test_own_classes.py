"""Your own photos and classes, end to end: two datasets that are not the four mugs (the mug
photos regrouped into two classes, and generated pictures of seven at another input size)
are trained for an epoch or two, exported, and served; every route answers with the model's
own labels, through both runtimes and both precisions, and so does the batch command."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from service.runtime import ModelMetadata
from tests.conftest import subprocess_env
from tests.datasets import SEVEN_CLASSES, TWO_CLASSES

pytestmark = pytest.mark.training

SETUPS = [("litert", "float"), ("litert", "int8"), ("tensorflow", "float")]


@pytest.fixture(scope="module", params=["two", "seven"])
def own_model(request: pytest.FixtureRequest) -> tuple[Path, tuple[str, ...], str]:
    """(model folder, its labels, its name) of each dataset."""
    if request.param == "two":
        return request.getfixturevalue("two_class_model"), tuple(TWO_CLASSES), "mugs-by-shade"
    return request.getfixturevalue("seven_class_model"), SEVEN_CLASSES, "shapes"


@contextmanager
def serve(model_dir: Path, runtime: str, precision: str) -> Iterator[TestClient]:
    settings = Settings(model_dir=model_dir, model_runtime=runtime, model_precision=precision)
    with TestClient(create_app(settings)) as client:
        yield client


def sample_photos(model_dir: Path, count: int = 3) -> list[Path]:
    """Test photos of the model's own data, from the split training recorded."""
    split = json.loads((model_dir / "split.json").read_text())
    return [Path(path) for path in split["test"][:count]]


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_training_records_the_classes_the_size_and_the_split(
    own_model: tuple[Path, tuple[str, ...], str],
) -> None:
    model_dir, labels, name = own_model
    metadata = ModelMetadata.read(model_dir)
    assert tuple(metadata.class_names) == labels and metadata.name == name
    split = json.loads((model_dir / "split.json").read_text())
    assert split["seed"] == 1 and len(split["test"]) >= len(labels)
    assert not set(split["test"]) & set(split["train"])
    report = json.loads((model_dir / "metrics.json").read_text())
    assert report["evaluation"]["n"] == len(split["test"])
    assert report["evaluation"]["class_names"] == list(labels)
    assert set(report["train_counts"]) == set(labels)
    assert report["config"]["members"] == 1
    assert list(metadata.data_sources.values()) == [len(split["test"]) + len(split["train"])]


def test_the_input_size_comes_from_the_model(seven_class_model: Path) -> None:
    assert ModelMetadata.read(seven_class_model).input_size == 48


def test_training_prints_its_estimated_time(seven_class_training: tuple[Path, str]) -> None:
    _, printed = seven_class_training
    assert "Estimated training time:" in printed and "for 2 epochs" in printed


@pytest.mark.parametrize(("runtime", "precision"), SETUPS)
def test_every_route_answers_with_the_models_own_labels(
    own_model: tuple[Path, tuple[str, ...], str], runtime: str, precision: str
) -> None:
    model_dir, labels, name = own_model
    photos = sample_photos(model_dir)
    with serve(model_dir, runtime, precision) as client:
        assert client.get("/health").json()["status"] == "ok"
        body = client.post("/predict", files={"image": photos[0].read_bytes()}).json()
        assert list(body["probabilities"]) == list(labels)
        assert sum(body["probabilities"].values()) == pytest.approx(1, abs=1e-4)
        assert body["label"] in (*labels, "unknown")
        several = client.post("/predict", files=[("images", p.read_bytes()) for p in photos])
        assert [list(p["probabilities"]) for p in several.json()["predictions"]] == [
            list(labels)
        ] * len(photos)
        instances = [{"b64": b64(p)} for p in photos]
        tf_serving = client.post(f"/v1/models/{name}:predict", json={"instances": instances})
        assert tf_serving.status_code == 200
        for prediction in tf_serving.json()["predictions"]:
            assert len(prediction["probabilities"]) == len(labels)
            assert 0 <= prediction["classes"] < len(labels)
        assert client.post(
            "/v1/models/mugs:predict", json={"instances": instances}
        ).status_code == (404)
        explained = client.post("/explain", files={"image": photos[1].read_bytes()}).json()
        assert list(explained["probabilities"]) == list(labels)
        heatmap = np.asarray(explained["heatmap"])
        assert heatmap.shape == (8, 8) and heatmap.min() >= 0 and heatmap.max() <= 1
        tf_explained = client.post(f"/v1/models/{name}:explain", json={"instances": instances[:1]})
        assert len(tf_explained.json()["explanations"][0]["probabilities"]) == len(labels)
        status = client.get(f"/v1/models/{name}").json()["model_version_status"]
        assert status[0]["version"] == ModelMetadata.read(model_dir).model_version
        page = client.get("/").text
        for label in labels:
            assert label in page


def test_the_page_says_photo_unless_the_model_has_a_title(
    two_class_model: Path, seven_class_model: Path
) -> None:
    with serve(two_class_model, "litert", "float") as client:
        page = client.get("/").text
        assert "<h1>What is in this photo?</h1>" in page
        assert "mug" not in page.lower().replace("mug-classifier", "")
        assert "dark, light" in page
    with serve(seven_class_model, "litert", "float") as client:
        assert "<h1>Which shape is it?</h1>" in client.get("/").text


def test_openapi_examples_follow_the_model(seven_class_model: Path) -> None:
    with serve(seven_class_model, "litert", "float") as client:
        schema = client.get("/openapi.json").json()
        examples = schema["components"]["schemas"]["Prediction"]["examples"]
        assert list(examples[0]["probabilities"]) == list(SEVEN_CLASSES)
        assert "mug" not in json.dumps(schema).lower().replace("mug-classifier", "")


def test_the_batch_command_answers_with_the_models_labels(
    seven_class_model: Path, seven_class_data: Path, tmp_path: Path
) -> None:
    output = tmp_path / "answers.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "service.batch", str(seven_class_data), str(output),
         "--model-dir", str(seven_class_model)],
        capture_output=True, text=True, env=subprocess_env(), timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(lines) == 7 * 5
    for line in lines:
        assert list(line["probabilities"]) == list(SEVEN_CLASSES)
        assert line["label"] in (*SEVEN_CLASSES, "unknown")
