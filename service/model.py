"""The served model, shaped like a KServe model: load, preprocess, predict, postprocess and a
ready flag. It knows nothing of HTTP; routes call it and turn its results into schemas."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from service.config import Settings
from service.imaging import CLASS_NAMES, decode_image
from service.runtime import LOGITS, PROBABILITIES, ModelMetadata, Predictor, load_predictor

# Explanations by occlusion: a 4x4 grid (16x16-pixel cells of the 64x64 image) hidden a cell at
# a time, 17 images in one model call. A 3x3 grid put the heatmap's centre in the quadrant of a
# mug pasted into a corner for 94% of test photos, 4x4 for all of them; the class activation
# map of the network's last 4x4 features did for 19% (each of those cells sees the whole
# photo).
OCCLUSION_GRID = 4
HEATMAP_SIZE = 8

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Classification:
    """One image's answer."""

    index: int
    label: str
    probabilities: tuple[float, ...]  # in CLASS_NAMES order
    # Where the answer came from, [8, 8] in 0..1, row 0 the top (explanations only).
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
        """uint8 [N, 64, 64, 3] -> the model's named outputs, `probabilities` float32 [N, 4]
        among them."""
        return self._loaded().outputs(images)

    @staticmethod
    def postprocess(outputs: dict[str, np.ndarray]) -> list[Classification]:
        probabilities = outputs[PROBABILITIES]
        return [
            Classification(
                index=int(index),
                label=CLASS_NAMES[index],
                probabilities=tuple(float(p) for p in row),
            )
            for index, row in zip(probabilities.argmax(axis=1), probabilities, strict=True)
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
        (answer,) = self.postprocess({PROBABILITIES: outputs[PROBABILITIES][:1]})
        # The top class's lead in logits, not its probability: a confident answer's
        # probability stays at 1.00 whichever cell is hidden, its lead does not.
        logits = outputs[LOGITS]
        others = np.delete(logits, answer.index, axis=1).max(axis=1)
        lead = logits[:, answer.index] - others
        drop = np.maximum(lead[0] - lead[1:], 0).reshape(OCCLUSION_GRID, OCCLUSION_GRID)
        grid = Image.fromarray(drop.astype(np.float32), mode="F")
        heatmap = np.asarray(grid.resize((HEATMAP_SIZE, HEATMAP_SIZE), Image.Resampling.BILINEAR))
        peak = heatmap.max()
        return dataclasses.replace(answer, heatmap=heatmap / peak if peak > 0 else heatmap)

    def _loaded(self) -> Predictor:
        if self._predictor is None:
            raise RuntimeError("model is not loaded yet")
        return self._predictor
