"""Model versions: a base path of numbered folders polled while serving, new versions swapped in
under load without a dropped or mixed answer, a broken one refused, rollback, pinning by number
and by label, and a gs:// base path on the storage emulator.

Version 1 is the bundled mug model (four classes), version 2 the two-class model of the mug
photos (dark, light): an answer's labels say which version made it."""

from __future__ import annotations

import base64
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from service.runtime import TFLITE_FILE, TFLITE_INT8_FILE
from service.storage import upload_folder
from tests.conftest import MUG_LABELS, running_service
from training.publish import next_version, next_version_folder

pytestmark = pytest.mark.slow

POLL = {"MODEL_POLL_S": "0.3"}


def publish(base: str | Path, source: Path) -> str:
    """`source` published as the next version under `base`, as training does."""
    with next_version_folder(str(base)) as (local, target):
        shutil.copytree(source, local, dirs_exist_ok=True)
    return target


def broken_copy(model_dir: Path, root: Path) -> Path:
    broken = root / "broken"
    shutil.copytree(model_dir, broken)
    for name in (TFLITE_FILE, TFLITE_INT8_FILE):
        (broken / name).write_bytes(b"not a flatbuffer" * 100)
    return broken


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def served_version(url: str) -> str:
    return httpx2.get(f"{url}/health").json()["model_version"]


def metric(url: str, name: str) -> float:
    text = httpx2.get(f"{url}/metrics").text
    match = re.search(rf"^{re.escape(name)} ([\d.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


@pytest.fixture
def base(tmp_path: Path, model_dir: Path) -> Path:
    """A base path holding version 1, the bundled model."""
    root = tmp_path / "mugs-base"
    publish(root, model_dir)
    assert (root / "1" / "metadata.json").is_file() and next_version(str(root)) == 2
    return root


class Load:
    """64 clients sending two photos a request until stopped; every answer is kept."""

    def __init__(self, url: str, photos: list[bytes], clients: int = 64) -> None:
        self.url, self.photos = url, photos
        self.answers: list[tuple[int, list[str], list[int]]] = []  # status, versions, widths
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._client) for _ in range(clients)]

    def _client(self) -> None:
        with httpx2.Client(timeout=30) as client:
            while not self.stopping.is_set():
                files = [("images", photo) for photo in self.photos]
                response = client.post(f"{self.url}/predict", files=files)
                if response.status_code != 200:
                    self.answers.append((response.status_code, [], []))
                    continue
                predictions = response.json()["predictions"]
                self.answers.append(
                    (
                        200,
                        [p["model_version"] for p in predictions],
                        [len(p["probabilities"]) for p in predictions],
                    )
                )

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)


def test_a_new_version_is_swapped_in_under_load_without_a_lost_or_mixed_answer(
    base: Path, two_class_model: Path, test_photos
) -> None:
    photos = [test_photos[0][0].read_bytes(), test_photos[200][0].read_bytes()]
    with running_service(MODEL_DIR=str(base), **POLL) as (url, _):
        assert served_version(url) == "1"
        in_memory: list[float] = []
        sampling = threading.Event()

        def sample() -> None:  # the versions in memory, all through the swap
            while not sampling.is_set():
                in_memory.append(metric(url, "classifier_model_versions_in_memory"))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        with Load(url, photos) as load:
            wait_for(lambda: len(load.answers) > 100)
            # The first sample is taken before publishing, so that it sees version 1 alone.
            in_memory.append(metric(url, "classifier_model_versions_in_memory"))
            sampler.start()
            publish(base, two_class_model)
            wait_for(lambda: served_version(url) == "2")
            count = len(load.answers)
            wait_for(lambda: len(load.answers) > count + 100)
        sampling.set()
        sampler.join()
        statuses = {status for status, _, _ in load.answers}
        assert statuses == {200}, statuses
        for _, versions, widths in load.answers:
            # One version answered the whole request: its labels are that version's.
            assert len(set(versions)) == 1, versions
            assert set(widths) == {4 if versions[0] == "1" else 2}
        seen = [versions[0] for _, versions, _ in load.answers]
        assert seen[0] == "1" and seen[-1] == "2"
        # At most two versions in memory during the swap, and the old one released after.
        assert max(in_memory) <= 2 and in_memory[0] == 1
        wait_for(lambda: metric(url, "classifier_model_versions_in_memory") == 1)
        status = httpx2.get(f"{url}/v1/models/mugs").json()["model_version_status"]
        assert [(s["version"], s["state"]) for s in status] == [("2", "AVAILABLE")]
        answers = metric(url, 'classifier_answers_total{label="dark",version="2"}')
        answers += metric(url, 'classifier_answers_total{label="light",version="2"}')
        assert answers > 0


