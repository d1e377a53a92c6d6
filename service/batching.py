"""A queue in front of the model that coalesces concurrent requests into one model call.

The network costs about the same for one image as for dozens, so under load it pays to
answer many requests with one call. The worker takes everything already queued (up to
`max_size` images); if that is less than `max_size` it waits at most `max_wait_ms` after the
oldest request arrived for more, then calls the model once, in its own thread, and hands
each request its own rows. A lone request is delayed by at most `max_wait_ms`.

Requests never share a failure: images are decoded (and bad ones refused) before they are
queued, so a batch holds only valid images.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

BatchObserver = Callable[[int, float], None]  # (images in the call, seconds it took)
# What the model returns for a batch: one array, or named arrays, each with a row per image.
Rows = np.ndarray | dict[str, np.ndarray]


def _slice(rows: Rows, start: int, stop: int) -> Rows:
    if isinstance(rows, dict):
        return {name: value[start:stop] for name, value in rows.items()}
    return rows[start:stop]


@dataclass
class _Pending:
    images: np.ndarray
    future: asyncio.Future[Rows]
    arrived: float = field(default_factory=time.monotonic)


class MicroBatcher:
    def __init__(
        self,
        predict: Callable[[np.ndarray], Rows],
        max_size: int,
        max_wait_ms: float,
        observe: BatchObserver | None = None,
    ) -> None:
        self._predict = predict
        self._max_size = max_size
        self._max_wait = max_wait_ms / 1000
        self._observe = observe
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()  # None: stop
        # One thread for the model: calls never overlap, decoding keeps the other pool.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._worker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        """Answer everything already queued, then stop the worker."""
        if self._worker is None:
            return
        await self._queue.put(None)  # queued behind every pending request
        await self._worker
        self._executor.shutdown(wait=True)
        self._worker = None

    async def predict(self, images: np.ndarray) -> Rows:
        """The model's rows for `images` ([N, 64, 64, 3] uint8), computed in some shared batch."""
        if self._worker is None:
            raise RuntimeError("the batcher is not running")
        pending = _Pending(images, asyncio.get_running_loop().create_future())
        await self._queue.put(pending)
        return await pending.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            batch, stopping = await self._collect()
            if not batch:
                continue
            images = np.concatenate([p.images for p in batch])
            started = time.monotonic()
            try:
                rows = await loop.run_in_executor(self._executor, self._predict, images)
            except Exception as error:  # the model failed: every waiting request is told
                log.exception("model call on %d images failed", len(images))
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(error)
                continue
            if self._observe is not None:
                self._observe(len(images), time.monotonic() - started)
            offset = 0
            for pending in batch:
                count = len(pending.images)
                if not pending.future.done():  # the client may have gone away
                    pending.future.set_result(_slice(rows, offset, offset + count))
                offset += count

    async def _collect(self) -> tuple[list[_Pending], bool]:
        """The next batch, and whether the stop signal came behind it."""
        first = await self._queue.get()
        if first is None:
            return [], True
        batch, size = [first], len(first.images)
        deadline = first.arrived + self._max_wait
        while size < self._max_size:
            if self._queue.empty():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    pending = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                pending = self._queue.get_nowait()
            if pending is None:
                return batch, True
            batch.append(pending)
            size += len(pending.images)
        return batch, False
