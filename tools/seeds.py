"""`python -m tools.seeds [--seeds 1 2 3] [--output DIR] [--reuse]`: the results
table. Runs `python -m training.task` once per seed (a process each, its log beside its
model in DIR/seed-N/), then prints a Markdown table of the figures every run wrote to its
metrics.json, with the mean and the worst seed, the machine and the package versions.
`--reuse` prints the table from runs already in DIR without training again.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from service.cpus import usable_cpus
from training.cli import run_command
from training.corruptions import BEYOND_THE_ISSUE
from training.dataset import default_data_dir
from training.report import METRICS_FILE

PACKAGES = ("tensorflow-cpu", "keras", "numpy", "pillow")


def train_seed(seed: int, data_dir: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "training.task", "--seed", str(seed),
        "--data-dir", str(data_dir), "--output", str(folder),
    ]  # fmt: skip
    started = time.monotonic()
    with open(folder / "train.log", "w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise SystemExit(f"error: seed {seed} failed; see {folder / 'train.log'}")
    print(f"seed {seed}: done in {time.monotonic() - started:.0f}s", flush=True)


def row(report: dict[str, Any]) -> dict[str, Any]:
    evaluation, suite = report["evaluation"], report["corruptions"]
    worst = suite["worst"]
    asked = [c for c in suite["conditions"] if c["name"] not in BEYOND_THE_ISSUE]
    worst_asked = min(asked, key=lambda c: c["accuracy"])
    return {
        "seed": report["seed"],
        "accuracy": evaluation["accuracy"],
        "errors": evaluation["errors"],
        "ece": evaluation["ece"],
        "suite_mean": suite["mean_accuracy"],
        "worst": worst["accuracy"],
        "worst_name": f"{worst['name']} {worst['severity']}",
        # The robustness issue's own conditions (the suite less those it did not ask for).
        "issue_mean": sum(c["accuracy"] for c in asked) / len(asked),
        "issue_worst": worst_asked["accuracy"],
        "issue_worst_name": f"{worst_asked['name']} {worst_asked['severity']}",
        "temperature": report["calibration"]["temperature"],
        "minutes": report["wall_time_s"] / 60,
        # The unknown answer: test/ photos kept with their label, non-mug images refused.
        "kept": report["unknown"]["kept_correct"],
        "non_mug_unknown": report["unknown"]["non_mug_validation_unknown"],
    }


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]  # fmt: skip
        cpu = names[0] if names else cpu
    packages = ", ".join(f"{name} {version(name)}" for name in PACKAGES)
    return f"{cpu}, {usable_cpus()} cores; Python {platform.python_version()}, {packages}"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| seed | test accuracy | ECE | suite mean | worst condition | issue's 20: mean | "
        "issue's 20: worst | kept, right label | non-mugs unknown | temperature | minutes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['seed']} | {r['accuracy']:.1%} ({r['errors']} wrong) | {r['ece']:.3f} | "
            f"{r['suite_mean']:.1%} | {r['worst']:.1%} ({r['worst_name']}) | "
            f"{r['issue_mean']:.1%} | {r['issue_worst']:.1%} ({r['issue_worst_name']}) | "
            f"{r['kept']:.1%} | {r['non_mug_unknown']:.1%} | "
            f"{r['temperature']:.2f} | {r['minutes']:.1f} |"
        )
    keys = (
        "accuracy", "ece", "suite_mean", "worst", "issue_mean", "issue_worst", "kept",
        "non_mug_unknown",
    )  # fmt: skip
    mean = {key: sum(r[key] for r in rows) / len(rows) for key in keys}
    # The worst seed on each figure: the highest calibration error, the lowest of the rest.
    worst = {key: (max if key == "ece" else min)(r[key] for r in rows) for key in keys}
    for name, figures in (("mean", mean), ("worst seed", worst)):
        lines.append(
            f"| **{name}** | {figures['accuracy']:.1%} | {figures['ece']:.3f} | "
            f"{figures['suite_mean']:.1%} | {figures['worst']:.1%} | "
            f"{figures['issue_mean']:.1%} | {figures['issue_worst']:.1%} | {figures['kept']:.1%} | "
            f"{figures['non_mug_unknown']:.1%} | | |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--output", type=Path, default=Path("output/seeds"))
    parser.add_argument("--reuse", action="store_true", help="table of the runs in --output")
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        folder = args.output / f"seed-{seed}"
        if not args.reuse:
            train_seed(seed, args.data_dir, folder)
        report_path = folder / METRICS_FILE
        if not report_path.is_file():
            raise SystemExit(f"error: {report_path}: no run of seed {seed} found")
        rows.append(row(json.loads(report_path.read_text())))
    print(f"\n`python -m training.task` on {args.data_dir}, evaluated on test/; {machine()}\n")
    print(table(rows))


if __name__ == "__main__":
    run_command(main)