def test_a_broken_version_is_refused_and_deleting_the_newest_rolls_back(
    base: Path, model_dir: Path, two_class_model: Path, tmp_path: Path, test_photos
) -> None:
    photo = test_photos[0][0].read_bytes()
    with running_service(MODEL_DIR=str(base), **POLL) as (url, _):
        publish(base, two_class_model)
        wait_for(lambda: served_version(url) == "2")
        publish(base, broken_copy(model_dir, tmp_path))  # version 3
        wait_for(lambda: metric(url, "classifier_model_version_refusals_total") == 1)
        assert served_version(url) == "2"
        answer = httpx2.post(f"{url}/predict", files={"image": photo}).json()
        assert answer["model_version"] == "2" and list(answer["probabilities"]) == ["dark", "light"]
        status = httpx2.get(f"{url}/v1/models/mugs").json()["model_version_status"]
        refused = next(s for s in status if s["version"] == "3")
        assert (
            refused["state"] == "END"
            and "cannot load LiteRT model" in (refused["status"]["error_message"])
        )
        # Rollback: the broken and the newest good version deleted, version 1 serves again.
        shutil.rmtree(base / "3")
        shutil.rmtree(base / "2")
        wait_for(lambda: served_version(url) == "1")
        answer = httpx2.post(f"{url}/predict", files={"image": photo}).json()
        assert answer["model_version"] == "1" and list(answer["probabilities"]) == list(MUG_LABELS)


@pytest.fixture
def pinned(base: Path, two_class_model: Path) -> Iterator[TestClient]:
    """Both versions served, labelled stable (1) and canary (2)."""
    publish(base, two_class_model)
    settings = Settings(
        model_dir=base, model_versions="all", model_labels="stable=1,canary=2", model_poll_s=0
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_pinning_by_number_and_by_label(pinned: TestClient, test_photos) -> None:
    photo = test_photos[0][0].read_bytes()

    def version_of(path: str, **params: str) -> str:
        response = pinned.post(path, files={"image": photo}, params=params)
        assert response.status_code == 200, response.text
        return response.json()["model_version"]

    assert version_of("/predict") == "2"  # the newest, unless pinned
    assert version_of("/predict", version="1") == "1"
    assert version_of("/predict", label="stable") == "1"
    assert version_of("/predict", label="canary") == "2"
    assert version_of("/explain", label="stable") == "1"
    instances = {"instances": [{"b64": base64.b64encode(photo).decode()}]}
    for path, version in [
        ("/v1/models/mugs-by-shade/versions/1:predict", "1"),
        ("/v1/models/mugs-by-shade/labels/stable:predict", "1"),
        ("/v1/models/mugs-by-shade/labels/canary:predict", "2"),
    ]:
        response = pinned.post(path, json=instances)
        assert response.status_code == 200 and response.json()["model_version"] == version, path
    assert len(response.json()["predictions"][0]["probabilities"]) == 2
    status = pinned.get("/v1/models/mugs-by-shade").json()["model_version_status"]
    assert [s["version"] for s in status] == ["2", "1"]
    assert pinned.get("/v1/models/mugs-by-shade/versions/1").status_code == 200
    missing = pinned.post("/predict", files={"image": photo}, params={"version": "7"})
    assert missing.status_code == 404 and missing.json()["error"] == "version_not_found"
    unknown_label = pinned.post("/predict", files={"image": photo}, params={"label": "beta"})
    assert unknown_label.status_code == 404 and "stable, canary" in unknown_label.json()["detail"]


def test_a_gs_base_path_is_polled_on_the_emulator(
    gcs: str, model_dir: Path, two_class_model: Path, test_photos
) -> None:
    from google.cloud import storage

    storage.Client().create_bucket("model-versions")
    remote = "gs://model-versions/mugs"
    upload_folder(model_dir, f"{remote}/1")
    photo = test_photos[0][0].read_bytes()
    with running_service(MODEL_DIR=remote, STORAGE_EMULATOR_HOST=gcs, **POLL) as (url, _):
        assert served_version(url) == "1"
        assert publish(remote, two_class_model) == f"{remote}/2"
        wait_for(lambda: served_version(url) == "2")
        answer = httpx2.post(f"{url}/predict", files={"image": photo}).json()
        assert list(answer["probabilities"]) == ["dark", "light"]
