"""A queue in front of the model that coalesces concurrent requests into one model call.

The network costs about the same for one image as for dozens, so under load it pays to
answer many requests with one call. The worker takes everything already queued (up to
`max_size` images); if that is less than `max_size` it waits at most `max_wait_ms` after the
oldest request arrived for more, then calls the model once, in its own thread, and hands
each request its own rows. A lone request is delayed by at most `max_wait_ms`.

Small uploads are queued encoded and decoded on the model's thread, just before the call
(`predict_encoded`): the event loop, which does every request's HTTP work, is spared the
decoding, and the model's core takes it between calls. Requests never share a failure: an
upload that cannot be decoded fails its own request alone, and the batch goes on without it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

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
    future: asyncio.Future[Rows]
    count: int  # images
    images: np.ndarray | None = None  # decoded, or:
    encoded: Any = None  # what `decode` turns into images on the model's thread
    decode: Callable[[Any], np.ndarray] | None = None
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
        """The model's rows for `images` ([N, size, size, 3] uint8), computed in some shared
        batch."""
        return await self._queued(_Pending(self._future(), len(images), images=images))

    async def predict_encoded(
        self, encoded: Sequence[Any], decode: Callable[[Sequence[Any]], np.ndarray]
    ) -> Rows:
        """The model's rows for `decode(encoded)` (one image per item), decoded on the model's
        thread; what `decode` raises is this request's failure alone."""
        pending = _Pending(self._future(), len(encoded), encoded=encoded, decode=decode)
        return await self._queued(pending)

    def _future(self) -> asyncio.Future[Rows]:
        if self._worker is None:
            raise RuntimeError("the batcher is not running")
        return asyncio.get_running_loop().create_future()

    async def _queued(self, pending: _Pending) -> Rows:
        await self._queue.put(pending)
        return await pending.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            batch, stopping = await self._collect()
            if not batch:
                continue
            try:
                rows, failures, seconds = await loop.run_in_executor(
                    self._executor, self._call, batch
                )
            except Exception as error:  # the model failed: every waiting request is told
                log.exception("model call on a batch of %d requests failed", len(batch))
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(error)
                continue
            answered = [p for p in batch if id(p) not in failures]
            if self._observe is not None and answered:
                self._observe(sum(p.count for p in answered), seconds)
            for pending, error in ((p, failures[id(p)]) for p in batch if id(p) in failures):
                if not pending.future.done():
                    pending.future.set_exception(error)
            offset = 0
            for pending in answered:
                if not pending.future.done():  # the client may have gone away
                    pending.future.set_result(_slice(rows, offset, offset + pending.count))
                offset += pending.count

    def _call(self, batch: list[_Pending]) -> tuple[Rows | None, dict[int, Exception], float]:
        """On the model's thread: decode what came encoded, then one model call for every
        request whose images are ready. Returns the rows, each failed request's error (by
        id) and the model call's seconds."""
        arrays, failures = [], {}
        for pending in batch:
            if pending.images is None:
                try:
                    pending.images = pending.decode(pending.encoded)
                except Exception as error:
                    failures[id(pending)] = error
                    continue
            arrays.append(pending.images)
        if not arrays:
            return None, failures, 0.0
        started = time.monotonic()
        rows = self._predict(np.concatenate(arrays))
        return rows, failures, time.monotonic() - started

    async def _collect(self) -> tuple[list[_Pending], bool]:
        """The next batch, and whether the stop signal came behind it."""
        first = await self._queue.get()
        if first is None:
            return [], True
        batch, size = [first], first.count
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
            size += pending.count
        return batch, False
