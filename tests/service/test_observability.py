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
        metric(text, "mugs_http_requests_total", **ok)
        == metric(before, "mugs_http_requests_total", **ok) + 1
    )
    assert (
        metric(text, "mugs_rejected_requests_total", reason="not_an_image")
        == metric(before, "mugs_rejected_requests_total", reason="not_an_image") + 1
    )
    assert metric(text, "mugs_model_batch_images_count") > metric(
        before, "mugs_model_batch_images_count"
    )
    assert metric(text, "mugs_model_inference_seconds_count") >= 1
    assert metric(text, "mugs_http_request_seconds_count", route="/predict") >= 2


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    given = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    generated = client.get("/health")
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    hostile = client.get("/health", headers={"X-Request-ID": 'x" injected {}'})
    assert hostile.headers["x-request-id"] != 'x" injected {}'
