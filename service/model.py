"""The served model, shaped like a KServe model: load, preprocess, predict, postprocess and a
ready flag. It knows nothing of HTTP; routes call it and turn its results into schemas."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from service.config import Settings
from service.imaging import decode_image
from service.runtime import (
    LOGITS,
    NOVELTY,
    PROBABILITIES,
    ModelLoadError,
    ModelMetadata,
    Predictor,
    load_predictor,
)
from service.storage import is_remote

# Explanations by occlusion: a 4x4 grid (cells a quarter of the image's side) hidden a cell at
# a time, 17 images in one model call: fine enough to place an object pasted into a corner
# of the frame (docs/training.md).
OCCLUSION_GRID = 4
HEATMAP_SIZE = 8
UNKNOWN = "unknown"  # the label of a photo that does not look like any of the classes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Classification:
    """One image's answer: the most probable class, or `unknown` (index None) when the image's
    novelty score is above the threshold in use."""

    labels: tuple[str, ...]  # the model's classes, in its order
    top_index: int  # the most probable class, also for an unknown answer
    probabilities: tuple[float, ...]  # in `labels` order
    novelty: float | None = None  # None: the model has no novelty output
    threshold: float | None = None  # None: no unknown answer (UNKNOWN_THRESHOLD=off)
    # Where the answer came from, [8, 8] in 0..1, row 0 the top (explanations only).
    heatmap: np.ndarray | None = None

    @property
    def unknown(self) -> bool:
        return (
            self.threshold is not None
            and self.novelty is not None
            and (self.novelty > self.threshold)
        )

    @property
    def index(self) -> int | None:
        return None if self.unknown else self.top_index

    @property
    def label(self) -> str:
        return UNKNOWN if self.unknown else self.labels[self.top_index]

    def probability_map(self) -> dict[str, float]:
        return dict(zip(self.labels, self.probabilities, strict=True))


class ImageClassifier:
    """Owns the loaded model. `ready` turns true once it is loaded and warmed up. Everything
    about the task (labels, input size, name) comes from the model folder's metadata."""

    def __init__(
        self, settings: Settings, location: str | None = None, version: str | None = None
    ) -> None:
        """The model at `location` (default: the settings' model folder). `version` names it
        in answers (a base path's folder number); by default its metadata's model_version."""
        self.settings = settings
        self.location = location or settings.model_location
        self._version = version
        self._predictor: Predictor | None = None
        self.unknown_threshold: float | None = None  # set on load: see _unknown_threshold
        self._labels: tuple[str, ...] = ()  # set on load, from the metadata
        self.ready = False

    @property
    def metadata(self) -> ModelMetadata:
        return self._loaded().metadata

    @property
    def local_dir(self) -> Path:
        """The local folder the model was loaded from (for a gs:// model, its copy)."""
        return self._loaded().model_dir

    @property
    def version(self) -> str:
        return self._version or self.metadata.model_version

    @property
    def name(self) -> str:
        """The model's name in URLs: MODEL_NAME, else the metadata's."""
        return self.settings.model_name or self.metadata.name

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    @property
    def image_size(self) -> int:
        return self.metadata.input_size

    @property
    def precision(self) -> str:
        """float or int8: what is running."""
        return self._loaded().precision

    @property
    def has_novelty(self) -> bool:
        """Whether answers carry a novelty score (models exported before it have none)."""
        return self.metadata.novelty is not None

    def load(self) -> None:
        """Load and check the model (raises ModelLoadError); a no-op once loaded."""
        if self._predictor is None:
            settings = self.settings
            self._predictor = load_predictor(
                self.location,
                settings.model_runtime,
                settings.model_threads,
                settings.model_precision,
            )
            self.unknown_threshold = self._unknown_threshold()
            self._labels = tuple(self._predictor.metadata.class_names)
            log.info(
                "loaded model %s (%s) from %s with %s on %s",
                self.version,
                self._predictor.precision,
                self.location,
                settings.model_runtime,
                _threads(self._predictor.threads),
            )
        self.ready = True

    def release(self) -> None:
        """Drop the loaded model (and the local copy of a gs:// one): it answers no more."""
        predictor, self._predictor = self._predictor, None
        self.ready = False
        if predictor is not None and is_remote(self.location):
            shutil.rmtree(predictor.model_dir, ignore_errors=True)

    def preprocess(self, data: bytes) -> np.ndarray:
        """Encoded image -> uint8 [size, size, 3]; raises service.imaging.ImageError."""
        return decode_image(data, self.image_size, max_pixels=self.settings.max_image_pixels)

    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """uint8 [N, size, size, 3] -> the model's named outputs, `probabilities` float32
        [N, classes] among them."""
        return self._loaded().outputs(images)

    def postprocess(self, outputs: dict[str, np.ndarray]) -> list[Classification]:
        probabilities = outputs[PROBABILITIES]
        # Models exported before the novelty score have no such output: no unknown answer.
        scores = outputs[NOVELTY].tolist() if NOVELTY in outputs else [None] * len(probabilities)
        return [
            Classification(
                labels=self._labels,
                top_index=index,
                probabilities=tuple(row),
                novelty=score,
                threshold=self.unknown_threshold,
            )
            for index, row, score in zip(
                probabilities.argmax(axis=1).tolist(), probabilities.tolist(), scores, strict=True
            )
        ]

    @staticmethod
    def occlusions(image: np.ndarray) -> np.ndarray:
        """The explanation's batch: the image, then one copy per cell of an OCCLUSION_GRID
        square grid with that cell painted the image's mean colour (row by row)."""
        edges = np.linspace(0, image.shape[0], OCCLUSION_GRID + 1).round().astype(int)
        fill = image.reshape(-1, 3).mean(axis=0).astype(image.dtype)
        batch = np.repeat(image[None], OCCLUSION_GRID**2 + 1, axis=0)
        for cell in range(OCCLUSION_GRID**2):
            row, col = divmod(cell, OCCLUSION_GRID)
            rows, cols = slice(*edges[row : row + 2]), slice(*edges[col : col + 2])
            batch[cell + 1, rows, cols] = fill
        return batch

    def explain(self, outputs: dict[str, np.ndarray]) -> Classification:
        """The answer for the occlusion batch's first image, with its heatmap: how much the
        top class's lead over the next drops when each cell is hidden, interpolated to HEATMAP_SIZE
        square (row 0 the top) and scaled to its peak (all zeros if hiding changes nothing)."""
        (answer,) = self.postprocess({name: value[:1] for name, value in outputs.items()})
        # The top class's lead in logits, not its probability: a confident answer's
        # probability stays at 1.00 whichever cell is hidden, its lead does not.
        logits = outputs[LOGITS]
        others = np.delete(logits, answer.top_index, axis=1).max(axis=1)
        lead = logits[:, answer.top_index] - others
        drop = np.maximum(lead[0] - lead[1:], 0).reshape(OCCLUSION_GRID, OCCLUSION_GRID)
        grid = Image.fromarray(drop.astype(np.float32), mode="F")
        heatmap = np.asarray(grid.resize((HEATMAP_SIZE, HEATMAP_SIZE), Image.Resampling.BILINEAR))
        peak = heatmap.max()
        return dataclasses.replace(answer, heatmap=heatmap / peak if peak > 0 else heatmap)

    def _unknown_threshold(self) -> float | None:
        """UNKNOWN_THRESHOLD if a number, none if `off`, else the one training chose; none for
        a model without a novelty output (a number for such a model is a load error)."""
        requested = self.settings.unknown_threshold
        novelty = self.metadata.novelty
        if requested == "off" or (requested is None and novelty is None):
            return None
        if novelty is None:
            raise ModelLoadError(
                f"UNKNOWN_THRESHOLD={requested}: model {self.version} has no novelty score"
            )
        return float(novelty["threshold"] if requested is None else requested)

    def _loaded(self) -> Predictor:
        if self._predictor is None:
            raise RuntimeError("model is not loaded yet")
        return self._predictor


def _threads(threads: int | None) -> str:
    """How many threads a model call runs on, as the load log line says it."""
    if threads is None:
        return "the runtime's own threads"
    return f"{threads} thread" + ("s" if threads != 1 else "")
