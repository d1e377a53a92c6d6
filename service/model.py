"""The served model, shaped like a KServe model: load, preprocess, predict, postprocess and a
ready flag. It knows nothing of HTTP; routes call it and turn its results into schemas."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.config import Settings
from service.imaging import CLASS_NAMES, decode_image
from service.runtime import HEATMAP, PROBABILITIES, ModelMetadata, Predictor, load_predictor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Classification:
    """One image's answer."""

    index: int
    label: str
    probabilities: tuple[float, ...]  # in CLASS_NAMES order
    # Where the network looked, [8, 8] in 0..1, row 0 the top (None: the model has none).
    heatmap: np.ndarray | None = None

    def probability_map(self) -> dict[str, float]:
        return dict(zip(CLASS_NAMES, self.probabilities, strict=True))


class MugClassifier:
    """Owns the loaded model. `ready` turns true once it is loaded and warmed up."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._predictor: Predictor | None = None
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
        return self.metadata.model_version

    def load(self) -> None:
        """Load and check the model (raises ModelLoadError); a no-op once loaded."""
        if self._predictor is None:
            settings = self.settings
            self._predictor = load_predictor(
                settings.model_location,
                settings.model_runtime,
                settings.model_threads,
                settings.model_precision,
            )
            log.info(
                "loaded model %s (%s) from %s with %s",
                self.version,
                self._predictor.precision,
                settings.model_location,
                settings.model_runtime,
            )
        self.ready = True

    def preprocess(self, data: bytes) -> np.ndarray:
        """Encoded image -> uint8 [64, 64, 3]; raises service.imaging.ImageError."""
        return decode_image(data, max_pixels=self.settings.max_image_pixels)

    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """uint8 [N, 64, 64, 3] -> the model's outputs: `probabilities` float32 [N, 4], and
        `heatmap` [N, 8, 8] when the model computes one."""
        return self._loaded().outputs(images)

    @staticmethod
    def postprocess(outputs: dict[str, np.ndarray]) -> list[Classification]:
        probabilities = outputs[PROBABILITIES]
        heatmaps = outputs.get(HEATMAP, [None] * len(probabilities))
        return [
            Classification(
                index=int(index),
                label=CLASS_NAMES[index],
                probabilities=tuple(float(p) for p in row),
                heatmap=heatmap,
            )
            for index, row, heatmap in zip(
                probabilities.argmax(axis=1), probabilities, heatmaps, strict=True
            )
        ]

    def _loaded(self) -> Predictor:
        if self._predictor is None:
            raise RuntimeError("model is not loaded yet")
        return self._predictor
