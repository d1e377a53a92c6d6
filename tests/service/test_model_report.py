"""`GET /model`: the served model's report page (training.report_page), or a JSON 404."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from tests.report_figures import figures_of


def test_model_serves_the_report_written_with_it(client: TestClient, model_dir: Path) -> None:
    response = client.get("/model")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == (model_dir / "report.html").read_text(encoding="utf-8")
    figures = figures_of(response.text)
    evaluation = json.loads((model_dir / "metrics.json").read_text())["evaluation"]
    assert figures.values["accuracy"] == evaluation["accuracy"]
    assert figures.confusion == evaluation["confusion_matrix"]


def test_an_unknown_version_has_no_report(client: TestClient) -> None:
    response = client.get("/model", params={"version": "999"})
    assert response.status_code == 404 and response.json()["error"] == "version_not_found"


def test_a_model_without_a_report_is_a_json_404(model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("report.html"))
    with TestClient(create_app(Settings(model_dir=copy))) as client:
        assert client.post("/predict").status_code != 500  # the copy serves
        response = client.get("/model")
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "no_report" and "training.evaluate --html" in body["detail"]
