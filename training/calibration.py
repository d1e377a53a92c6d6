"""Temperature scaling: one number that makes the model's probabilities mean what they say.

Fitted on photos held out from training (never on test/): the held-out photos as they are
and under every condition of the photo suite (`training.corruptions.under_every_condition`),
so the fit also sees photos in the light, blur and noise uploads come in, some of which the
model gets wrong. Not on augmented training copies: those stack zoom, exposure, blur and
noise at once, and the temperature fitted on them came out flatter than photos on another
table need (training/EXPERIMENTS.md). The temperature divides the logits inside the exported
graph (`training.model.serving_model`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from training.report import expected_calibration_error

# log-spaced candidates from very sharp to very flat; the fit is a 1-D convex problem.
_CANDIDATES = np.exp(np.linspace(np.log(0.05), np.log(20.0), 801))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = logits / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    probabilities = softmax(logits, temperature)[np.arange(len(labels)), labels]
    return float(-np.log(np.maximum(probabilities, 1e-12)).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """The temperature with the lowest negative log-likelihood on (`logits`, `labels`), with
    the figures before and after, as recorded next to the model."""
    losses = [negative_log_likelihood(logits, labels, t) for t in _CANDIDATES]
    temperature = float(_CANDIDATES[int(np.argmin(losses))])
    return {
        "temperature": round(temperature, 4),
        "method": "temperature scaling, lowest negative log-likelihood",
        "n": len(labels),
        "nll_before": round(negative_log_likelihood(logits, labels, 1.0), 4),
        "nll_after": round(min(losses), 4),
        "ece_before": round(expected_calibration_error(labels, softmax(logits)), 4),
        "ece_after": round(expected_calibration_error(labels, softmax(logits, temperature)), 4),
    }
