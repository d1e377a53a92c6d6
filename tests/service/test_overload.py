"""Overload is shed, not queued: with more images waiting than MAX_WAITING_IMAGES, or more
requests in progress than MAX_ACTIVE_REQUESTS, new requests get 503 with Retry-After at
once, the refusals are counted, and the service answers normally again as soon as the queue
clears."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient

from service.backoff import LONGEST_S
from tests.conftest import running_service

pytestmark = pytest.mark.slow


async def _burst(url: str, photos: list[bytes], requests: int) -> list[httpx2.Response]:
    files = [("images", photo) for photo in photos]
    async with httpx2.AsyncClient(timeout=30) as client:
        return await asyncio.gather(
            *(client.post(f"{url}/predict", files=files) for _ in range(requests))
        )


@pytest.mark.parametrize(
    "bound",
    [{"MAX_WAITING_IMAGES": "16"}, {"MAX_ACTIVE_REQUESTS": "2"}],
    ids=lambda bound: next(iter(bound)),
)
def test_overload_is_refused_with_503_and_retry_after(
    model_dir: Path, test_photos, bound: dict[str, str]
) -> None:
    """Past either bound: too many images waiting, or too many requests in progress."""
    photos = [photo.read_bytes() for photo, _ in test_photos[::63][:8]]
    with running_service(MODEL_DIR=str(model_dir), **bound) as (url, _):
        responses = asyncio.run(_burst(url, photos, 60))
        statuses = [r.status_code for r in responses]
        assert set(statuses) == {200, 503}, statuses
        for response in responses:
            if response.status_code == 503:
                assert 1 <= int(response.headers["retry-after"]) <= LONGEST_S
                assert response.json()["error"] == "overloaded"
            else:
                assert len(response.json()["predictions"]) == len(photos)
        metrics = httpx2.get(f"{url}/metrics").text
        pattern = r'classifier_rejected_requests_total\{reason="overloaded"\} (\S+)'
        counted = re.search(pattern, metrics)
        assert counted and float(counted.group(1)) == statuses.count(503)
        # The queue cleared: the next request is answered.
        after = httpx2.post(f"{url}/predict", files=[("images", p) for p in photos])
        assert after.status_code == 200


def test_overload_is_refused_at_the_door_before_the_body_is_read(client) -> None:
    """While the pipeline is full, a POST is refused without being parsed (a malformed body
    gets 503, not 400), and the other routes still answer."""
    capacity = client.app.state.capacity
    garbage = {"content": b"not multipart", "headers": {"content-type": "multipart/form-data"}}
    assert client.post("/predict", **garbage).status_code == 400
    capacity.requests += client.app.state.settings.max_active_requests  # as if that many ran
    try:
        # Ten clients, each on its own connection (address and port).
        clients = [TestClient(client.app, client=(f"10.0.0.{i}", 4000)) for i in range(10)]
        first_refused = time.monotonic()
        refused = [other.post("/predict", **garbage) for other in clients]
        assert {r.status_code for r in refused} == {503}
        assert refused[0].json()["error"] == "overloaded"
        # Each refusal is told to wait longer: ten refused in well under two seconds, with
        # at most the one request answered a second before them.
        advised = [int(r.headers["retry-after"]) for r in refused]
        assert advised == sorted(advised) and advised[-1] >= 5, advised
        assert client.get("/health").status_code == 200
        refused = 'classifier_rejected_requests_total{reason="overloaded"}'
        assert refused in client.get("/metrics").text
        # The first client comes back at once, not after its Retry-After: its refusal is held
        # until its time is up, at most OVERLOAD_HOLD_S.
        hold_s = client.app.state.settings.overload_hold_s
        assert hold_s > 0  # the default
        started = time.monotonic()
        again = clients[0].post("/explain", **garbage)
        assert again.status_code == 503
        assert time.monotonic() >= min(first_refused + advised[0], started + hold_s)
    finally:
        capacity.requests -= client.app.state.settings.max_active_requests
    assert client.post("/predict", **garbage).status_code == 400
