"""Shared fixtures: where the photos are, a tiny copy of the dataset, sample images."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from service.runtime import DEFAULT_MODEL_DIR
from training.dataset import default_data_dir

ROOT = Path(__file__).resolve().parent.parent
CLASS_FOLDERS = ("0white", "1black", "2blue", "3transparant")
# The bundled model's task, as its metadata.json states it (tests may name the mugs; the
# service may not).
MUG_LABELS = ("white", "black", "blue", "transparent")
MUG_SIZE = 64


# What a test needs, read from the fixtures it uses (directly or through others), so the
# markers cannot drift from the tests: `pytest -m "not slow"` is the fast tier, which needs
# neither the photos, Chromium, the storage emulator, a training run nor a server process.
NEEDS = {
    "photos": {"data_dir"},
    "browser": {"browser"},
    "gcs": {"gcs"},
    "training": {"two_class_model", "seven_class_training", "one_epoch_model"},
    "slow": {"live_url", "open_url", "keyed_url"},
}


def free_port() -> int:
    """A loopback port no one listens on now (the OS's choice), for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        needs = [marker for marker, names in NEEDS.items() if fixtures & names]
        for marker in needs:
            item.add_marker(marker)
        if needs or item.get_closest_marker("training"):
            item.add_marker("slow")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real photos: $MUGS_DATA_DIR, else data/. Missing photos fail, never skip."""
    path = default_data_dir()
    if not path.is_absolute():
        path = (Path.cwd() / path).resolve()
    if not (path / "train").is_dir() or not (path / "test").is_dir():
        pytest.fail(
            f"mug photos not found at {path}: set MUGS_DATA_DIR to the folder holding "
            "train/ and test/ (see data/README.md)"
        )
    return path


@pytest.fixture(scope="session")
def test_photos(data_dir: Path) -> list[tuple[Path, int]]:
    """Every test photo with its label, in a stable order."""
    return [
        (photo, label)
        for label, folder in enumerate(CLASS_FOLDERS)
        for photo in sorted((data_dir / "test" / folder).glob("*.jpg"))
    ]


@pytest.fixture(scope="session")
def tiny_data_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/ and test/ with 4 real photos per class, linked from the real dataset."""
    root = tmp_path_factory.mktemp("tiny-mugs")
    for split in ("train", "test"):
        for folder in CLASS_FOLDERS:
            target = root / split / folder
            target.mkdir(parents=True)
            for photo in sorted((data_dir / split / folder).glob("*.jpg"))[:4]:
                (target / photo.name).symlink_to(photo)
    return root


@pytest.fixture(scope="session")
def two_class_model(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model of the mug photos regrouped into `dark` and `light` (a flat folder, split by
    training.task), trained for one epoch at the default size."""
    from tests.datasets import regrouped_mugs, train_model

    data = regrouped_mugs(data_dir, tmp_path_factory.mktemp("two-classes") / "mugs-by-shade")
    output = tmp_path_factory.mktemp("two-class-model")
    train_model(data, output, 1)
    return output


@pytest.fixture(scope="session")
def seven_class_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.datasets import generated_shapes

    return generated_shapes(tmp_path_factory.mktemp("seven-classes") / "shapes")


@pytest.fixture(scope="session")
def seven_class_training(
    seven_class_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """A model of seven classes of generated pictures at 48 pixels, named and titled on the
    command line, trained for two epochs; with what training printed."""
    from tests.datasets import train_model

    output = tmp_path_factory.mktemp("seven-class-model")
    printed = train_model(
        seven_class_data, output, 2, "--image-size", "48", "--name", "shapes",
        "--title", "Which shape is it?",
    )  # fmt: skip
    return output, printed


@pytest.fixture(scope="session")
def seven_class_model(seven_class_training: tuple[Path, str]) -> Path:
    return seven_class_training[0]


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for running the project's commands as a user would."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The model the service tests run against: the bundled one unless MODEL_DIR says."""
    return Path(os.environ.get("MODEL_DIR", DEFAULT_MODEL_DIR))


@pytest.fixture(scope="session")
def client(model_dir: Path) -> Iterator[TestClient]:
    """The real app on the real model, started through its lifespan."""
    app = create_app(Settings(model_dir=model_dir))
    with TestClient(app) as test_client:
        yield test_client


def start_service(capture_stderr: bool = False, **env: str) -> subprocess.Popen[str]:
    """`python -m service` on loopback. Its log goes to the test's stderr unless captured
    (capture only a process that exits: an unread pipe fills up and blocks the server)."""
    return subprocess.Popen(
        [sys.executable, "-m", "service"],
        env=subprocess_env(HOST="127.0.0.1", LOG_LEVEL="warning", **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if capture_stderr else None,
        text=True,
    )


@contextmanager
def running_service(**env: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`python -m service` on a free port, once /health answers 200; stopped afterwards."""
    port = free_port()
    process = start_service(PORT=str(port), **env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not _healthy(url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("service did not become healthy (its log is above)")
        time.sleep(0.1)
    try:
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=15)


def _healthy(url: str) -> bool:
    try:
        return httpx2.get(f"{url}/health").status_code == 200
    except httpx2.TransportError:
        return False


@pytest.fixture(scope="session")
def gcs() -> Iterator[str]:
    """A real Cloud Storage stand-in, gcp-storage-emulator, on a free loopback port; the
    client (and every process the tests start) reaches it through STORAGE_EMULATOR_HOST.
    Google's credential lookup is kept off the network (no metadata-server probe)."""
    port = free_port()
    command = [
        sys.executable, "-m", "gcp_storage_emulator", "start",
        "--host", "127.0.0.1", "--port", str(port), "--in-memory", "--quiet",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx2.get(f"{url}/storage/v1/b")
            break
        except httpx2.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("gcp-storage-emulator did not start")
            time.sleep(0.1)
    saved = {name: os.environ.get(name) for name in GCS_ENV}
    os.environ.update(GCS_ENV, STORAGE_EMULATOR_HOST=url)
    try:
        yield url
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        process.terminate()
        process.wait(timeout=10)


# Never probe for a Google Cloud metadata server: a closed loopback port stands in for it.
GCS_ENV = {
    "STORAGE_EMULATOR_HOST": "",
    "NO_GCE_CHECK": "true",
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
}


@pytest.fixture(scope="session")
def live_url(model_dir: Path) -> Iterator[str]:
    """The service in its own process on a free, non-default port."""
    with running_service(MODEL_DIR=str(model_dir)) as (url, _):
        yield url
