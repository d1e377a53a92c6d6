"""Publishing a model as the next numbered version under a base path (`BASE/1/`, `BASE/2/`,
...), local or gs://, the layout a polling server reads (`service.registry`). A version is
visible only once complete: locally it is written into a hidden folder and renamed into
place; on Cloud Storage its metadata.json, which makes a folder a version, goes up last."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.runtime import METADATA_FILE, ModelLoadError, list_versions
from service.storage import is_remote, join, upload_folder


def next_version(base: str) -> int:
    """One more than the highest complete version under `base` (1 for a new base)."""
    if not is_remote(base) and not Path(base).exists():
        return 1
    try:
        found = list_versions(base)
    except ModelLoadError:  # an empty or missing gs:// prefix: nothing published yet
        return 1
    if found is None:
        raise ModelLoadError(f"{base}: holds a model itself, not numbered version folders")
    return max(found, default=0) + 1


@contextmanager
def next_version_folder(base: str) -> Iterator[tuple[Path, str]]:
    """(a local folder to write the model into, where it will be published): the next
    version under `base`, made visible when the block ends without error."""
    number = next_version(base)
    target = join(base, str(number))
    if is_remote(base):
        local = Path(tempfile.mkdtemp(prefix="model-"))
        try:
            yield local, target
            upload_folder(local, target, last=METADATA_FILE)
        finally:
            shutil.rmtree(local, ignore_errors=True)
        return
    Path(base).mkdir(parents=True, exist_ok=True)
    partial = Path(base) / f".{number}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        yield partial, target
        partial.rename(target)  # atomic: the version appears whole
    finally:
        shutil.rmtree(partial, ignore_errors=True)
