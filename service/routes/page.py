"""`GET /`: a page to try the model in a browser; static files, nothing from other hosts. Its
title, copy and labels come from the loaded model's metadata: a model without a title and
description is spoken of as telling "photos" apart by its labels. `GET /model`: the served
model's report page (`report.html` in its folder, written by training), linked from the
page's footer."""

from __future__ import annotations

import html
import json
from pathlib import Path
from string import Template

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from service.errors import RequestError
from service.model import ImageClassifier
from service.runtime import REPORT_HTML

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
PAGE = Template((STATIC_DIR / "index.html").read_text())
router = APIRouter(tags=["page"])
static_files = StaticFiles(directory=STATIC_DIR)


def render_page(model: ImageClassifier | None) -> str:
    """index.html with the model's title, description and labels (escaped)."""
    if model is None:
        title, description, labels = "What is in this photo?", "The model is loading.", []
    else:
        metadata = model.metadata
        labels = list(model.labels)
        title = metadata.title or "What is in this photo?"
        description = metadata.description or (
            f"Drop a photo, or pick one. The model tells these apart: {', '.join(labels)}."
        )
    # In a <script> element only "</" could end it early: escaped as JSON allows.
    labels_json = json.dumps(labels).replace("</", "<\\/")
    return PAGE.substitute(
        title=html.escape(title), description=html.escape(description), labels_json=labels_json
    )


@router.get("/", include_in_schema=False)
async def page(request: Request) -> HTMLResponse:
    registry = request.app.state.registry
    return HTMLResponse(render_page(registry.default.model if registry.ready else None))


class NoReportError(RequestError):
    status_code = 404
    code = "no_report"


@router.get("/model", include_in_schema=False)
async def model_report(
    request: Request,
    version: str | None = Query(None, description="the model version whose report to show"),
) -> HTMLResponse:
    """The report page as training wrote it: self-contained, nothing to fetch."""
    model = request.app.state.registry.resolve(version).model
    path = model.local_dir / REPORT_HTML
    if not path.is_file():
        raise NoReportError(
            f"model {model.version} has no {REPORT_HTML}; "
            "python -m training.evaluate --html writes one for any model"
        )
    return HTMLResponse(path.read_text(encoding="utf-8"))
