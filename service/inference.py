"""From uploaded bytes to classifications: decode off the event loop (at most DECODE_THREADS
at once: more threads only add memory on a small CPU), then predict through the batch
queue, so one large upload never stalls the others and concurrent requests share model
calls."""

from __future__ import annotations

import asyncio

import anyio
import numpy as np

from service.batching import MicroBatcher
from service.errors import BadImageError, RequestError
from service.imaging import ImageError
from service.model import Classification, MugClassifier
from service.uploads import Upload

# Uploads this small (a 64x64 JPEG is about 2 KB) decode in about 0.1 ms: faster on the
# event loop than the hop to a thread. Anything larger is decoded off the loop.
INLINE_DECODE_BYTES = 16 * 1024


class RequestTimeoutError(RequestError):
    status_code = 503
    code = "timeout"


async def classify_uploads(
    model: MugClassifier,
    batcher: MicroBatcher,
    decoders: anyio.CapacityLimiter,
    uploads: list[Upload],
) -> list[Classification]:
    """One Classification per upload, in order; a bad image is a BadImageError naming it.
    Decoding plus prediction is bounded by REQUEST_TIMEOUT_S."""
    limit = model.settings.request_timeout_s
    try:
        async with asyncio.timeout(limit):
            if sum(len(u.data) for u in uploads) <= INLINE_DECODE_BYTES:
                images = _decode_all(model, uploads)  # cheaper than a thread hop
            else:
                images = await anyio.to_thread.run_sync(
                    _decode_all, model, uploads, limiter=decoders
                )
            return model.postprocess(await batcher.predict(images))
    except TimeoutError as error:
        raise RequestTimeoutError(f"the images took longer than {limit:g}s to process") from error


def _decode_all(model: MugClassifier, uploads: list[Upload]) -> np.ndarray:
    decoded = []
    for upload in uploads:
        try:
            decoded.append(model.preprocess(upload.data))
        except ImageError as error:
            raise BadImageError(error, upload.field) from error
    return np.stack(decoded)
