"""Models, data and batch jobs on Cloud Storage, against gcp-storage-emulator: the service
serving from gs:// and from Vertex AI's AIP_STORAGE_URI, a one-epoch training run reading gs://
data and writing into AIP_MODEL_DIR, service.batch from and to gs://, and each failure."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from google.cloud import storage as gcs_client

from service.runtime import ModelMetadata
from service.storage import (
    StorageError,
    fetch_folder,
    list_files,
    read_bytes,
    upload_folder,
)
from tests.conftest import free_port, running_service, start_service, subprocess_env

BUCKET = "mugs-bucket"


@pytest.fixture(scope="module")
def bucket(gcs: str, model_dir: Path, tiny_data_dir: Path) -> str:
    """A bucket holding the bundled model and the tiny dataset."""
    gcs_client.Client().create_bucket(BUCKET)
    upload_folder(model_dir, f"gs://{BUCKET}/models/mugs")
    upload_folder(tiny_data_dir.resolve(), f"gs://{BUCKET}/data/mugs")
    return BUCKET


def test_storage_lists_reads_and_fetches_folders(bucket: str, model_dir: Path) -> None:
    files = list_files(f"gs://{bucket}/models/mugs")
    assert f"gs://{bucket}/models/mugs/metadata.json" in files
    assert f"gs://{bucket}/models/mugs/model.tflite" in files
    local = fetch_folder(f"gs://{bucket}/models/mugs/")
    assert (local / "model.tflite").read_bytes() == (model_dir / "model.tflite").read_bytes()
    assert (
        read_bytes(f"gs://{bucket}/models/mugs/metadata.json")
        == (model_dir / "metadata.json").read_bytes()
    )
    data = list_files(f"gs://{bucket}/data/mugs/train")
    assert len(data) == 16 and all(f.endswith(".jpg") for f in data)


def test_storage_errors_name_the_uri(bucket: str) -> None:
    with pytest.raises(StorageError, match=r"^gs://no-such-bucket/x: no such bucket: no-such"):
        list_files("gs://no-such-bucket/x")
    with pytest.raises(StorageError, match=rf"^gs://{bucket}/nothing: no such folder"):
        fetch_folder(f"gs://{bucket}/nothing")
    with pytest.raises(StorageError, match=rf"^gs://{bucket}/data/mugs: not a model folder"):
        fetch_folder(f"gs://{bucket}/data/mugs", required_file="metadata.json")
    with pytest.raises(StorageError, match=rf"^gs://{bucket}/missing.jpg: not found"):
        read_bytes(f"gs://{bucket}/missing.jpg")


def test_serves_a_model_from_gcs(bucket: str, model_dir: Path, test_photos) -> None:
    version = ModelMetadata.read(model_dir).model_version
    with running_service(MODEL_DIR=f"gs://{bucket}/models/mugs") as (url, _):
        assert httpx2.get(f"{url}/health").json()["model_version"] == version
        status = httpx2.get(f"{url}/v1/models/mugs").json()
        assert status["model_version_status"][0]["version"] == version
        photo, label = test_photos[200]
        answer = httpx2.post(f"{url}/predict", files={"image": photo.read_bytes()}).json()
        assert answer["index"] == label and answer["model_version"] == version


def test_vertex_ai_endpoint_from_aip_storage_uri_answers_a_batch_prediction_request(
    bucket: str, model_dir: Path, test_photos
) -> None:
    """Vertex AI hands the container its model as AIP_STORAGE_URI and its routes and port as
    AIP_*; a batch prediction job with JSONL input of {"b64": ...} lines sends the lines as
    `instances` to AIP_PREDICT_ROUTE, exactly as here."""
    chosen = test_photos[::125]
    instances = [{"b64": base64.b64encode(p.read_bytes()).decode()} for p, _ in chosen]
    env = {
        "AIP_STORAGE_URI": f"gs://{bucket}/models/mugs",
        "AIP_PREDICT_ROUTE": "/v1/endpoints/123/deployedModels/456:predict",
        "AIP_HEALTH_ROUTE": "/v1/endpoints/123/deployedModels/456",
    }
    with running_service(**env) as (url, _):
        assert httpx2.get(url + env["AIP_HEALTH_ROUTE"]).status_code == 200
        response = httpx2.post(url + env["AIP_PREDICT_ROUTE"], json={"instances": instances})
        assert response.status_code == 200, response.text
        predictions = response.json()["predictions"]
        assert [p["classes"] for p in predictions] == [label for _, label in chosen]
        version = ModelMetadata.read(model_dir).model_version
        assert httpx2.get(f"{url}/health").json()["model_version"] == version


def start_up_failure(**env: str) -> str:
    """The one line `python -m service` dies with."""
    process = start_service(capture_stderr=True, PORT=str(free_port()), **env)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1, stderr
    reasons = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(reasons) == 1 and "Traceback" not in stderr, stderr
    return reasons[0]


def test_each_cloud_failure_stops_start_up_with_one_line(bucket: str, tmp_path: Path) -> None:
    assert "gs://nobucket/m: no such bucket: nobucket" in start_up_failure(
        MODEL_DIR="gs://nobucket/m"
    )
    assert f"gs://{bucket}/data/mugs: not a model folder (no metadata.json" in (
        start_up_failure(MODEL_DIR=f"gs://{bucket}/data/mugs")
    )
    assert f"gs://{bucket}/models/none: no such folder" in start_up_failure(
        MODEL_DIR=f"gs://{bucket}/models/none"
    )
    # No emulator and no credentials: what a machine outside Google Cloud without a login sees.
    line = start_up_failure(
        MODEL_DIR=f"gs://{bucket}/models/mugs",
        STORAGE_EMULATOR_HOST="",
        HOME=str(tmp_path),
        GOOGLE_APPLICATION_CREDENTIALS="",
        CLOUDSDK_CONFIG=str(tmp_path),
    )
    assert "no access: no Google Cloud credentials found" in line


def test_vertex_training_job_reads_gcs_data_writes_aip_model_dir_and_is_served(
    bucket: str, test_photos
) -> None:
    model_uri = f"gs://{bucket}/vertex/job-1/model"
    command = [
        sys.executable, "-m", "training.task", "--data-dir", f"gs://{bucket}/data/mugs",
        "--epochs", "1", "--batch-size", "8",
    ]  # fmt: skip
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=subprocess_env(AIP_MODEL_DIR=model_uri),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"uploaded to {model_uri}" in result.stdout
    files = list_files(model_uri)
    for name in ("metadata.json", "metrics.json", "model.tflite", "saved_model/saved_model.pb"):
        assert f"{model_uri}/{name}" in files
    version = json.loads(read_bytes(f"{model_uri}/metadata.json"))["model_version"]
    with running_service(MODEL_DIR=model_uri) as (url, _):
        assert httpx2.get(f"{url}/health").json()["model_version"] == version
        photo, _ = test_photos[0]
        assert httpx2.post(f"{url}/predict", files={"image": photo.read_bytes()}).status_code == 200


def run_batch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.batch", *args],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=300,
    )


def check_lines(lines: list[dict], expected_paths: list[str], version: str) -> None:
    assert [line["path"] for line in lines] == sorted(expected_paths)
    good = [line for line in lines if "error" not in line]
    bad = [line for line in lines if "error" in line]
    assert len(bad) == 1 and bad[0]["path"].endswith("broken.jpg")
    assert "not a recognisable image" in bad[0]["error"]
    for line in good:
        assert set(line) == {"path", "label", "index", "probabilities", "novelty", "model_version"}
        assert line["model_version"] == version
        assert abs(sum(line["probabilities"].values()) - 1) < 1e-4
    # The folder digit is the label: the bundled model gets nearly all of them.
    right = sum(line["index"] == int(Path(line["path"]).parent.name[0]) for line in good)
    assert right >= len(good) - 1


def test_batch_from_gcs_to_gcs(bucket: str, model_dir: Path) -> None:
    client = gcs_client.Client()
    client.bucket(bucket).blob("data/mugs/test/2blue/broken.jpg").upload_from_string(b"nope")
    source = f"gs://{bucket}/data/mugs/test"
    dest = f"gs://{bucket}/predictions/run-1.jsonl"
    result = run_batch(source, dest)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "16 classified, 1 errors" in result.stderr
    lines = [json.loads(line) for line in read_bytes(dest).decode().splitlines()]
    check_lines(lines, list_files(source), ModelMetadata.read(model_dir).model_version)


def test_batch_from_local_folder_to_local_file(
    tiny_data_dir: Path, model_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "photos"
    for photo in sorted((tiny_data_dir / "test").rglob("*.jpg")):
        target = source / "nested" / photo.parent.name / photo.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(photo.read_bytes())
    (source / "nested" / "0white" / "broken.jpg").write_bytes(b"not an image")
    dest = tmp_path / "out" / "predictions.jsonl"
    result = run_batch(str(source), str(dest))
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in dest.read_text().splitlines()]
    paths = [str(path) for path in source.rglob("*") if path.is_file()]
    check_lines(lines, paths, ModelMetadata.read(model_dir).model_version)


def test_batch_with_a_missing_source_is_one_line(bucket: str, tmp_path: Path) -> None:
    result = run_batch(f"gs://{bucket}/nowhere-bucket-x", str(tmp_path / "out.jsonl"))
    # An empty prefix is an empty run, not an error; a missing bucket is.
    assert result.returncode == 0 and "0 classified" in result.stderr
    result = run_batch("gs://no-such-bucket-y/photos", str(tmp_path / "out.jsonl"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: gs://no-such-bucket-y/photos: no such bucket: no-such-bucket-y"
    )
