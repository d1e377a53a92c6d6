"""The prediction log: a sample of what the service answered, with the photos as uploaded, and
the corrections people send to /feedback, kept in PREDICTION_LOG (a folder or gs:// prefix)
for audit, drift (`service.drift`) and retraining (`training.feedback`).

A sink off the request path: a request hands its entries to a bounded queue and goes on;
one background task writes them in batches (every PREDICTION_LOG_FLUSH_S, or sooner when
BATCH entries wait), each batch one JSONL file and the photos beside it:

    LOG/2026-12-03/140512-3f9c....jsonl            one JSON line an entry
    LOG/2026-12-03/images/<request id>-<n>.jpg     the bytes as uploaded

At most PREDICTION_LOG_MAX_MB of photos wait; past it, entries are dropped and counted. A
write that fails (a bucket down, slow or forbidden) costs no request anything: the batch is
counted as failed and dropped, and logged at most once a minute. Whatever waits is written
when the service stops, within its SIGTERM drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from service.model import Classification
from service.observability import Metrics
from service.storage import StorageError, fetch_folder, join, write_bytes

log = logging.getLogger(__name__)

BATCH = 256  # entries that trigger a write before the flush interval is up
FAILURE_LOG_EVERY_S = 60.0
_SUFFIXES = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}


@dataclass
class Entry:
    record: dict[str, Any]  # the JSON line, less what the writer adds (image, its size)
    image: bytes
    at: dt.datetime


@dataclass(frozen=True)
class LogContext:
    """What the log records of the request an image came in: its ID, its route (the path
    template) and the label the client says is right (`X-Label`), if any."""

    request_id: str
    route: str
    truth: str | None = None

    def record(self, index: int, answer: Classification, version: str) -> dict[str, Any]:
        return {
            "kind": "prediction",
            "request_id": self.request_id,
            "image_index": index,
            "route": self.route,
            "model_version": version,
            "label": answer.label,
            "probabilities": answer.probability_map(),
            "novelty": answer.novelty,
            "truth": self.truth,
        }


class PredictionLog:
    """Sampling, the bounded queue and the background writer."""

    def __init__(
        self,
        location: str,
        sample: float,
        max_bytes: int,
        flush_s: float,
        metrics: Metrics,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.location = location
        self.sample = sample
        self.max_bytes = max_bytes
        self.flush_s = flush_s
        self._metrics = metrics
        self._draw = draw
        self._queue: list[Entry] = []
        self.queued_bytes = 0
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_failure_logged = -FAILURE_LOG_EVERY_S

    def sampled(self) -> bool:
        """Whether the next image answered is logged (PREDICTION_LOG_SAMPLE)."""
        return self.sample > 0 and self._draw() < self.sample

    def offer(self, record: dict[str, Any], image: bytes) -> bool:
        """Queue an entry, or drop it (counted) when the queue is full. Never waits."""
        if self.queued_bytes + len(image) > self.max_bytes:
            self._metrics.log_entries.labels("dropped").inc()
            return False
        self._queue.append(Entry(record, image, dt.datetime.now(dt.UTC)))
        self.queued_bytes += len(image)
        self._metrics.log_entries.labels("queued").inc()
        if len(self._queue) >= BATCH:
            self._wake.set()
        return True

    async def start(self) -> None:
        self._writer = asyncio.create_task(self._run(), name="prediction-log")

    async def stop(self) -> None:
        """Write whatever waits (a write under way finishes first), then stop."""
        if self._writer is None:
            return
        self._stopping = True
        self._wake.set()
        await self._writer
        self._writer = None

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):  # the interval is up: write anyway
                await asyncio.wait_for(self._wake.wait(), self.flush_s)
            self._wake.clear()
            await self._flush()
        await self._flush()

    async def _flush(self) -> None:
        batch, self._queue, self.queued_bytes = self._queue, [], 0
        if batch:
            await asyncio.to_thread(self._write, batch)

    def _write(self, batch: list[Entry]) -> None:
        """One JSONL file and the photos of a batch; a failure drops the batch, counted."""
        try:
            by_day: dict[str, list[str]] = {}
            for entry in batch:
                day = entry.at.strftime("%Y-%m-%d")
                name = f"{entry.record['request_id']}-{entry.record['image_index']}"
                suffix, size = _describe(entry.image)
                image = f"{day}/images/{name}.{suffix}"
                write_bytes(entry.image, join(self.location, image))
                line = entry.record | {"image": image, "image_size": size}
                line["time"] = entry.at.isoformat(timespec="milliseconds")
                by_day.setdefault(day, []).append(json.dumps(line, separators=(",", ":")))
            for day, lines in by_day.items():
                stamp = batch[0].at.strftime("%H%M%S")
                name = f"{day}/{stamp}-{uuid.uuid4().hex[:12]}.jsonl"
                write_bytes(("\n".join(lines) + "\n").encode(), join(self.location, name))
        except (StorageError, OSError) as error:
            self._metrics.log_failures.inc()
            self._metrics.log_entries.labels("failed").inc(len(batch))
            now = time.monotonic()
            if now - self._last_failure_logged >= FAILURE_LOG_EVERY_S:
                self._last_failure_logged = now
                log.warning("prediction log: %d entries not written: %s", len(batch), error)
            return
        self._metrics.log_entries.labels("written").inc(len(batch))


def _describe(image: bytes) -> tuple[str, list[int] | None]:
    """The file suffix and [width, height] of an encoded image, from its header."""
    try:
        with Image.open(io.BytesIO(image)) as opened:
            return _SUFFIXES.get(opened.format or "", "img"), list(opened.size)
    except (OSError, ValueError):
        return "img", None


def read_log(location: str) -> list[dict[str, Any]]:
    """Every entry of a prediction log folder (local, or gs:// copied down first), in the
    order of its files."""
    root = fetch_folder(location)
    lines = []
    for path in sorted(root.rglob("*.jsonl")):
        lines.extend(json.loads(line) for line in path.read_text().splitlines() if line)
    return lines
