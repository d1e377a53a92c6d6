"""`python -m service.batch SOURCE DEST`: classify every image below SOURCE (a local folder or
`gs://` prefix, read recursively) into DEST (a local or `gs://` JSONL file), one line a file:

    {"path": ..., "label": ..., "index": ..., "probabilities": {...}, "model_version": ...}

A file that cannot be read or decoded gets `{"path": ..., "error": ...}` and the run goes on.
The model comes from the service's settings (MODEL_DIR, AIP_STORAGE_URI, or the bundled one)
and every image takes the service's own path: decoded by the same code, then predicted
through the same batch queue, so concurrent files share model calls as requests do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm import tqdm

from service.config import Settings
from service.errors import RequestError
from service.inference import InferencePipeline
from service.model import MugClassifier
from service.runtime import ModelLoadError
from service.schemas import Prediction
from service.storage import StorageError, is_remote, list_files, read_bytes, write_file
from service.uploads import Upload

# Files read and classified together: enough to keep the batch queue full while the next
# chunk is fetched, few enough that a huge bucket never sits in memory at once.
CHUNK = 512
READ_THREADS = 16
log = logging.getLogger("service.batch")


def read_chunks(
    files: list[str], pool: ThreadPoolExecutor
) -> Iterator[list[tuple[str, bytes | str]]]:
    """Each chunk's contents (or, for a file that cannot be read, why), fetched in threads,
    the next chunk's reads already under way while the current one is classified."""

    def read(location: str) -> bytes | str:
        try:
            return read_bytes(location)
        except (OSError, StorageError) as error:
            return f"cannot read the file ({error})"

    chunks = [files[i : i + CHUNK] for i in range(0, len(files), CHUNK)]
    pending = [pool.submit(read, f) for f in chunks[0]] if chunks else []
    for index in range(len(chunks)):
        current = pending
        if index + 1 < len(chunks):
            pending = [pool.submit(read, f) for f in chunks[index + 1]]
        yield [(f, future.result()) for f, future in zip(chunks[index], current, strict=True)]


async def classify_one(
    pipeline: InferencePipeline, path: str, content: bytes | str
) -> dict[str, Any]:
    if isinstance(content, str):
        return {"path": path, "error": content}
    try:
        (classification,) = await pipeline.classify([Upload(path, content)])
    except RequestError as error:
        return {"path": path, "error": str(error)}
    return {"path": path} | Prediction.of(classification, pipeline.model.version).model_dump()


async def run(source: str, dest: str, settings: Settings) -> dict[str, int]:
    """Classify everything below `source` into `dest`; returns the counts."""
    files = list_files(source)
    model = MugClassifier(settings)
    model.load()
    pipeline = InferencePipeline(model)
    await pipeline.start()
    counts = {"files": len(files), "classified": 0, "errors": 0}
    local = Path(dest) if not is_remote(dest) else Path(tempfile.mkstemp(suffix=".jsonl")[1])
    local.parent.mkdir(parents=True, exist_ok=True)
    progress = tqdm(total=len(files), unit="img", file=sys.stderr, disable=None)
    started, logged = time.monotonic(), 0
    try:
        with open(local, "w") as out, ThreadPoolExecutor(READ_THREADS) as pool:
            done = 0
            for chunk in read_chunks(files, pool):
                lines = await asyncio.gather(*(classify_one(pipeline, *item) for item in chunk))
                for line in lines:
                    out.write(json.dumps(line) + "\n")
                    counts["errors" if "error" in line else "classified"] += 1
                done += len(lines)
                progress.update(len(lines))
                if progress.disable and done - logged >= len(files) / 10:  # a log, not a TTY
                    log.info("%d of %d files", done, len(files))
                    logged = done
        if is_remote(dest):
            write_file(local, dest)
    finally:
        progress.close()
        await pipeline.stop()
        if is_remote(dest):
            local.unlink(missing_ok=True)
    counts["seconds"] = round(time.monotonic() - started, 2)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="folder or gs:// prefix of images, read recursively")
    parser.add_argument("dest", help="JSONL file to write, local or gs://")
    parser.add_argument("--model-dir", help="model folder or gs:// prefix (default: as served)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = Settings(model_dir=args.model_dir) if args.model_dir else Settings()
    try:
        counts = asyncio.run(run(args.source, args.dest, settings))
    except (ModelLoadError, StorageError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    rate = counts["files"] / max(counts["seconds"], 1e-9)
    print(
        f"{counts['classified']} classified, {counts['errors']} errors, in "
        f"{counts['seconds']}s ({rate:.0f} images/s) -> {args.dest}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
