"""The examples /docs shows, made from the loaded model: its labels, its threshold, its version
and its name, so the documentation of a flower model speaks of flowers. The schemas themselves
(`service.schemas`) hold for any model."""

from __future__ import annotations

import math
from typing import Any

from service.model import UNKNOWN, ImageClassifier
from service.schemas import EXAMPLE_HEATMAP

# Illustrative logits: a clear answer for one class, and a photo the model cannot place.
_CLEAR_LEAD = 9.0
_UNSURE_LEAD = 0.05


def _softmax(logits: list[float]) -> list[float]:
    peak = max(logits)
    exps = [math.exp(v - peak) for v in logits]
    return [v / sum(exps) for v in exps]


def _prediction(model: ImageClassifier, top: int, lead: float, unknown: bool) -> dict[str, Any]:
    labels = model.labels
    logits = [lead if i == top else -0.01 * i for i in range(len(labels))]
    probabilities = _softmax(logits)
    score = round(-math.log(max(probabilities)), 4)
    threshold = model.unknown_threshold
    return {
        "label": UNKNOWN if unknown else labels[top],
        "index": None if unknown else top,
        "probabilities": {
            label: round(p, 6) for label, p in zip(labels, probabilities, strict=True)
        },
        "novelty": {"score": score, "threshold": threshold},
        "model_version": model.version,
    }


def prediction_examples(model: ImageClassifier) -> list[dict[str, Any]]:
    """A clear answer, and (when the model can answer `unknown`) a refused photo."""
    top = min(1, len(model.labels) - 1)
    examples = [_prediction(model, top, _CLEAR_LEAD, unknown=False)]
    refused = _prediction(model, 0, _UNSURE_LEAD, unknown=True)
    threshold = model.unknown_threshold
    if threshold is not None and refused["novelty"]["score"] > threshold:
        examples.append(refused)
    return examples


def add_model_examples(schema: dict[str, Any], model: ImageClassifier) -> dict[str, Any]:
    """`schema` (FastAPI's OpenAPI document) with the model's examples in its components."""
    components = schema.get("components", {}).get("schemas", {})
    predictions = prediction_examples(model)
    clear = predictions[0]
    tf_serving = {
        "classes": clear["index"],
        "probabilities": list(clear["probabilities"].values()),
        "unknown": False,
    }
    examples = {
        "Prediction": predictions,
        "BatchPrediction": [{"predictions": predictions}],
        "Explanation": [clear | {"heatmap": EXAMPLE_HEATMAP}],
        "TFServingPrediction": [tf_serving],
        "TFServingResponse": [{"predictions": [tf_serving], "model_version": model.version}],
        "HealthResponse": [
            {
                "status": "ok",
                "model_version": model.version,
                "api_key_required": False,
                "feedback": False,
            }
        ],
    }
    for name, values in examples.items():
        if name in components:
            components[name]["examples"] = values
    size = model.image_size
    schema["info"]["description"] = (
        f"Model `{model.name}` {model.version}: tells apart {', '.join(model.labels)} "
        f"(input {size}x{size} pixels). " + schema["info"].get("description", "")
    )
    return schema
