"""Prometheus metrics and request IDs."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def metric(text: str, name: str, **labels: str) -> float:
    selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{name}\{{{selector}\}} ([0-9.e+]+)$" if labels else rf"^{name} ([0-9.e+]+)$"
    match = re.search(pattern, text, re.M)
    return float(match.group(1)) if match else 0.0


def test_metrics_count_requests_batches_and_rejections(client: TestClient, test_photos) -> None:
    before = client.get("/metrics").text
    photo = test_photos[0][0].read_bytes()
    assert client.post("/predict", files={"image": photo}).status_code == 200
    assert client.post("/predict", files={"image": b"nope"}).status_code == 400
    after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    ok = {"route": "/predict", "status": "200"}
    assert (
        metric(text, "classifier_http_requests_total", **ok)
        == metric(before, "classifier_http_requests_total", **ok) + 1
    )
    assert (
        metric(text, "classifier_rejected_requests_total", reason="not_an_image")
        == metric(before, "classifier_rejected_requests_total", reason="not_an_image") + 1
    )
    assert metric(text, "classifier_model_batch_images_count") > metric(
        before, "classifier_model_batch_images_count"
    )
    assert metric(text, "classifier_model_inference_seconds_count") >= 1
    assert metric(text, "classifier_http_request_seconds_count", route="/predict") >= 2


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    given = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    generated = client.get("/health")
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    hostile = client.get("/health", headers={"X-Request-ID": 'x" injected {}'})
    assert hostile.headers["x-request-id"] != 'x" injected {}'


def test_one_json_log_line_per_request_without_keys_or_bodies(
    model_dir, test_photos, caplog
) -> None:
    import json
    import logging

    from service.app import create_app
    from service.config import Settings
    from service.observability import JsonFormatter

    settings = Settings(model_dir=model_dir, api_keys="secret-key-987")
    photo = test_photos[0][0].read_bytes()
    with TestClient(create_app(settings)) as client, caplog.at_level(logging.INFO):
        client.post(
            "/predict",
            files={"image": photo},
            headers={"X-API-Key": "secret-key-987", "X-Request-ID": "log-test-1"},
        )
    records = [r for r in caplog.records if r.name == "service.access"]
    assert len(records) == 1
    line = JsonFormatter().format(records[0])
    entry = json.loads(line)
    assert entry["severity"] == "INFO" and entry["request_id"] == "log-test-1"
    assert entry["httpRequest"]["requestMethod"] == "POST"
    assert entry["httpRequest"]["requestUrl"] == "/predict"
    assert entry["httpRequest"]["status"] == 200
    assert entry["httpRequest"]["latency"].endswith("s")
    assert "secret-key-987" not in caplog.text and "secret-key-987" not in line
    assert "\n" not in line
