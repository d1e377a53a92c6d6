"""Overload is shed, not queued: with more images waiting than MAX_WAITING_IMAGES, or more
requests in progress than MAX_ACTIVE_REQUESTS, new requests get 503 with Retry-After at
once, the refusals are counted, and the service answers normally again as soon as the queue
clears. A client that sends again before its Retry-After is up waits in line for a place
instead, up to that time."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient

from service.backoff import LONGEST_S
from tests.conftest import running_service
from tests.service.test_shutdown import multipart_request, read_response

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


def test_a_client_that_comes_back_early_waits_in_line_for_the_next_place(
    model_dir: Path, test_photos
) -> None:
    """With room for one request: while a slow upload holds the place, a client is refused
    and told to wait; sent again at once on the same connection, its request is held, not
    refused, and let in as soon as the slow one is answered."""
    (photo, label), (other, other_label) = test_photos[10], test_photos[300]
    with running_service(MODEL_DIR=str(model_dir), MAX_ACTIVE_REQUESTS="1") as (url, _):
        port = int(url.rsplit(":", 1)[1])
        slow_request = multipart_request(port, [photo.read_bytes()])
        slow = socket.create_connection(("127.0.0.1", port), timeout=20)
        slow.sendall(slow_request[:-300])  # let in at its headers; its body half sent
        time.sleep(0.3)
        with httpx2.Client(base_url=url, timeout=20) as client:  # one connection, kept alive
            files = {"image": other.read_bytes()}
            refused = client.post("/predict", files=files)
            assert refused.status_code == 503
            assert int(refused.headers["retry-after"]) >= 1
            with ThreadPoolExecutor(1) as pool:
                again = pool.submit(client.post, "/predict", files=files)
                time.sleep(0.25)  # well within its Retry-After: held, not answered
                assert not again.done()
                slow.sendall(slow_request[-300:])
                slow_answer = read_response(slow)
                held = again.result()
        slow.close()
        metrics = httpx2.get(f"{url}/metrics").text
    assert slow_answer.startswith(b"HTTP/1.1 200") and f'"index":{label}'.encode() in slow_answer
    assert held.status_code == 200, held.text
    assert held.json()["index"] == other_label
    assert 'classifier_rejected_requests_total{reason="overloaded"} 1.0' in metrics
