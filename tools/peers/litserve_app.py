"""The bundled model in LitServe, for `tools.peers`: the same LiteRT file the service serves
(MODEL_FILE), the same decoder (`service.imaging.decode_image`), one inference worker
batching up to 64 requests with a 2 ms timeout. Run in LitServe's own virtual environment:
`python litserve_app.py PORT`."""

from __future__ import annotations

import os
import sys

import litserve as ls
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from service.imaging import decode_image

MODEL_FILE = os.environ["MODEL_FILE"]
SIZE = int(os.environ.get("IMAGE_SIZE", "64"))


class Classifier(ls.LitAPI):
    def setup(self, device: str) -> None:
        interpreter = Interpreter(model_path=MODEL_FILE, num_threads=os.cpu_count())
        self.runner = interpreter.get_signature_runner("serving_default")

    def decode_request(self, request) -> np.ndarray:
        upload = request["image"]
        return decode_image(upload.file.read(), SIZE)

    def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.stack(inputs)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return np.array(self.runner(images=images.astype(np.float32))["probabilities"])

    def unbatch(self, output: np.ndarray) -> list[np.ndarray]:
        return list(output)

    def encode_response(self, probabilities: np.ndarray) -> dict:
        return {"index": int(probabilities.argmax()), "probabilities": probabilities.tolist()}


if __name__ == "__main__":
    api = Classifier(max_batch_size=64, batch_timeout=0.002, api_path="/predict")
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(
        port=int(sys.argv[1]), host="127.0.0.1", log_level="warning", generate_client_file=False
    )
