"""The model versions being served, each a loaded model with its own batch queue, and the swap
of a new version in while serving.

MODEL_DIR is one model folder (one version, named by its metadata's model_version) or a base
path of numbered version folders, as TF Serving and Triton lay them out (`base/1/`, `base/2/`).
Of a base path, MODEL_VERSIONS says which are served (`latest`, `all`, or `3,4`), and
MODEL_LABELS names some (`stable=3,canary=4`; a named version is served too). Every
MODEL_POLL_S the base path is looked at again: a new version is loaded and checked (its
metadata, a dummy batch through the model, the quantised model's recorded parity when int8
would be served) before anyone is answered by it, then swapped in at once; the version it
replaces answers what it already holds and is then released, so a swap holds at most two
versions of a model in memory. A version that fails its checks is refused with one log line
and a metric, and the current one keeps serving. Deleting the newest folder goes back to the
one before it.

Requests resolve a version once (`using`), by number, by label or the newest served, and
keep it to the end: no request is ever answered by two versions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from service.capacity import Capacity
from service.config import Settings
from service.errors import RequestError
from service.inference import InferencePipeline
from service.model import ImageClassifier
from service.observability import Metrics
from service.predlog import PredictionLog
from service.runtime import ModelLoadError, list_versions

log = logging.getLogger(__name__)


class ModelNotReadyError(RequestError):
    status_code = 503
    code = "model_not_ready"


class VersionNotFoundError(RequestError):
    status_code = 404
    code = "version_not_found"


@dataclass(eq=False)
class ServedVersion:
    """One version in service: its model, its pipeline, and the requests holding it."""

    id: str  # a base path's folder number, or a single folder's model_version
    model: ImageClassifier
    pipeline: InferencePipeline
    users: int = 0
    retired: bool = False  # swapped out: released once no request holds it
    loaded_at: float = field(default_factory=time.time)


class ModelRegistry:
    """Name, version and label -> a served version. `load` (in a thread, before serving)
    loads the first versions; `start` gives each its pipeline and starts polling."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.capacity = Capacity(settings.max_waiting_images, settings.max_active_requests)
        self.location = settings.model_location
        self.versioned = False  # a base path of numbered versions, not one model folder
        self._loaded: dict[str, ImageClassifier] = {}  # loaded, not yet started
        self._served: dict[str, ServedVersion] = {}
        self._releasing: set[ServedVersion] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.refused: dict[str, str] = {}  # version -> why it is not served
        self._poller: asyncio.Task[None] | None = None
        self._name: str | None = settings.model_name
        self.prediction_log = (
            PredictionLog(
                settings.prediction_log,
                settings.prediction_log_sample,
                int(settings.prediction_log_max_mb * 1024 * 1024),
                settings.prediction_log_flush_s,
                self.metrics,
            )
            if settings.prediction_log
            else None
        )
        self._started = False

    # --- loading ---------------------------------------------------------------------------

    def load(self) -> None:
        """Load the versions to serve first (raises ModelLoadError when none can be)."""
        found = list_versions(self.location)
        if found is None:
            model = ImageClassifier(self.settings, self.location)
            model.load()
            self._loaded[model.version] = model
            return
        if not found:
            raise ModelLoadError(
                f"{self.location}: not a model folder (no metadata.json, and no numbered "
                "version folders 1/, 2/, ... holding one)"
            )
        self.versioned = True
        wanted = self.wanted(found)
        if not wanted:
            raise ModelLoadError(
                f"{self.location}: no version folder to serve (numbered folders holding a "
                f"model, MODEL_VERSIONS={self.settings.model_versions})"
            )
        for number in sorted(wanted, reverse=True):
            model = self._check(number, found[number])
            if model is not None:
                self._loaded[model.version] = model
        if not self._loaded:
            reasons = "; ".join(f"version {v}: {why}" for v, why in self.refused.items())
            raise ModelLoadError(f"{self.location}: no version could be loaded ({reasons})")

    def loaded_models(self) -> list[ImageClassifier]:
        """The models `load` loaded, before `start` serves them."""
        return list(self._loaded.values())

    def wanted(self, found: dict[int, str]) -> set[int]:
        """The versions of `found` (number -> location) that MODEL_VERSIONS and MODEL_LABELS
        ask to serve."""
        choice = self.settings.model_versions
        if choice == "latest":
            wanted = {max(found)} if found else set()
        elif choice == "all":
            wanted = set(found)
        else:
            wanted = {int(v) for v in choice.split(",")} & set(found)
        return wanted | (set(self.settings.version_labels.values()) & set(found))

    def _check(self, number: int, location: str) -> ImageClassifier | None:
        """Version `number` loaded and checked, or None (refused: one log line, a metric)."""
        model = ImageClassifier(self.settings, location, version=str(number))
        try:
            model.load()  # metadata, and a dummy batch through the model
            self._check_parity(model)
        except ModelLoadError as error:
            model.release()
            self.refused[str(number)] = str(error)
            self.metrics.version_refusals.inc()
            log.error("model version %d refused, not served: %s", number, error)
            return None
        self.refused.pop(str(number), None)
        return model

    def _check_parity(self, model: ImageClassifier) -> None:
        """The quantised model is served only if training's parity check passed for it."""
        metadata = model.metadata
        if self.settings.model_precision == "int8" and not (
            metadata.quantization and metadata.quantization.get("passed")
        ):
            raise ModelLoadError(
                "MODEL_PRECISION=int8, but the quantised model failed (or never had) the "
                "parity check training runs"
            )

    # --- serving ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.prediction_log is not None:
            await self.prediction_log.start()
        if not self._loaded:
            await asyncio.to_thread(self.load)
        for model in self._loaded.values():
            await self._serve(model)
        self._loaded.clear()
        self._name = self.name  # fixed from the first versions served
        if self.versioned and self.settings.model_poll_s > 0:
            self._poller = asyncio.create_task(self._poll_forever(), name="model-poller")

    async def stop(self) -> None:
        """Stop polling; every version answers what it holds, then is released."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await asyncio.gather(*self._tasks)  # releases under way finish first
        for served in list(self._served.values()):
            await self._release(served)
        self._served.clear()
        if self.prediction_log is not None:
            await self.prediction_log.stop()  # what the last requests logged, written

    @property
    def ready(self) -> bool:
        return bool(self._served)

    @property
    def default(self) -> ServedVersion:
        """The version a request that names none gets: the newest served."""
        if not self._served:
            raise ModelNotReadyError("the model is still loading; retry shortly")
        return self._served[max(self._served, key=_order)]

    @property
    def name(self) -> str:
        """The model's name in URLs: MODEL_NAME, else the metadata's of the newest version
        served first. It stays when versions are swapped, so clients' URLs keep working."""
        if self._name is None:
            self._name = self.default.model.name
        return self._name

    def versions(self) -> list[ServedVersion]:
        """Every version in memory, newest first: those served, then those being released."""
        served = sorted(self._served.values(), key=lambda v: _order(v.id), reverse=True)
        return served + [v for v in self._releasing if v not in served]

    def resolve(self, version: str | None = None, label: str | None = None) -> ServedVersion:
        """The served version a request asks for: by number, by label, else the newest."""
        default = self.default  # 503 before anything is served
        if label is not None:
            labels = self.settings.version_labels
            if label not in labels:
                known = ", ".join(labels) or "none are set (MODEL_LABELS)"
                raise VersionNotFoundError(f"no version label {label!r}; labels: {known}", "label")
            version = str(labels[label])
        if version is None:
            return default
        served = self._served.get(version)
        if served is None:
            known = ", ".join(v.id for v in self.versions() if not v.retired)
            raise VersionNotFoundError(
                f"version {version!r} is not served; served: {known}", "version"
            )
        return served

    @contextlib.asynccontextmanager
    async def using(
        self, version: str | None = None, label: str | None = None
    ) -> AsyncIterator[ServedVersion]:
        """Hold one version for a request's whole work; its time is observed by version."""
        served = self.resolve(version, label)
        served.users += 1
        started = time.perf_counter()
        try:
            yield served
        finally:
            served.users -= 1
            self.metrics.version_latency.labels(served.id).observe(time.perf_counter() - started)
            self._release_when_free(served)

    async def _serve(self, model: ImageClassifier) -> ServedVersion:
        metrics, version = self.metrics, model.version
        pipeline = InferencePipeline(
            model,
            self.capacity,
            observe=metrics.observe_model_call,
            count_answers=lambda answers: metrics.observe_answers(answers, version),
            prediction_log=self.prediction_log,
        )
        await pipeline.start()
        served = ServedVersion(version, model, pipeline)
        self._served[version] = served
        metrics.versions_in_memory.set(len(self.versions()))
        return served

    def _retire(self, served: ServedVersion) -> None:
        """No new request gets `served`; released once the ones holding it are answered."""
        served.retired = True
        self._served.pop(served.id, None)
        self._release_when_free(served)

    def _release_when_free(self, served: ServedVersion) -> None:
        """Release a retired version once no request holds it (once)."""
        if served.retired and served.users == 0 and served not in self._releasing:
            self._releasing.add(served)
            task = asyncio.get_running_loop().create_task(self._release(served))
            self._tasks.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self._tasks.discard)

    async def _release(self, served: ServedVersion) -> None:
        await served.pipeline.stop()  # answers everything queued on it first
        await asyncio.to_thread(served.model.release)
        self._releasing.discard(served)
        self.metrics.versions_in_memory.set(len(self.versions()))
        log.info("model version %s released", served.id)

    # --- polling ---------------------------------------------------------------------------

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.model_poll_s)
            try:
                await self.poll()
            except Exception:  # a poll never stops the service; the next one tries again
                log.exception("looking for model versions in %s failed", self.location)

    async def poll(self) -> None:
        """Serve what the base path holds now: load and check new versions (newest first),
        swap them in, and retire versions no longer wanted."""
        try:
            found = await asyncio.to_thread(list_versions, self.location)
        except ModelLoadError as error:
            self.metrics.poll_failures.inc()
            log.warning("model versions not listed, serving on: %s", error)
            return
        found = found or {}
        for gone in [v for v in self.refused if int(v) not in found]:
            del self.refused[gone]  # published again later, it is checked again
        wanted = self.wanted(found)
        served = {int(v) for v in self._served}
        for number in sorted(wanted - served, reverse=True):
            if str(number) in self.refused:
                continue
            model = await asyncio.to_thread(self._check, number, found[number])
            if model is None:
                continue
            await self._serve(model)
            log.info("model version %d loaded from %s and serving", number, found[number])
        keep = wanted & {int(v) for v in self._served}
        if not keep:  # nothing wanted could be served: never serve nothing at all
            return
        for number in {int(v) for v in self._served} - keep:
            self._retire(self._served[str(number)])


def _order(version_id: str) -> tuple[int, str]:
    """Versions by number (a base path's folders, or numeric model_versions)."""
    return (int(version_id), version_id) if version_id.isdigit() else (-1, version_id)
