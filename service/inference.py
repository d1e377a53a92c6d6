"""From uploaded bytes to classifications, the one path every prediction route takes: decode
off the event loop (at most DECODE_THREADS at once: more threads only add memory on a small
CPU), then predict through the batch queue, so one large upload never stalls the others and
concurrent requests share model calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import numpy as np

from service.batching import BatchObserver, MicroBatcher
from service.capacity import Capacity
from service.errors import BadImageError, RequestError
from service.imaging import ImageError
from service.model import OCCLUSION_GRID, Classification, ImageClassifier
from service.predlog import LogContext, PredictionLog
from service.uploads import Upload

# Uploads this small (a 64x64 JPEG is about 2 KB) decode in about 0.1 ms: faster on the
# event loop than the hop to a thread. Anything larger is decoded off the loop.
INLINE_DECODE_BYTES = 16 * 1024


class RequestTimeoutError(RequestError):
    status_code = 503
    code = "timeout"


class InferencePipeline:
    """One loaded model with its batch queue and decoding limit, admitting work against the
    process's `capacity` (shared by every version served); started and stopped by the
    registry, so routes only ever see a running one."""

    def __init__(
        self,
        model: ImageClassifier,
        capacity: Capacity | None = None,
        observe: BatchObserver | None = None,
        count_answers: Callable[[list[Classification]], None] | None = None,
        prediction_log: PredictionLog | None = None,
    ) -> None:
        """`observe` sees every model call, `count_answers` every answer.
        Without `capacity`, the pipeline has the settings' limits to itself."""
        settings = model.settings
        self._count_answers = count_answers
        self._log = prediction_log
        self.model = model
        self._batcher = MicroBatcher(
            model.predict, settings.batch_max_size, settings.batch_max_wait_ms, observe
        )
        self._decoders = anyio.CapacityLimiter(settings.decode_threads)
        self._timeout_s = settings.request_timeout_s
        self.capacity = capacity or Capacity(
            settings.max_waiting_images, settings.max_active_requests
        )

    async def start(self) -> None:
        await self._batcher.start()

    async def stop(self) -> None:
        """Answer every request already queued, then stop."""
        await self._batcher.stop()

    async def classify(
        self, uploads: list[Upload], context: LogContext | None = None
    ) -> list[Classification]:
        """One Classification per upload, in order; a bad image is a BadImageError naming
        it. Decoding plus prediction is bounded by REQUEST_TIMEOUT_S; with too many images
        waiting already, an OverloadedError. With a `context`, a sample of the images and
        their answers go to the prediction log (PREDICTION_LOG_SAMPLE)."""
        async with self._admitted(len(uploads)):
            images = await self._decode(uploads)
            answers = self.model.postprocess(await self._batcher.predict(images))
        self._logged(uploads, answers, context)
        return self._counted(answers)

    def _logged(
        self, uploads: list[Upload], answers: list[Classification], context: LogContext | None
    ) -> None:
        if self._log is None or context is None:
            return
        for index, (upload, answer) in enumerate(zip(uploads, answers, strict=True)):
            if self._log.sampled():
                self._log.offer(context.record(index, answer, self.model.version), upload.data)

    async def explain(self, upload: Upload, context: LogContext | None = None) -> Classification:
        """One image's Classification with its heatmap: the image and its occluded copies go
        through the batch queue as one request (ImageClassifier.occlusions and .explain)."""
        async with self._admitted(OCCLUSION_GRID**2 + 1):
            (image,) = await self._decode([upload])
            outputs = await self._batcher.predict(self.model.occlusions(image))
            answer = self.model.explain(outputs)
        self._logged([upload], [answer], context)
        (counted,) = self._counted([answer])
        return counted

    def _counted(self, answers: list[Classification]) -> list[Classification]:
        if self._count_answers is not None:
            self._count_answers(answers)
        return answers

    @asynccontextmanager
    async def _admitted(self, images: int) -> AsyncIterator[None]:
        """Admission (OverloadedError past MAX_WAITING_IMAGES), the images counted as waiting
        until answered, and the REQUEST_TIMEOUT_S limit on decoding plus prediction."""
        capacity = self.capacity
        capacity.check(images)
        capacity.waiting += images
        try:
            async with asyncio.timeout(self._timeout_s):
                yield
        except TimeoutError as error:
            limit = f"{self._timeout_s:g}s"
            raise RequestTimeoutError(f"the images took longer than {limit} to process") from error
        finally:
            capacity.waiting -= images

    async def _decode(self, uploads: list[Upload]) -> np.ndarray:
        if sum(len(u.data) for u in uploads) <= INLINE_DECODE_BYTES:
            return self._decode_all(uploads)  # cheaper than a thread hop
        return await anyio.to_thread.run_sync(self._decode_all, uploads, limiter=self._decoders)

    def _decode_all(self, uploads: list[Upload]) -> np.ndarray:
        decoded = []
        for upload in uploads:
            try:
                decoded.append(self.model.preprocess(upload.data))
            except ImageError as error:
                raise BadImageError(error, upload.field) from error
        return np.stack(decoded)
