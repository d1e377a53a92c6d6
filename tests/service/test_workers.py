"""WORKERS=2: two server processes on one port, each answering with its own model; SIGTERM
drains and stops them all within Cloud Run's grace."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx2
import pytest

from tests.conftest import running_service

pytestmark = pytest.mark.slow


def worker_pids(pid: int) -> list[int]:
    """The server processes `pid` spawned (not multiprocessing's resource tracker)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return [
        child for child in found if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def test_two_workers_serve_and_stop_together(model_dir: Path, test_photos) -> None:
    photo, label = test_photos[300]
    with running_service(MODEL_DIR=str(model_dir), WORKERS="2") as (url, process):
        workers = worker_pids(process.pid)
        assert len(workers) == 2
        with httpx2.Client(base_url=url) as client:
            for _ in range(20):
                response = client.post("/predict", files={"image": photo.read_bytes()})
                assert response.status_code == 200 and response.json()["index"] == label
        process.send_signal(signal.SIGTERM)
        terminated = time.monotonic()
        time.sleep(0.3)
        # Each GET is a new connection, which either worker may accept: both are draining,
        # the one that was still starting when the signal came too.
        assert [httpx2.get(f"{url}/health").status_code for _ in range(10)] == [503] * 10
        process.wait(timeout=15)
        assert time.monotonic() - terminated < 10
    assert process.returncode == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
