"""`python -m training.feedback LOG OUT [--include-confident P]`: the corrections people sent to
/feedback, from the prediction log LOG (local or gs://), as a folder of class folders OUT that
training reads beside the original photos:

    python -m training.full --data-dir photos/ --data-dir OUT

A correction to `none` (none of the classes) goes to OUT/.none/, kept but read by no training
(a hidden folder). `--include-confident P` also adds logged answers whose top probability is
at least P and that no correction contradicts: opt-in, since they are the model's own answers,
not a person's, and labelled as such in OUT/manifest.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from service.predlog import read_log
from service.storage import join, read_bytes, write_bytes
from training.cli import run_command

MANIFEST = "manifest.json"
NONE_FOLDER = ".none"


def export(log: str, out: str, include_confident: float | None = None) -> dict[str, Any]:
    """Write OUT's class folders and manifest; returns the manifest."""
    entries = read_log(log)
    corrected = {e.get("corrects") for e in entries if e["kind"] == "feedback"} - {None}
    corrections: Counter[str] = Counter()
    confident: Counter[str] = Counter()
    for entry in entries:
        if entry["kind"] == "feedback":
            folder = NONE_FOLDER if entry["label"] == "none" else entry["label"]
            corrections[entry["label"]] += 1
        elif (
            include_confident is not None
            and entry["label"] != "unknown"
            and entry["request_id"] not in corrected
            and max(entry["probabilities"].values()) >= include_confident
        ):
            folder = entry["label"]
            confident[entry["label"]] += 1
        else:
            continue
        name = Path(entry["image"]).name
        write_bytes(read_bytes(join(log, entry["image"])), join(out, f"{folder}/{name}"))
    manifest: dict[str, Any] = {
        "log": log,
        "corrections": dict(sorted(corrections.items())),
        "none_of_these": f"{corrections['none']} in {NONE_FOLDER}/ (read by no training)",
        "confident_answers": None,
    }
    if include_confident is not None:
        manifest["confident_answers"] = {
            "min_probability": include_confident,
            "counts": dict(sorted(confident.items())),
            "note": "the model's own answers, not checked by a person (--include-confident)",
        }
    write_bytes((json.dumps(manifest, indent=2) + "\n").encode(), join(out, MANIFEST))
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("log", help="the prediction log folder, local or gs://")
    parser.add_argument("out", help="the class folders to write, local or gs://")
    parser.add_argument(
        "--include-confident",
        type=float,
        metavar="P",
        help="also the logged answers with a top probability of at least P (opt-in)",
    )
    args = parser.parse_args()
    manifest = export(args.log, args.out, args.include_confident)
    print(json.dumps(manifest, indent=2), file=sys.stderr)


if __name__ == "__main__":
    run_command(main)
