"""`python -m tools.bench [--json] [--setup NAME ...] [--url URL]`: how fast the service is on
this machine, against the ceiling the model and decoding set, for several setups side by side
in one run (the machine's speed drifts by up to 2x from hour to hour: compare within a run).

The setups (SETUPS): `baseline` (float LiteRT, one process: the service before the quantised
model; `--baseline-model` gives it that time's model too; with `--baseline-rev REV`, the
service of git revision REV with the default settings, as `auto`), `float`, `int8` (the quantised
model), `2-workers` (WORKERS=2, the precision `auto` picks), `int8-2-workers` and
`tensorflow`. For each,
in this process: the model alone (batch 64 of decoded images: the ceiling), decoding one
64x64 JPEG, and `service.batch` over 3,000 JPEG files on disk. Then it starts every setup's
service on a loopback port (or uses --url), timing process start to first answer, and loads
them with `wrk` (a C load generator that costs the server little CPU, unlike a Python
client): 1 and 64 connections sending single-image multipart requests, the setups taking
turns for --rounds rounds (medians reported, with ratios to the baseline); then each on its
own: 1 connection to /explain, 8 sending 32-image requests, and 1,500 connections twice
(overload: what is answered 200, what is shed with 503, any other status, latency, memory),
first with clients that wait as long as Retry-After says, then with clients that send again
at once, as wrk does. `--floods` adds that last flood to every round, right after each
setup's 64-client run, so the overload figures are side by side too. Needs `wrk` on the
PATH (Debian: `apt-get install wrk`). Loopback only, about a minute a setup.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from service.config import Settings
from service.imaging import decode_image
from service.runtime import DEFAULT_MODEL_DIR, load_predictor

BOUNDARY = "benchboundary"
# What is compared side by side in one run: settings each server is started with. "baseline"
# is the service as it was before the quantised model (float LiteRT, one process); with
# --baseline-model, also with the model of that time.
SETUPS: dict[str, dict[str, Any]] = {
    "baseline": {"model_runtime": "litert", "model_precision": "float"},
    "float": {"model_runtime": "litert", "model_precision": "float"},
    "int8": {"model_runtime": "litert", "model_precision": "int8"},
    "2-workers": {"model_runtime": "litert", "model_precision": "auto", "workers": 2},
    "int8-2-workers": {"model_runtime": "litert", "model_precision": "int8", "workers": 2},
    "tensorflow": {"model_runtime": "tensorflow", "model_precision": "float"},
    # The prediction log's cost: the default service, without and with a sampled log.
    "auto": {"model_runtime": "litert", "model_precision": "auto"},
    "log-0.1": {
        "model_runtime": "litert",
        "model_precision": "auto",
        "prediction_log": str(Path(tempfile.gettempdir(), "bench-prediction-log")),
        "prediction_log_sample": 0.1,
    },
    "log-1": {
        "model_runtime": "litert",
        "model_precision": "auto",
        "prediction_log": str(Path(tempfile.gettempdir(), "bench-prediction-log")),
        "prediction_log_sample": 1.0,
    },
}
DEFAULT_SETUPS = ("baseline", "float", "int8", "2-workers")
OVERLOAD_CONNECTIONS = 1500
_LUA = """
local f = io.open("{body}", "rb")
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "multipart/form-data; boundary={boundary}"
"""
# Overload runs: every status counted (wrk itself only counts "non-2xx"), and with
# `backoff = true` a client that honours Retry-After: each 503 delays one request of the
# thread by that many seconds (wrk asks `delay()` before each request, per thread, not per
# connection; the count of delays matches the count of 503s).
_LUA_OVERLOAD = """
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {{}}; owed = {{}} end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  local retry = tonumber(headers["retry-after"] or headers["Retry-After"] or "")
  if {backoff} and status == 503 and retry then table.insert(owed, retry * 1000) end
end
function delay() return table.remove(owed, 1) or 0 end
function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      io.write(string.format("status %d: %d\\n", status, count))
    end
  end
