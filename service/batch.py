"""`python -m service.batch SOURCE DEST`: classify every image below SOURCE (a local folder or
`gs://` prefix, read recursively) into DEST (a local or `gs://` JSONL file), one line a file:

    {"path": ..., "label": ..., "index": ..., "probabilities": {...}, "novelty": {...},
     "model_version": ...}   (a /predict answer with its path; "label" may be "unknown")

A file that cannot be read or decoded gets `{"path": ..., "error": ...}` and the run goes on.
The model comes from the service's settings (MODEL_DIR, AIP_STORAGE_URI, or the bundled one)
and every image takes the service's own path, `InferencePipeline.classify`: files go in
groups of GROUP, each group one request as a multi-image upload is (decoded by the same code,
predicted through the same batch queue), several groups in flight so decoding overlaps the
model. A group refused for a bad file is classified again file by file.
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
from service.model import ImageClassifier
from service.runtime import ModelLoadError
from service.schemas import Prediction
from service.storage import StorageError, is_remote, list_files, read_bytes, write_file
from service.uploads import Upload

# Files read and classified together: enough to keep the batch queue full while the next
# chunk is fetched, few enough that a huge bucket never sits in memory at once.
CHUNK = 512
# Images per request to the pipeline: the batch size the model's ceiling is measured at.
GROUP = 64
READ_THREADS = 16
log = logging.getLogger("service.batch")
Item = tuple[str, bytes | str]  # a file's path and its contents, or why it could not be read


def read_chunks(files: list[str], pool: ThreadPoolExecutor) -> Iterator[list[Item]]:
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


async def classify_group(pipeline: InferencePipeline, group: list[Item]) -> list[dict[str, Any]]:
    """One line per file of `group`, in order, its readable files classified as one request
    (as a multi-image upload is). Only when that request is refused for a bad image is the
    group classified file by file, so a bad file costs its group the slow path, not the run."""
    readable = [(path, content) for path, content in group if isinstance(content, bytes)]
    lines = {path: {"path": path, "error": content} for path, content in group}
    if readable:
        try:
            results = await pipeline.classify([Upload(path, data) for path, data in readable])
        except RequestError as error:
            if len(group) == 1:
                return [{"path": group[0][0], "error": str(error)}]
            each = await asyncio.gather(*(classify_group(pipeline, [item]) for item in group))
            return [line for (line,) in each]
        version = pipeline.model.version
        for (path, _), result in zip(readable, results, strict=True):
            lines[path] = {"path": path} | Prediction.body(result, version)
    return list(lines.values())


async def classify_chunk(pipeline: InferencePipeline, chunk: list[Item]) -> list[dict[str, Any]]:
    """Lines for a chunk, in order: its groups in flight together, so that decoding one
    group overlaps the model's call on another."""
    groups = [chunk[i : i + GROUP] for i in range(0, len(chunk), GROUP)]
    each = await asyncio.gather(*(classify_group(pipeline, group) for group in groups))
    return [line for lines in each for line in lines]


async def run(source: str, dest: str, settings: Settings) -> dict[str, int]:
    """Classify everything below `source` into `dest`; returns the counts."""
    files = list_files(source)
    # No more decoding threads than CPUs: unlike requests, which wait on the network, every
    # decoding thread here competes with the model (the benchmark: 4 threads cost 5 points of
    # the ceiling against 1 or 2 on 2 CPUs).
    decode_threads = min(settings.decode_threads, settings.model_threads)
    model = ImageClassifier(settings.model_copy(update={"decode_threads": decode_threads}))
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
                lines = await classify_chunk(pipeline, chunk)
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
