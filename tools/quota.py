"""`python -m tools.quota [--image IMAGE] [--cpus 1] [--threads 2 --threads 1] [--rounds 3]`:
the Docker image under a CPU quota (`docker run --cpus`, what Kubernetes' CPU limits and
Cloud Run-like platforms set), once per `MODEL_THREADS` value, side by side in alternating
rounds; `default` leaves the variable unset, so the service picks (`service.cpus`).

A quota leaves the container's affinity at every CPU of the host, so a model that counts
those runs more threads than the quota pays for: they spend a period's time early and are
held off the CPU for the rest of it. For each setting, wrk on the host (outside the quota)
sends single 64x64 JPEGs from 64 connections and then from one, as `tools.bench` does, and
this prints the medians: images/s answered 200, p50 and p99. Needs a Docker engine
(`shared/tools/docker-engine.sh`), an image built from docker/Dockerfile and `wrk`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tools.bench import multipart, post, sample_jpeg, settle, wrk

NAME = "mug-classifier-quota"
PORT = 18111


def run_container(image: str, cpus: str, threads: str, single: bytes) -> str:
    """Start the image under the quota, MODEL_THREADS=`threads` (`default`: unset); its URL
    once it answers `single` (a one-photo request body)."""
    subprocess.run(["docker", "rm", "-f", NAME], capture_output=True)
    environment = [] if threads == "default" else ["-e", f"MODEL_THREADS={threads}"]
    subprocess.run(
        ["docker", "run", "-d", "--name", NAME, "--cpus", cpus, *environment,
         "-p", f"127.0.0.1:{PORT}:8080", image],
        check=True, capture_output=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{PORT}"
    for _ in range(300):  # `post` answers 0 while the port refuses connections
        if post(f"{url}/predict", single) == 200:
            return url
        time.sleep(0.2)
    logs = subprocess.run(["docker", "logs", NAME], capture_output=True, text=True)
    raise SystemExit(f"the container never answered:\n{logs.stderr[-2000:]}")


def measure(url: str, body: Path, single: bytes, seconds: int) -> dict[str, float]:
    """A warm-up, then 64 connections and one sending `body` (a file holding `single`);
    answers counted by status, so a refusal shows in the rate instead of stopping the run."""
    settle(url, single, 1)
    wrk(url, body, 64, 3, overload="flood")
    settle(url, single, 2)
    many = wrk(url, body, 64, seconds, overload="flood")
    settle(url, single, 1)
    one = wrk(url, body, 1, seconds, overload="flood")
    return {
        "images_per_s_64": many["ok_per_s"],
        "p50_ms_64": many["p50_ms"],
        "p99_ms_64": many["p99_ms"],
        "p50_ms_1": one["p50_ms"],
        "p99_ms_1": one["p99_ms"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="mug-classifier", help="built from docker/Dockerfile")
    parser.add_argument("--cpus", default="1", help="the quota, as `docker run --cpus` takes it")
    parser.add_argument(
        "--threads",
        action="append",
        help="a MODEL_THREADS value to compare, or `default` (repeat; default: 2 and default)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    args = parser.parse_args()
    settings = args.threads or ["2", "default"]
    results: dict[str, list[dict[str, float]]] = {threads: [] for threads in settings}
    with tempfile.TemporaryDirectory() as folder:
        single = multipart("image", [sample_jpeg()])
        body = Path(folder, "single.body")
        body.write_bytes(single)
        try:
            for round_number in range(args.rounds):
                # Each round in the other order, so neither setting always follows the other.
                order = settings if round_number % 2 == 0 else settings[::-1]
                for threads in order:
                    url = run_container(args.image, args.cpus, threads, single)
                    figures = measure(url, body, single, args.seconds)
                    results[threads].append(figures)
                    print(
                        f"round {round_number + 1}, MODEL_THREADS={threads}: {figures}", flush=True
                    )
        finally:
            subprocess.run(["docker", "rm", "-f", NAME], capture_output=True)
    print_table(results, args.cpus)


def print_table(results: dict[str, list[dict[str, float]]], cpus: str) -> None:
    """Medians per setting, and each one's 64-client rate over the first setting's."""
    medians: dict[str, dict[str, Any]] = {
        threads: {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        for threads, runs in results.items()
    }
    first = next(iter(medians.values()))["images_per_s_64"]
    print(f"\n--cpus {cpus}, medians of {len(next(iter(results.values())))} rounds")
    print(
        "| MODEL_THREADS | 64 clients, images/s (ratio) | 64 clients p50 / p99 ms "
        "| 1 client p50 / p99 ms |"
    )
    print("|---|---|---|---|")
    for threads, m in medians.items():
        print(
            f"| {threads} | {m['images_per_s_64']:.0f} ({m['images_per_s_64'] / first:.2f}) "
            f"| {m['p50_ms_64']:.0f} / {m['p99_ms_64']:.0f} "
            f"| {m['p50_ms_1']:.2f} / {m['p99_ms_1']:.1f} |"
        )


if __name__ == "__main__":
    main()
