"""From uploaded bytes to classifications: decode off the event loop, then predict through
the batch queue, so one large upload never stalls the others and concurrent requests share
model calls."""

from __future__ import annotations

import asyncio

import numpy as np
from starlette.concurrency import run_in_threadpool

from service.batching import MicroBatcher
from service.errors import BadImageError, RequestError
from service.imaging import ImageError
from service.model import Classification, MugClassifier
from service.uploads import Upload


class RequestTimeoutError(RequestError):
    status_code = 503
    code = "timeout"


async def classify_uploads(
    model: MugClassifier, batcher: MicroBatcher, uploads: list[Upload]
) -> list[Classification]:
    """One Classification per upload, in order; a bad image is a BadImageError naming it.
    Decoding plus prediction is bounded by REQUEST_TIMEOUT_S."""
    limit = model.settings.request_timeout_s
    try:
        async with asyncio.timeout(limit):
            images = await run_in_threadpool(_decode_all, model, uploads)
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
