"""`python -m tools.peers [--rounds 3] [--seconds 5] [--venvs DIR]`: this service, LitServe
and BentoML serving the bundled model's LiteRT file (the one `MODEL_PRECISION=auto` picks)
with the same decoder (`service.imaging`), taking turns under wrk at 1 and 64 connections
sending single 64x64 JPEGs (each in the multipart field its server reads), and the ratios.
Each peer runs from its own virtual environment under --venvs, created and installed here on
first use (PyPI), never in the project's. Needs `wrk`."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from service.runtime import DEFAULT_MODEL_DIR, TFLITE_FILE, TFLITE_INT8_FILE, ModelMetadata
from tools.bench import free_port as bench_port
from tools.bench import (
    multipart,
    sample_jpeg,
    side_by_side,
    start_server,
    table,
    wait_until_serving,
    wrk,
)

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# Each peer: what its environment installs (pinned: the figures name the version), and its app.
# `field`: the multipart field its app reads one image from.
PEERS = {
    "litserve": {
        "packages": ["litserve==0.2.19", "python-multipart"],
        "command": ["{python}", str(HERE / "litserve_app.py"), "{port}"],
        "field": "image",
    },
    "bentoml": {
        "packages": ["bentoml==1.4.40"],
        "command": ["{bin}/bentoml", "serve", "bentoml_app:Classifier", "--port", "{port}"],
        "field": "images",  # a batchable API takes a list
    },
}
# What the peers' apps import of this project: the decoder and LiteRT.
COMMON = ["numpy", "pillow>=11.3", "pillow-heif", "ai-edge-litert"]


def environment(venvs: Path, name: str) -> Path:
    """The peer's Python, in its own virtual environment (created and filled once)."""
    folder = venvs / name
    python = folder / "bin" / "python"
    wanted = " ".join(PEERS[name]["packages"] + COMMON)
    marker = folder / "installed.txt"
    if not (marker.is_file() and marker.read_text() == wanted):
        print(f"installing {wanted} into {folder} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *wanted.split()],
            check=True,
            env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"),
        )
        marker.write_text(wanted)
    return python


def start_peer(python: Path, name: str, model_file: Path, single: bytes):
    port = bench_port()
    env = dict(os.environ, MODEL_FILE=str(model_file), PYTHONPATH=str(ROOT))
    values = {"python": str(python), "bin": str(python.parent), "port": str(port)}
    process = subprocess.Popen(
        [part.format(**values) for part in PEERS[name]["command"]],
        cwd=HERE,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, for stop()
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(process, url, single, name, time.perf_counter(), timeout=120, poll=0.1)
    return process, url


def stop(process: subprocess.Popen, group: bool) -> None:
    """Stop a server; with `group`, every process in its process group too (`start_peer`
    gives each peer its own): LitServe's forked workers outlive their parent's exit and would
    go on taking CPU from whatever is measured next."""
    if not group:
        process.terminate()
        process.wait(timeout=15)
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the group is empty
            os.killpg(process.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--venvs", type=Path, default=Path.home() / ".cache" / "mug-classifier-peers"
    )
    args = parser.parse_args()
    metadata = ModelMetadata.read(args.model_dir)
    precision = metadata.served_precision("auto")
    model_file = args.model_dir / (TFLITE_INT8_FILE if precision == "int8" else TFLITE_FILE)
    jpeg = sample_jpeg()
    single = multipart("image", [jpeg])
    peer_bodies = {name: multipart(peer["field"], [jpeg]) for name, peer in PEERS.items()}
    processes = []
    try:
        process, url = start_server(args.model_dir, "litert", single)[:2]
        processes.append(process)
        urls = {"service": url}
        for name in PEERS:
            python = environment(args.venvs, name)
            process, urls[name] = start_peer(python, name, model_file, peer_bodies[name])
            processes.append(process)
        with tempfile.TemporaryDirectory() as folder:
            body = Path(folder, "single")
            body.write_bytes(single)
            own = {}
            for name, data in peer_bodies.items():
                own[name] = Path(folder, name)
                own[name].write_bytes(data)
            for name, url in urls.items():
                wrk(url, own.get(name, body), 64, 2)  # warm-up
            results = side_by_side(urls, {"single": body}, args.seconds, args.rounds, own)
    finally:
        for index, process in enumerate(processes):
            stop(process, group=index > 0)  # the first is the service
    ours = results["service"]
    for result in results.values():  # the service's figure over this server's
        result["service_rate_vs_this_64_clients"] = round(
            ours["service_images_per_s_64_clients"] / result["service_images_per_s_64_clients"], 2
        )
        result["service_p50_vs_this_1_client"] = round(
            ours["p50_ms_1_client"] / result["p50_ms_1_client"], 2
        )
    print(f"model file: {model_file} ({precision})")
    print(table(results))


if __name__ == "__main__":
    main()
