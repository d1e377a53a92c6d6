"""The bundled model in BentoML, for `tools.peers`: the same LiteRT file the service serves
(MODEL_FILE), the same decoder (`service.imaging.decode_image`), two workers with adaptive
batching of up to 64 images. Run in BentoML's own virtual environment:
`bentoml serve bentoml_app:Classifier --port PORT` from this folder."""

from __future__ import annotations

import os
from pathlib import Path

import bentoml
import numpy as np

MODEL_FILE = os.environ["MODEL_FILE"]
SIZE = int(os.environ.get("IMAGE_SIZE", "64"))


@bentoml.service(workers=2)
class Classifier:
    def __init__(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        from service.imaging import decode_image

        self.decode = decode_image
        interpreter = Interpreter(model_path=MODEL_FILE, num_threads=1)
        self.runner = interpreter.get_signature_runner("serving_default")

    # A latency budget past any wait here: BentoML refuses (503) what it expects to miss it.
    @bentoml.api(batchable=True, max_batch_size=64, max_latency_ms=10_000, route="/predict")
    def predict(self, images: list[Path]) -> list[dict]:
        batch = np.stack([self.decode(path.read_bytes(), SIZE) for path in images])
        probabilities = np.array(self.runner(images=batch.astype(np.float32))["probabilities"])
        return [{"index": int(p.argmax()), "probabilities": p.tolist()} for p in probabilities]
