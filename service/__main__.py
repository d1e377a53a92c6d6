"""`python -m service`: read the settings, load the model (failing fast with one line), serve."""

from __future__ import annotations

import logging
import sys

import uvicorn

from service.app import create_app
from service.config import Settings
from service.model import MugClassifier
from service.runtime import ModelLoadError


def main() -> None:
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    model = MugClassifier(settings)
    try:
        model.load()
    except ModelLoadError as error:
        print(f"error: cannot load the model: {error}", file=sys.stderr)
        sys.exit(1)
    uvicorn.run(
        create_app(settings, model),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # On SIGTERM: stop accepting, let in-flight requests finish, exit within the grace.
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )


if __name__ == "__main__":
    main()
