"""Back into training: corrections sent to /feedback, exported by `training.feedback` as class
folders, and trained on beside the original photos for an epoch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from service.runtime import ModelMetadata
from tests.conftest import subprocess_env

pytestmark = pytest.mark.training


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=subprocess_env(), timeout=600
    )


def test_corrections_become_training_photos(
    model_dir: Path, tiny_data_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    settings = Settings(
        model_dir=model_dir,
        prediction_log=str(log),
        prediction_log_sample=1.0,
        prediction_log_flush_s=0.2,
    )
    whites = sorted((tiny_data_dir / "test" / "0white").iterdir())
    blacks = sorted((tiny_data_dir / "test" / "1black").iterdir())
    with TestClient(create_app(settings)) as client:
        for photo in whites[:2]:  # answered, logged, not corrected
            assert client.post("/predict", files={"image": photo.read_bytes()}).status_code == 200
        for photo, label in [(p, "white") for p in whites] + [(p, "black") for p in blacks]:
            response = client.post(
                "/feedback", files={"image": photo.read_bytes()}, data={"label": label}
            )
            assert response.status_code == 202
        client.post("/feedback", files={"image": whites[0].read_bytes()}, data={"label": "none"})

    out = tmp_path / "from-feedback"
    result = run("-m", "training.feedback", str(log), str(out), "--include-confident", "0.5")
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["corrections"] == {"black": 4, "none": 1, "white": 4}
    assert manifest["confident_answers"]["counts"] == {"white": 2}
    assert "not checked by a person" in manifest["confident_answers"]["note"]
    assert len(list((out / "white").iterdir())) == 6 and len(list((out / "black").iterdir())) == 4
    assert len(list((out / ".none").iterdir())) == 1

    model = tmp_path / "retrained"
    result = run(
        "-m", "training.full", "--data-dir", str(tiny_data_dir), "--data-dir", str(out),
        "--epochs", "1", "--batch-size", "8", "--members", "1", "--output", str(model),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    metadata = ModelMetadata.read(model)
    assert metadata.data_sources == {str(tiny_data_dir): 32, str(out): 10}
    report = json.loads((model / "metrics.json").read_text())
    held = report["held_out_counts"]
    assert report["train_counts"]["white"] + held["white"] == 8 + 6
    assert report["train_counts"]["black"] + held["black"] == 8 + 4
