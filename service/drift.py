"""`python -m service.drift LOG [--model-dir DIR] [--json]`: is the traffic still what the model
was made for? Compares the prediction log's answers (LOG, local or gs://, as
`service.predlog` writes it), day by day, with the reference training stored in the model's
metadata.json (the same figures on its held-out photos): the label mix, the confidence (the
top probability, in CONFIDENCE_EDGES bins) and the share answered `unknown`, each with a
population stability index (PSI) and a plain verdict.

PSI = sum over bins of (observed - expected) x ln(observed / expected), shares floored at
EPSILON. The usual reading: under WATCH stable, under DRIFTED watch, above drifted.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from service.config import Settings
from service.predlog import read_log
from service.runtime import ModelLoadError, ModelMetadata
from service.storage import StorageError, fetch_folder

CONFIDENCE_EDGES = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
WATCH, DRIFTED = 0.1, 0.25
EPSILON = 1e-4
UNKNOWN = "unknown"
MIN_ANSWERS = 30  # a day with fewer is reported, not judged


def confidence_shares(top_probabilities: Iterable[float]) -> list[float]:
    """The share of answers in each CONFIDENCE_EDGES bin (the last bin includes 1.0)."""
    values = np.clip(np.asarray(list(top_probabilities), dtype=float), 0.0, 1.0)
    counts, _ = np.histogram(values, bins=CONFIDENCE_EDGES)
    return [float(c) / max(len(values), 1) for c in counts]


def reference_figures(
    labels: Sequence[str], answers: Sequence[str], top_probabilities: Sequence[float]
) -> dict[str, Any]:
    """What training stores as the reference: over its held-out photos' answers (labels or
    `unknown`), the label mix, the confidence bins and the share answered unknown."""
    counts = Counter(answers)
    n = max(len(answers), 1)
    return {
        "n": len(answers),
        "label_mix": {label: counts[label] / n for label in [*labels, UNKNOWN]},
        "confidence_edges": list(CONFIDENCE_EDGES),
        "confidence": confidence_shares(top_probabilities),
        "unknown_share": counts[UNKNOWN] / n,
    }


def psi(observed: Sequence[float], expected: Sequence[float]) -> float:
    total = 0.0
    for o, e in zip(observed, expected, strict=True):
        o, e = max(o, EPSILON), max(e, EPSILON)
        total += (o - e) * math.log(o / e)
    return round(total, 4)


def verdict(value: float) -> str:
    return "stable" if value < WATCH else "watch" if value < DRIFTED else "drifted"


def compare(lines: Iterable[dict[str, Any]], reference: dict[str, Any]) -> list[dict[str, Any]]:
    """One row a day of logged predictions: its figures, each PSI against `reference`, and
    the verdict (the worst of the three)."""
    days: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        if line.get("kind", "prediction") == "prediction":
            days[str(line["time"])[:10]].append(line)
    labels = list(reference["label_mix"])
    rows = []
    for day in sorted(days):
        answers = days[day]
        counts = Counter(line["label"] for line in answers)
        n = len(answers)
        mix = [counts[label] / n for label in labels]
        confidence = confidence_shares(max(line["probabilities"].values()) for line in answers)
        unknown = counts[UNKNOWN] / n
        expected_unknown = reference["unknown_share"]
        values = {
            "label_mix": psi(mix, list(reference["label_mix"].values())),
            "confidence": psi(confidence, reference["confidence"]),
            "unknown_share": psi([unknown, 1 - unknown], [expected_unknown, 1 - expected_unknown]),
        }
        judged = n >= MIN_ANSWERS
        rows.append(
            {
                "day": day,
                "answers": n,
                "label_mix": dict(zip(labels, (round(m, 4) for m in mix), strict=True)),
                "unknown_share": round(unknown, 4),
                "mean_confidence": round(
                    float(np.mean([max(line["probabilities"].values()) for line in answers])), 4
                ),
                "psi": values,
                "verdicts": {key: verdict(v) for key, v in values.items()} if judged else {},
                "verdict": verdict(max(values.values())) if judged else "too few answers",
            }
        )
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    header = "day         answers  unknown  confidence  PSI mix / conf / unknown   verdict"
    lines = [header]
    for row in rows:
        p = row["psi"]
        lines.append(
            f"{row['day']}  {row['answers']:>7}  {row['unknown_share']:>7.1%}  "
            f"{row['mean_confidence']:>10.3f}  {p['label_mix']:>7.3f} / {p['confidence']:.3f} / "
            f"{p['unknown_share']:.3f}   {row['verdict']}"
        )
    lines.append(
        f"PSI under {WATCH}: stable; {WATCH} to {DRIFTED}: watch; {DRIFTED} and over: drifted "
        f"(days with fewer than {MIN_ANSWERS} answers are not judged)"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("log", help="the prediction log folder, local or gs://")
    parser.add_argument("--model-dir", help="the model whose reference to compare with")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    location = args.model_dir or Settings().model_location
    try:
        metadata = ModelMetadata.read(fetch_folder(location))
        if metadata.reference is None:
            raise ModelLoadError(
                f"{location}: the model has no reference figures (trained before drift "
                "references: retrain it)"
            )
        rows = compare(read_log(args.log), metadata.reference)
    except (ModelLoadError, StorageError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    if args.json:
        print(json.dumps({"thresholds": {"watch": WATCH, "drifted": DRIFTED}, "days": rows}))
    else:
        print(format_rows(rows))


if __name__ == "__main__":
    main()
