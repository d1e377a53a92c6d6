"""The JSON answers of the prediction routes, encoded once by orjson from the plain objects
the schemas build (`Prediction.body`): no pydantic model is built and validated again on the
way out, and the bytes are the same shape the schemas document."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class JSONAnswer(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
