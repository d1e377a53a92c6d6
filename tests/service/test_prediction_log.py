"""The prediction log and corrections: sampling, what a line holds, a log that cannot be
written, bounded memory under load, the flush on SIGTERM, and POST /feedback."""

from __future__ import annotations

import base64
import json
import re
import signal
import threading
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from tests.conftest import running_service

pytestmark = pytest.mark.slow


def logged(root: Path) -> list[dict]:
    """Every line of every JSONL file below `root`."""
    return [
        json.loads(line)
        for path in sorted(root.rglob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([\d.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def log_settings(model_dir: Path, log: str | Path, sample: float, **more) -> Settings:
    return Settings(
        model_dir=model_dir,
        prediction_log=str(log),
        prediction_log_sample=sample,
        prediction_log_flush_s=0.2,
        **more,
    )


def test_the_sample_rate_is_kept_and_each_line_is_the_answer_given(
    model_dir: Path, tmp_path: Path, test_photos
) -> None:
    photos = [photo for photo, _ in test_photos[::25]]  # 20 photos, every mug
    answers = {}
    with TestClient(create_app(log_settings(model_dir, tmp_path / "log", 0.5))) as client:
        for _ in range(20):
            for photo in photos:
                response = client.post(
                    "/predict", files={"image": photo.read_bytes()}, headers={"X-Label": "black"}
                )
                assert response.status_code == 200
                answers[response.headers["x-request-id"]] = (response.json(), photo)
        several = client.post("/predict", files=[("images", p.read_bytes()) for p in photos[:4]])
        answers[several.headers["x-request-id"]] = (several.json(), None)
    lines = logged(tmp_path / "log")
    singles = [line for line in lines if line["request_id"] in answers and line["truth"]]
    # 400 single images at 0.5: 200 expected, sd 10; six sd either way.
    assert 140 <= len(singles) <= 260, len(singles)
    for line in singles:
        answer, photo = answers[line["request_id"]]
        assert line["kind"] == "prediction" and line["route"] == "/predict"
        assert line["label"] == answer["label"] and line["probabilities"] == answer["probabilities"]
        assert line["model_version"] == answer["model_version"] and line["truth"] == "black"
        assert (
            line["novelty"] == answer["novelty"]["score"]
            or abs(line["novelty"] - answer["novelty"]["score"]) < 1e-4
        )
        assert line["image_size"] == [64, 64] and line["image"].endswith(".jpg")
        kept = tmp_path / "log" / line["image"]
        assert kept.read_bytes() == photo.read_bytes()  # the bytes as uploaded
    for line in lines:
        if line["request_id"] == several.headers["x-request-id"]:
            prediction = several.json()["predictions"][line["image_index"]]
            assert line["label"] == prediction["label"]


def test_off_by_default_and_every_image_at_one(model_dir: Path, tmp_path: Path, test_photos):
    photo = test_photos[0][0].read_bytes()
    with TestClient(create_app(log_settings(model_dir, tmp_path / "none", 0.0))) as client:
        for _ in range(10):
            client.post("/predict", files={"image": photo})
    assert logged(tmp_path / "none") == []
    with TestClient(create_app(log_settings(model_dir, tmp_path / "all", 1.0))) as client:
        for _ in range(10):
            client.post("/predict", files={"image": photo})
        instances = {"instances": [{"b64": base64.b64encode(photo).decode()}]}
        client.post("/v1/models/mugs:predict", json=instances)
    routes = [line["route"] for line in logged(tmp_path / "all")]
    assert routes.count("/predict") == 10 and routes.count("/v1/models/{model_name}:predict") == 1


def test_an_unwritable_log_costs_no_request(gcs: str, model_dir: Path, test_photos) -> None:
    """The log's bucket does not exist: every request is answered, the failures counted."""
    photo = test_photos[0][0].read_bytes()
    settings = log_settings(model_dir, "gs://no-such-log-bucket/log", 1.0)
    with TestClient(create_app(settings)) as client:
        for _ in range(30):
            assert client.post("/predict", files={"image": photo}).status_code == 200
        threading.Event().wait(1.0)  # a flush or more
        text = client.get("/metrics").text
        assert metric(text, "classifier_prediction_log_write_failures_total") >= 1
        assert metric(text, 'classifier_prediction_log_entries_total{outcome="failed"}') >= 1
        assert metric(text, 'classifier_prediction_log_entries_total{outcome="written"}') == 0


def test_memory_stays_bounded_under_64_clients_logging_everything(
    model_dir: Path, tmp_path: Path, test_photos
) -> None:
    """A queue of at most PREDICTION_LOG_MAX_MB: past it, entries are dropped and counted."""
    photo = test_photos[0][0].read_bytes()
    env = {
        "PREDICTION_LOG": str(tmp_path / "log"),
        "PREDICTION_LOG_SAMPLE": "1",
        "PREDICTION_LOG_MAX_MB": "0.05",  # about 25 of these photos
        "PREDICTION_LOG_FLUSH_S": "600",
    }
    with running_service(MODEL_DIR=str(model_dir), **env) as (url, _):
        statuses: list[int] = []

        def client() -> None:
            with httpx2.Client(timeout=30) as http:
                for _ in range(8):
                    statuses.append(http.post(f"{url}/predict", files={"image": photo}).status_code)

        threads = [threading.Thread(target=client) for _ in range(64)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        text = httpx2.get(f"{url}/metrics").text
    assert statuses == [200] * 512
    queued = metric(text, 'classifier_prediction_log_entries_total{outcome="queued"}')
    dropped = metric(text, 'classifier_prediction_log_entries_total{outcome="dropped"}')
    assert queued * len(photo) <= 0.05 * 1024 * 1024 and queued + dropped == 512
    assert dropped >= 400


def test_what_waits_is_written_on_sigterm(model_dir: Path, tmp_path: Path, test_photos) -> None:
    photo = test_photos[0][0].read_bytes()
    env = {
        "PREDICTION_LOG": str(tmp_path / "log"),
        "PREDICTION_LOG_SAMPLE": "1",
        "PREDICTION_LOG_FLUSH_S": "600",  # never on the timer
        "SHUTDOWN_DRAIN_S": "0.5",
    }
    with running_service(MODEL_DIR=str(model_dir), **env) as (url, process):
        ids = [
            httpx2.post(f"{url}/predict", files={"image": photo}).headers["x-request-id"]
            for _ in range(20)
        ]
        assert logged(tmp_path / "log") == []
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert sorted(line["request_id"] for line in logged(tmp_path / "log")) == sorted(ids)


def test_feedback_is_kept_whether_or_not_the_answer_was_sampled(
    model_dir: Path, tmp_path: Path, test_photos
) -> None:
    photo = test_photos[0][0].read_bytes()
    with TestClient(create_app(log_settings(model_dir, tmp_path / "log", 0.0))) as client:
        assert client.get("/health").json()["feedback"] is True
        answer = client.post("/predict", files={"image": photo})
        request_id = answer.headers["x-request-id"]
        response = client.post(
            "/feedback",
            files={"image": photo},
            data={"label": "blue", "request_id": request_id},
        )
        assert response.status_code == 202 and response.json()["label"] == "blue"
        as_json = client.post(
            "/feedback", json={"image": base64.b64encode(photo).decode(), "label": "none"}
        )
        assert as_json.status_code == 202
        wrong = client.post("/feedback", files={"image": photo}, data={"label": "green"})
        assert (
            wrong.status_code == 422
            and "white, black, blue, transparent, none" in (wrong.json()["detail"])
        )
        not_a_photo = client.post("/feedback", files={"image": b"text"}, data={"label": "blue"})
        assert not_a_photo.status_code == 400
    lines = logged(tmp_path / "log")
    assert [(line["kind"], line["label"]) for line in lines] == [
        ("feedback", "blue"), ("feedback", "none")
    ]  # fmt: skip
    assert lines[0]["corrects"] == request_id and lines[1]["corrects"] is None
    assert (tmp_path / "log" / lines[0]["image"]).read_bytes() == photo


def test_feedback_without_a_log_is_refused(client: TestClient, test_photos) -> None:
    photo = test_photos[0][0].read_bytes()
    response = client.post("/feedback", files={"image": photo}, data={"label": "blue"})
    assert response.status_code == 404 and response.json()["error"] == "feedback_off"
    assert client.get("/health").json()["feedback"] is False


def test_drift_histograms_are_on_metrics(client: TestClient, test_photos) -> None:
    before = client.get("/metrics").text
    client.post("/predict", files={"image": test_photos[0][0].read_bytes()})
    text = client.get("/metrics").text
    for name in ("classifier_top_probability_count", "classifier_novelty_score_count"):
        assert metric(text, name) == metric(before, name) + 1


def test_the_log_and_its_readers_work_on_cloud_storage(
    gcs: str, model_dir: Path, test_photos
) -> None:
    """Written to a bucket on the emulator, read back by the drift and feedback commands'
    reader."""
    from google.cloud import storage

    from service.predlog import read_log

    storage.Client().create_bucket("prediction-logs")
    photo = test_photos[0][0].read_bytes()
    settings = log_settings(model_dir, "gs://prediction-logs/mugs", 1.0)
    with TestClient(create_app(settings)) as client:
        ids = [
            client.post("/predict", files={"image": photo}).headers["x-request-id"]
            for _ in range(5)
        ]
        client.post("/feedback", files={"image": photo}, data={"label": "black"})
    lines = read_log("gs://prediction-logs/mugs")
    assert sorted(line["request_id"] for line in lines if line["kind"] == "prediction") == sorted(
        ids
    )
    assert [line["label"] for line in lines if line["kind"] == "feedback"] == ["black"]
    names = {blob.name for blob in storage.Client().list_blobs("prediction-logs")}
    assert all(f"mugs/{line['image']}" in names for line in lines)
