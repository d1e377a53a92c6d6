"""Drift: training stores a reference of its answers on held-out photos, and
`python -m service.drift` compares a prediction log with it day by day."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from service.drift import CONFIDENCE_EDGES, compare, psi, reference_figures, verdict
from service.runtime import ModelMetadata
from tests.conftest import subprocess_env


def lines_like(reference: dict, day: str, count: int, seed: int) -> list[dict]:
    """Log lines drawn from `reference`: its label mix and its confidence bins."""
    rng = np.random.default_rng(seed)
    labels = list(reference["label_mix"])
    classes = [label for label in labels if label != "unknown"]
    mix = np.asarray(list(reference["label_mix"].values()))
    bins = rng.choice(len(reference["confidence"]), count, p=reference["confidence"])
    lines = []
    for i, (label, b) in enumerate(
        zip(rng.choice(labels, count, p=mix / mix.sum()), bins, strict=True)
    ):
        top = rng.uniform(CONFIDENCE_EDGES[b], CONFIDENCE_EDGES[b + 1])
        lines.append(line(day, i, str(label), classes, top))
    return lines


def line(day: str, i: int, label: str, classes: list[str], top: float) -> dict:
    rest = (1 - top) / (len(classes) - 1)
    first = classes[0] if label == "unknown" else label
    probabilities = {c: (top if c == first else rest) for c in classes}
    return {
        "kind": "prediction", "time": f"{day}T12:00:00.000+00:00", "request_id": f"{day}-{i}",
        "image_index": 0, "label": label, "probabilities": probabilities,
    }  # fmt: skip


def write_log(root: Path, lines: list[dict]) -> Path:
    folder = root / lines[0]["time"][:10]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "120000-a.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root


def test_training_stores_the_reference(two_class_model: Path) -> None:
    reference = ModelMetadata.read(two_class_model).reference
    assert set(reference["label_mix"]) == {"dark", "light", "unknown"}
    assert abs(sum(reference["label_mix"].values()) - 1) < 1e-9
    assert len(reference["confidence"]) == len(CONFIDENCE_EDGES) - 1
    assert abs(sum(reference["confidence"]) - 1) < 1e-9 and reference["n"] > 0
    assert reference["fitted_on"].endswith("held-out photos, as taken")


def test_psi_and_its_verdicts() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0
    assert verdict(psi([0.55, 0.45], [0.5, 0.5])) == "stable"
    assert verdict(psi([0.7, 0.3], [0.5, 0.5])) == "watch"
    assert verdict(psi([1.0, 0.0], [0.5, 0.5])) == "drifted"
    figures = reference_figures(["a", "b"], ["a", "b", "unknown", "a"], [0.9, 0.95, 0.4, 1.0])
    assert figures["label_mix"] == {"a": 0.5, "b": 0.25, "unknown": 0.25}
    assert figures["confidence"][0] == 0.25 and figures["confidence"][-1] == 0.25


def test_the_command_flags_a_shifted_day_and_passes_an_unshifted_one(
    two_class_model: Path, tmp_path: Path
) -> None:
    reference = ModelMetadata.read(two_class_model).reference
    rarest = min(["dark", "light"], key=lambda label: reference["label_mix"][label])
    usual = lines_like(reference, "2026-12-01", 600, seed=1)
    one_class_unsure = [line("2026-12-02", i, rarest, ["dark", "light"], 0.55) for i in range(300)]
    log = write_log(tmp_path / "log", usual)
    write_log(log, one_class_unsure)
    write_log(log, [line("2026-12-03", 0, "dark", ["dark", "light"], 0.9)])
    result = subprocess.run(
        [sys.executable, "-m", "service.drift", str(log), "--model-dir", str(two_class_model),
         "--json"],
        capture_output=True, text=True, env=subprocess_env(), timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["thresholds"] == {"watch": 0.1, "drifted": 0.25}
    days = {row["day"]: row for row in report["days"]}
    assert days["2026-12-01"]["verdict"] == "stable", days["2026-12-01"]
    assert days["2026-12-02"]["verdict"] == "drifted"
    assert days["2026-12-02"]["verdicts"]["label_mix"] == "drifted"
    assert days["2026-12-03"]["verdict"] == "too few answers"
    table = subprocess.run(
        [sys.executable, "-m", "service.drift", str(log), "--model-dir", str(two_class_model)],
        capture_output=True, text=True, env=subprocess_env(), timeout=120,
    ).stdout  # fmt: skip
    assert "2026-12-02" in table and "drifted" in table and "PSI under 0.1: stable" in table


def test_rows_count_only_predictions() -> None:
    reference = reference_figures(["a", "b"], ["a", "b"] * 20, [0.9] * 40)
    rows = compare([line("2026-12-01", 0, "a", ["a", "b"], 0.9) | {"kind": "feedback"}], reference)
    assert rows == []
