"""The results table of `tools.seeds`: a row per seed from its metrics.json, the issue's
twenty conditions apart from the suite's own additions, the mean and the worst seed."""

from __future__ import annotations

from tools.seeds import row, table
from training.corruptions import BEYOND_THE_ISSUE, SEVERITIES, SUITE


def _report(seed: int, accuracies: dict[str, float]) -> dict:
    conditions = [
        {"name": c.name, "severity": s, "accuracy": accuracies.get(f"{c.name} {s}", 1.0)}
        for c in SUITE
        for s in SEVERITIES
    ]
    worst = min(conditions, key=lambda c: c["accuracy"])
    return {
        "seed": seed,
        "evaluation": {"accuracy": 0.99, "errors": 5, "ece": 0.01},
        "corruptions": {
            "conditions": conditions,
            "mean_accuracy": sum(c["accuracy"] for c in conditions) / len(conditions),
            "worst": worst,
        },
        "calibration": {"temperature": 0.3},
        "wall_time_s": 600.0,
        "unknown": {"kept_correct": 0.97, "non_mug_validation_unknown": 0.95},
    }


def test_the_issues_conditions_leave_out_the_suites_own() -> None:
    assert BEYOND_THE_ISSUE == ("farther",)
    asked = len(SUITE) - len(BEYOND_THE_ISSUE)
    figures = row(_report(1, {"farther 2": 0.5, "rotation 2": 0.9, "jpeg 1": 0.96}))
    assert figures["worst"] == 0.5 and figures["worst_name"] == "farther 2"
    assert figures["issue_worst"] == 0.9 and figures["issue_worst_name"] == "rotation 2"
    expected_mean = (2 * asked - 0.1 - 0.04) / (2 * asked)
    assert abs(figures["issue_mean"] - expected_mean) < 1e-9


def test_the_table_gives_each_seed_then_the_mean_and_the_worst_seed() -> None:
    rows = [row(_report(1, {"rotation 2": 0.9})), row(_report(2, {"low_contrast 2": 0.94}))]
    lines = table(rows).splitlines()
    assert len(lines) == 2 + 2 + 2
    assert "issue's 20: worst" in lines[0]
    assert "| 90.0% (rotation 2) |" in lines[2] and "| 94.0% (low_contrast 2) |" in lines[3]
    mean, worst = lines[4].split(" | "), lines[5].split(" | ")
    assert mean[0] == "| **mean**" and worst[0] == "| **worst seed**"
    assert mean[6] == "92.0%" and worst[6] == "90.0%"  # the issue's worst: mean, then lowest
