"""`GET /`: a page to try the model in a browser; static files, nothing from other hosts. Its
title, copy and labels come from the loaded model's metadata: a model without a title and
description is spoken of as telling "photos" apart by its labels."""

from __future__ import annotations

import html
import json
from pathlib import Path
from string import Template

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from service.model import ImageClassifier

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