end
"""


# The bundled model's input: the sample photo is sent at the size the model sees.
SAMPLE_SIZE = 64


def sample_jpeg() -> bytes:
    """A 64x64 photo-like JPEG (smooth shapes and noise), so no dataset is needed."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:SAMPLE_SIZE, 0:SAMPLE_SIZE]
    mug = ((x - 32) ** 2 / 300 + (y - 34) ** 2 / 500 < 1)[..., None]
    table = np.stack([120 + y // 2, np.full_like(y, 140), 110 + x // 3], axis=-1)
    pixels = np.where(mug, np.array([30, 30, 35]), table).astype(float)
    pixels = np.clip(pixels + rng.normal(0, 6, pixels.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def multipart(field: str, images: list[bytes]) -> bytes:
    parts = [
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="mug{i}.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        + image
        + b"\r\n"
        for i, image in enumerate(images)
    ]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def raw_images_per_s(settings: Settings, seconds: float = 3.0) -> float:
    """The ceiling of the model alone: batch 64 of already decoded images, with the
    threads the service would use."""
    predictor = load_predictor(
        settings.model_location,
        settings.model_runtime,
        settings.model_threads,
        settings.model_precision,
    )
    size = predictor.metadata.input_size
    batch = np.random.default_rng(0).integers(0, 255, (64, size, size, 3), np.uint8)
    predictor.predict(batch)
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        predictor.predict(batch)
        calls += 1
    return calls * 64 / (time.perf_counter() - started)


def decode_us_per_image(jpeg: bytes, repeat: int = 3000) -> float:
    decode_image(jpeg, SAMPLE_SIZE)
    started = time.perf_counter()
    for _ in range(repeat):
        decode_image(jpeg, SAMPLE_SIZE)
    return (time.perf_counter() - started) / repeat * 1e6


def batch_images_per_s(settings: Settings, count: int = 3000) -> float:
    """`service.batch` over `count` distinct 64x64 JPEG files in a temporary folder."""
    from service.batch import run

    rng = np.random.default_rng(1)
    base = np.asarray(Image.open(io.BytesIO(sample_jpeg())), dtype=np.int16)
    with tempfile.TemporaryDirectory() as folder:
        for i in range(count):
            shifted = np.clip(base + rng.integers(-20, 20, 3), 0, 255).astype(np.uint8)
            Image.fromarray(shifted).save(Path(folder, f"{i:05d}.jpg"), quality=90)
        counts = asyncio.run(run(folder, str(Path(folder, "out.jsonl")), settings))
    return counts["files"] / counts["seconds"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0


def start_server(
    model_dir: Path, runtime: str, single: bytes, code: Path | None = None, **settings: Any
) -> tuple[subprocess.Popen, str, float]:
    """Start `python -m service` (from the checkout `code`, else this one); returns it, its
    URL and seconds to the first 200 /predict."""
    port = free_port()
    env = dict(
        os.environ, HOST="127.0.0.1", PORT=str(port), MODEL_DIR=str(model_dir),
        MODEL_RUNTIME=runtime, LOG_LEVEL="warning",
        **{name.upper(): str(value) for name, value in settings.items()},
    )  # fmt: skip
    if code is not None:  # its `service` package comes first on the path
        env["PYTHONPATH"] = str(code)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "service"],
        env=env,
        cwd=code,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(process, url, single, f"the {runtime} service", started, timeout=60)
    return process, url, time.perf_counter() - started


def wait_until_serving(
    process: subprocess.Popen,
    url: str,
    body: bytes,
    name: str,
    started: float,
    timeout: float,
    poll: float = 0.01,
) -> None:
    """Return once `url`/predict answers `body` with 200; stop the run if `process` exits or
    `timeout` seconds pass from `started` (a perf_counter time) first."""
    while post(f"{url}/predict", body) != 200:
        if process.poll() is not None or time.perf_counter() - started > timeout:
            process.kill()
            raise SystemExit(f"error: {name} did not start")
        time.sleep(poll)


@contextlib.contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """The repository's tree at `revision` in a temporary folder (`git archive`): its own
    `service` package, run with this environment's dependencies."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="bench-rev-") as folder:
        archive = subprocess.run(
            ["git", "-C", str(root), "archive", revision], capture_output=True, check=False
        )
        if archive.returncode != 0:
            raise SystemExit(f"error: git archive {revision}: {archive.stderr.decode().strip()}")
        subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
        yield Path(folder)


def settle(url: str, single: bytes, seconds: float = 3.0) -> None:
    """Wait until a request is answered 200 again, then `seconds` more: an overload run
    leaves requests queued behind it that would otherwise weigh on the next run."""
    while post(f"{url}/predict", single) != 200:
        time.sleep(0.1)
    time.sleep(seconds)


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` and every process below it (the workers), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    total = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += rss_mb(int(child))
    return total


def wrk(
    url: str,
    body_file: Path,
    connections: int,
    seconds: int,
    overload: str | None = None,
    path: str = "/predict",
) -> dict[str, Any]:
    """Requests/s and latency percentiles from one wrk run. `overload` ("flood": clients
    that send again at once, "backoff": clients that honour Retry-After) counts answers by
    status instead of failing the benchmark on anything but 2xx."""
    script_text = _LUA.format(body=body_file, boundary=BOUNDARY)
    if overload:
        script_text += _LUA_OVERLOAD.format(backoff=str(overload == "backoff").lower())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(script_text)
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
        "-s", script.name, f"{url}{path}",
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    if not overload and "Non-2xx" in output:
        raise SystemExit(f"error: the service answered errors under load:\n{output}")
    total = int(re.search(r"(\d+) requests in", output).group(1))
    statuses = {int(s): int(n) for s, n in re.findall(r"status (\d+): (\d+)", output)}
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "ok_per_s": statuses.get(200, total) / seconds,
        "statuses": statuses,
        # Of the answers counted by status (overload runs): the share shed with 503, and how
        # many were anything but 200 and 503.
        "shed_share": statuses.get(503, 0) / max(1, sum(statuses.values())),
        "other_statuses": sum(n for s, n in statuses.items() if s not in (200, 503)),
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
        "p50_ms": _latency_ms(output, "50%"),
        "p99_ms": _latency_ms(output, "99%"),
    }


def _latency_ms(output: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", output).groups()
    return round(float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit], 2)


def model_figures(settings: Settings) -> dict[str, Any]:
    """In this process, with nothing else running: the model alone, decoding, the ceiling
    they set, and the batch command against it."""
    result: dict[str, Any] = {
        "raw_images_per_s": round(raw_images_per_s(settings), 1),
        "decode_us_per_image": round(decode_us_per_image(sample_jpeg()), 1),
    }
    result["ceiling_images_per_s"] = round(
        1 / (1 / result["raw_images_per_s"] + result["decode_us_per_image"] * 1e-6), 1
    )
    result["batch_command_images_per_s"] = round(batch_images_per_s(settings), 1)
    result["batch_command_fraction_of_ceiling"] = round(
        result["batch_command_images_per_s"] / result["ceiling_images_per_s"], 2
    )
    return result


def side_by_side(
    urls: dict[str, str],
    bodies: dict[str, Path],
    seconds: int,
    rounds: int,
    own_bodies: dict[str, Path] | None = None,
    floods: bool = False,
) -> dict[str, dict[str, Any]]:
    """1 and 64 clients sending single images to every server in turn, `rounds` times: the
    setups take turns, each round starting with the next one, so a drift in the machine's
    speed and the order weigh on all of them alike. The median round of each figure. A
    server in `own_bodies` is sent that body (its own form of the same image) instead. With
    `floods`, each 64-client run is followed by 1,500 connections sending again at once
    (`flood_figures`)."""
    runs: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {name: [] for name in urls}
    flood_runs: dict[str, list[dict[str, Any]]] = {name: [] for name in urls}
    names = list(urls)
    for round_ in range(rounds):
        start = round_ % len(names)
        for name in names[start:] + names[:start]:
            url, body = urls[name], (own_bodies or {}).get(name, bodies["single"])
            one = wrk(url, body, 1, seconds)
            many = wrk(url, body, 64, seconds)
            settle(url, body.read_bytes(), 1.0)  # wrk leaves requests in flight
            runs[name].append((one, many))
            if floods:
                flood = wrk(url, body, OVERLOAD_CONNECTIONS, seconds, overload="flood")
                settle(url, body.read_bytes())
                flood_runs[name].append(
                    flood | {"vs_64_clients": flood["ok_per_s"] / many["requests_per_s"]}
                )
    return {
        name: {
            "service_images_per_s_1_client": _median(one["requests_per_s"] for one, _ in pairs),
            "service_images_per_s_64_clients": _median(m["requests_per_s"] for _, m in pairs),
            "p50_ms_1_client": _median(one["p50_ms"] for one, _ in pairs),
            "p99_ms_1_client": _median(one["p99_ms"] for one, _ in pairs),
            "p50_ms_64_clients": _median(many["p50_ms"] for _, many in pairs),
            "p99_ms_64_clients": _median(many["p99_ms"] for _, many in pairs),
        }
        | (flood_figures(flood_runs[name]) if floods else {})
        for name, pairs in runs.items()
    }


def flood_figures(floods: list[dict[str, Any]]) -> dict[str, Any]:
    """The rounds' floods (1,500 connections sending again at once), each against the same
    round's 64-client rate: the medians, how many rounds answered at least 0.85 of it with 200
    (the overload target), the worst p99, and anything but 200 and 503."""
    return {
        "flood_200_per_s": _median(f["ok_per_s"] for f in floods),
        "flood_200_vs_64_clients": _median(f["vs_64_clients"] for f in floods),
        "flood_rounds_at_0.85": f"{sum(f['vs_64_clients'] >= 0.85 for f in floods)}/{len(floods)}",
        "flood_503_share": _median(f["shed_share"] for f in floods),
        "flood_p99_ms_worst": max(f["p99_ms"] for f in floods),
        "flood_other_statuses": sum(f["other_statuses"] for f in floods),
        "flood_socket_errors": sum(f["socket_errors"] for f in floods),
    }


def load_figures(
    url: str, bodies: dict[str, Path], seconds: int, per_s_64_clients: float, pid: int | None
) -> dict[str, Any]:
    """One server on its own: /explain at 1 client, 8 clients sending 32 images, resident
    memory, then 1,500 connections twice (Retry-After honoured, then retrying at once)."""
    single = bodies["single"].read_bytes()
    one = wrk(url, bodies["single"], 1, seconds)
    explained = wrk(url, bodies["single"], 1, seconds, path="/explain")
    batched = wrk(url, bodies["batch32"], 8, seconds)
    result: dict[str, Any] = {
        "service_images_per_s_batch32": round(batched["requests_per_s"] * 32, 1),
        # One explanation's time in predictions' time (the budget is 10).
        "explain_cost_in_predictions": round(
            one["requests_per_s"] / explained["requests_per_s"], 2
        ),
    }
    if pid is not None:
        result["rss_mb"] = round(rss_mb(pid), 1)
    for kind in ("backoff", "flood"):  # "flood": clients that retry at once
        flood = wrk(url, bodies["single"], OVERLOAD_CONNECTIONS, seconds, overload=kind)
        settle(url, single)  # what the closed connections left queued is answered
        prefix = "overload" if kind == "flood" else "overload_backoff"
        result |= {
            f"{prefix}_200_per_s": round(flood["ok_per_s"], 1),
            f"{prefix}_200_vs_64_clients": round(flood["ok_per_s"] / per_s_64_clients, 2),
            f"{prefix}_503_share": round(flood["shed_share"], 3),
            f"{prefix}_other_statuses": flood["other_statuses"],
            f"{prefix}_socket_errors": flood["socket_errors"],
            f"{prefix}_p50_ms": flood["p50_ms"],
            f"{prefix}_p99_ms": flood["p99_ms"],
        }
    if pid is not None:
        result["overload_rss_mb"] = round(rss_mb(pid), 1)
    return result


def bench(
    names: list[str],
    setups: dict[str, dict[str, Any]],
    model_dirs: dict[str, Path],
    url: str | None,
    seconds: int,
    rounds: int,
    code: dict[str, Path] | None = None,
    floods: bool = False,
) -> dict[str, dict[str, Any]]:
    """Every figure for every setup: the in-process ones first, then every server started
    (unless `url`; a setup in `code` from that checkout) and loaded side by side, then each
    on its own."""
    results = {
        name: model_figures(Settings(model_dir=model_dirs[name], **setups[name])) for name in names
    }
    jpeg = sample_jpeg()
    single = multipart("image", [jpeg])
    processes: dict[str, subprocess.Popen] = {}
    urls: dict[str, str] = {}
    try:
        for name in names:
            if url is not None:
                urls[name] = url
                continue
            setup = dict(setups[name])
            runtime = setup.pop("model_runtime")
            processes[name], urls[name], cold_start = start_server(
                model_dirs[name], runtime, single, (code or {}).get(name), **setup
            )
            results[name]["cold_start_s"] = round(cold_start, 2)
        with tempfile.TemporaryDirectory() as folder:
            bodies = {"single": Path(folder, "single"), "batch32": Path(folder, "batch32")}
            bodies["single"].write_bytes(single)
            bodies["batch32"].write_bytes(multipart("images", [jpeg] * 32))
            for name_url in urls.values():
                wrk(name_url, bodies["single"], 64, 2)  # warm-up
                settle(name_url, single, 1.0)
            for name, figures in side_by_side(urls, bodies, seconds, rounds, floods=floods).items():
                results[name] |= figures
            for name, name_url in urls.items():
                result = results[name]
                result["fraction_of_ceiling_64_clients"] = round(
                    result["service_images_per_s_64_clients"] / result["ceiling_images_per_s"], 2
                )
                process = processes.get(name)
                result |= load_figures(
                    name_url,
                    bodies,
                    seconds,
                    result["service_images_per_s_64_clients"],
                    process.pid if process else None,
                )
    finally:
        for process in processes.values():
            process.terminate()
            process.wait(timeout=15)
    return results


def _median(values: Iterable[float]) -> float:
    return round(statistics.median(values), 2)


def table(results: dict[str, dict[str, Any]]) -> str:
    keys = list(next(iter(results.values())))
    width = max(map(len, keys)) + 2
    lines = [f"{'':{width}}" + "".join(f"{name:>16}" for name in results)]
    for key in keys:
        lines.append(f"{key:{width}}" + "".join(f"{r.get(key, '-'):>16}" for r in results.values()))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument(
        "--setup",
        choices=list(SETUPS),
        action="append",
        help=f"what to compare, side by side (default: {', '.join(DEFAULT_SETUPS)})",
    )
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument(
        "--baseline-model",
        type=Path,
        help="the model folder the baseline setup serves (default: --model-dir); e.g. an "
        "earlier release's, to compare with the service as it was",
    )
    parser.add_argument(
        "--baseline-rev",
        help="a git revision whose service the baseline setup runs (same model, same "
        "settings), e.g. the commit before a change, to measure the change side by side",
    )
    parser.add_argument("--url", help="benchmark a running service instead of starting one")
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of 1 and 64 clients, the setups taking turns (the median is reported)",
    )
    parser.add_argument(
        "--floods",
        action="store_true",
        help="each round also floods every setup with 1,500 connections sending again at "
        "once, right after its 64-client run (the overload target, side by side)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("error: wrk not found; install it (Debian: apt-get install wrk)")
    names = args.setup or list(DEFAULT_SETUPS)
    model_dirs = {name: args.model_dir for name in names}
    if args.baseline_model is not None:
        model_dirs["baseline"] = args.baseline_model
    setups = dict(SETUPS)
    with contextlib.ExitStack() as stack:
        code = {}
        if args.baseline_rev is not None:  # that revision's service with today's defaults
            code["baseline"] = stack.enter_context(checkout(args.baseline_rev))
            setups["baseline"] = SETUPS["auto"]
        results = bench(
            names, setups, model_dirs, args.url, args.seconds, args.rounds, code, args.floods
        )
    if "baseline" in results:  # the issue's measures: 64 clients' images/s, 1 client's p50
        base = results["baseline"]
        for result in results.values():
            result["64_clients_vs_baseline"] = round(
                result["service_images_per_s_64_clients"] / base["service_images_per_s_64_clients"],
                2,
            )
            result["1_client_p50_vs_baseline"] = round(
                result["p50_ms_1_client"] / base["p50_ms_1_client"], 2
            )
            if args.floods:
                result["flood_200_vs_baseline"] = round(
                    result["flood_200_per_s"] / base["flood_200_per_s"], 2
                )
    print(table(results))
    if args.json:
        by_metric = {
            key: {r: results[r][key] for r in results if key in results[r]}
            for key in results[names[0]]
        }
        print(json.dumps(by_metric))


if __name__ == "__main__":
    main()
