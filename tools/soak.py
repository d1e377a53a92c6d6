"""`python -m tools.soak [--requests 10000] [--clients 64]`: a bounded soak test on loopback.

Starts the service (or targets --url), then sends a fixed number of requests from many
concurrent clients, mixing good single-image requests, good batch requests and bad uploads.
Every response is checked against its own request: the status, the request ID echoed, and
for good requests the probabilities against the model called directly on the same images.
Reports 5xx, dropped or mismatched responses, and the server's resident memory over time.
Needs the dev extra (httpx2). Exits non-zero if any check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import numpy as np
from PIL import Image

from service.config import Settings
from service.imaging import decode_image
from service.runtime import DEFAULT_MODEL_DIR, load_predictor
from tools.bench import multipart, rss_mb, start_server

TOLERANCE = 1e-4


def sample_images(count: int) -> list[bytes]:
    """Distinct photo-sized JPEGs of several sizes, generated, so no dataset is needed."""
    rng = np.random.default_rng(42)
    images = []
    for i in range(count):
        side = (64, 128, 300)[i % 3]
        base = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        image = Image.fromarray(base, "RGB").resize((side, side), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=85)
        images.append(buffer.getvalue())
    return images


@dataclass
class Tally:
    sent: int = 0
    ok: int = 0
    rejected_as_expected: int = 0
    server_errors: int = 0
    dropped: int = 0
    mismatched: list[str] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)


async def one_request(
    client: httpx2.AsyncClient, i: int, images: list[bytes], expected: np.ndarray, tally: Tally
) -> None:
    request_id = f"soak-{i}"
    headers = {"X-Request-ID": request_id}
    kind = i % 10
    try:
        if kind == 9:  # a bad upload
            response = await client.post(
                "/predict", files={"image": b"garbage %d" % i}, headers=headers
            )
            chosen: list[int] = []
        elif kind == 8:  # a batch of four
            chosen = [(i + k) % len(images) for k in range(4)]
            files = [("images", images[c]) for c in chosen]
            response = await client.post("/predict", files=files, headers=headers)
        else:
            chosen = [i % len(images)]
            response = await client.post(
                "/predict", files={"image": images[chosen[0]]}, headers=headers
            )
    except httpx2.HTTPError as error:
        tally.dropped += 1
        tally.mismatched.append(f"{request_id}: {type(error).__name__}")
        return
    if response.status_code >= 500:
        tally.server_errors += 1
        return
    if response.headers.get("x-request-id") != request_id:
        tally.mismatched.append(f"{request_id}: answered as {response.headers.get('x-request-id')}")
        return
    if not chosen:
        ok = response.status_code == 400 and response.json().get("error") == "not_an_image"
        tally.rejected_as_expected += ok
        if not ok:
            tally.mismatched.append(f"{request_id}: bad upload got {response.status_code}")
        return
    body = response.json()
    rows = (
        [p["probabilities"] for p in body["predictions"]]
        if "predictions" in body
        else [body["probabilities"]]
    )
    got = np.array([list(row.values()) for row in rows])
    if (
        response.status_code != 200
        or got.shape != (len(chosen), 4)
        or np.abs(got - expected[chosen]).max() > TOLERANCE
    ):
        tally.mismatched.append(f"{request_id}: wrong answer")
        return
    tally.ok += 1


async def soak(
    url: str,
    pid: int | None,
    requests: int,
    clients: int,
    images: list[bytes],
    expected: np.ndarray,
) -> Tally:
    tally = Tally()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)

    async def client_loop() -> None:
        async with httpx2.AsyncClient(base_url=url, timeout=30) as client:
            while not queue.empty():
                i = queue.get_nowait()
                await one_request(client, i, images, expected, tally)
                tally.sent += 1
                if pid is not None and tally.sent % 1000 == 0:
                    tally.rss_mb.append(rss_mb(pid))

    await asyncio.gather(*(client_loop() for _ in range(clients)))
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--url", help="soak a running service instead of starting one")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    images = sample_images(60)
    predictor = load_predictor(args.model_dir)
    size = predictor.metadata.input_size
    expected = predictor.predict(np.stack([decode_image(image, size) for image in images]))
    process = None
    url = args.url
    if url is None:
        runtime = Settings().model_runtime
        process, url, _ = start_server(args.model_dir, runtime, multipart("image", images[:1]))
    started = time.monotonic()
    try:
        tally = asyncio.run(
            soak(
                url, process.pid if process else None, args.requests, args.clients, images, expected
            )
        )
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=15)
    elapsed = time.monotonic() - started
    growth = (tally.rss_mb[-1] / tally.rss_mb[0] - 1) if len(tally.rss_mb) >= 2 else None
    report = {
        "requests": tally.sent,
        "clients": args.clients,
        "seconds": round(elapsed, 1),
        "ok": tally.ok,
        "rejected_as_expected": tally.rejected_as_expected,
        "server_errors": tally.server_errors,
        "dropped": tally.dropped,
        "mismatched": len(tally.mismatched),
        "rss_mb_first_1000": round(tally.rss_mb[0], 1) if tally.rss_mb else None,
        "rss_mb_last_1000": round(tally.rss_mb[-1], 1) if tally.rss_mb else None,
        "rss_growth": round(growth, 4) if growth is not None else None,
    }
    for line in tally.mismatched[:10]:
        print(line)
    print(json.dumps(report) if args.json else "\n".join(f"{k:22}{v}" for k, v in report.items()))
    failed = (
        tally.server_errors
        or tally.dropped
        or tally.mismatched
        or (growth is not None and growth >= 0.10)
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
