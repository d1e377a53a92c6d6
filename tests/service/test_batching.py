"""The batch queue: concurrent requests share model calls, and every answer goes back to the
request it belongs to, in order, with bad uploads failing alone."""

from __future__ import annotations

import asyncio
import base64
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import numpy as np
import pytest

from service.batching import MicroBatcher
from service.imaging import decode_image
from service.runtime import load_predictor
from tests.conftest import MUG_SIZE


def image_sums(images: np.ndarray) -> np.ndarray:
    """A cheap, exact stand-in computation: each image's pixel sum as one row."""
    return images.reshape(len(images), -1).sum(axis=1, keepdims=True).astype(np.float64)


def run_batched(requests: list[np.ndarray], max_size: int, max_wait_ms: float):
    calls: list[int] = []

    async def scenario():
        batcher = MicroBatcher(
            image_sums, max_size, max_wait_ms, observe=lambda n, _: calls.append(n)
        )
        await batcher.start()
        results = await asyncio.gather(*(batcher.predict(r) for r in requests))
        await batcher.stop()
        return results

    return asyncio.run(scenario()), calls


def test_concurrent_requests_share_calls_and_get_their_own_rows() -> None:
    rng = np.random.default_rng(0)
    requests = [
        rng.integers(0, 255, (int(n), 2, 2, 3), dtype=np.uint8) for n in rng.integers(1, 5, 40)
    ]
    results, calls = run_batched(requests, max_size=16, max_wait_ms=20)
    for request, result in zip(requests, results, strict=True):
        np.testing.assert_array_equal(result, image_sums(request))
    assert sum(calls) == sum(len(r) for r in requests)
    assert len(calls) < len(requests)  # coalesced
    assert max(calls) <= 16 + 3  # a request is never split; the queue flushes at 16


def test_a_lone_request_waits_at_most_max_wait() -> None:
    async def scenario() -> float:
        batcher = MicroBatcher(image_sums, max_size=64, max_wait_ms=30)
        await batcher.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await batcher.predict(np.zeros((1, 2, 2, 3), np.uint8))
        elapsed = loop.time() - started
        await batcher.stop()
        return elapsed

    assert asyncio.run(scenario()) < 0.030 + 0.050  # the wait plus generous scheduling slack


def test_a_failing_model_call_fails_its_requests_not_the_queue() -> None:
    def fragile(images: np.ndarray) -> np.ndarray:
        if (images == 13).any():
            raise ValueError("unlucky batch")
        return image_sums(images)

    async def scenario():
        batcher = MicroBatcher(fragile, max_size=1, max_wait_ms=0)
        await batcher.start()
        bad = batcher.predict(np.full((1, 2, 2, 3), 13, np.uint8))
        good = batcher.predict(np.ones((1, 2, 2, 3), np.uint8))
        results = await asyncio.gather(bad, good, return_exceptions=True)
        await batcher.stop()
        return results

    bad, good = asyncio.run(scenario())
    assert isinstance(bad, ValueError)
    np.testing.assert_array_equal(good, [[12.0]])


def test_many_concurrent_http_clients_each_get_their_own_answer(
    live_url: str, model_dir: Path, test_photos: list[tuple[Path, int]]
) -> None:
    """64 clients at once over real HTTP, single images, batches and bad uploads mixed;
    each answer is checked against the model called directly on that request's photos."""
    photos = [photo for photo, _ in test_photos[::7]]
    expected = load_predictor(model_dir).predict(
        np.stack([decode_image(p.read_bytes(), MUG_SIZE) for p in photos])
    )

    def one_request(i: int) -> None:
        with httpx2.Client(base_url=live_url, timeout=60) as client:
            if i % 5 == 4:  # a bad upload among good ones fails alone
                response = client.post("/predict", files={"image": b"not an image %d" % i})
                assert response.status_code == 400
                return
            if i % 3 == 0:  # a batch request of three photos
                chosen = [(i + k) % len(photos) for k in range(3)]
                body = {
                    "images": [base64.b64encode(photos[c].read_bytes()).decode() for c in chosen]
                }
                response = client.post("/predict", json=body)
                rows = [p["probabilities"] for p in response.json()["predictions"]]
            else:
                chosen = [i % len(photos)]
                response = client.post("/predict", files={"image": photos[chosen[0]].read_bytes()})
                rows = [response.json()["probabilities"]]
            assert response.status_code == 200
            for c, row in zip(chosen, rows, strict=True):
                np.testing.assert_allclose(list(row.values()), expected[c], atol=1e-5)

    with ThreadPoolExecutor(max_workers=64) as pool:
        for future in [pool.submit(one_request, i) for i in range(256)]:
            future.result()


@pytest.mark.parametrize("max_size", [1, 4])
def test_small_queue_limits_still_answer_everything(max_size: int) -> None:
    requests = [np.full((2, 1, 1, 3), i, np.uint8) for i in range(10)]
    results, calls = run_batched(requests, max_size=max_size, max_wait_ms=1)
    assert [float(r[0, 0]) for r in results] == [3.0 * i for i in range(10)]
    assert sum(calls) == 20
