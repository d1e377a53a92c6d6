"""From uploaded bytes to classifications: decode off the event loop, then predict."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from service.errors import BadImageError
from service.imaging import ImageError
from service.model import Classification, MugClassifier
from service.uploads import Upload


async def classify_uploads(model: MugClassifier, uploads: list[Upload]) -> list[Classification]:
    """One Classification per upload, in order; a bad image is a BadImageError naming it."""
    images = [await run_in_threadpool(_decode, model, upload) for upload in uploads]
    return await run_in_threadpool(model.classify, images)


def _decode(model: MugClassifier, upload: Upload):
    try:
        return model.preprocess(upload.data)
    except ImageError as error:
        raise BadImageError(error, upload.field) from error
