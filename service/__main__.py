"""`python -m service`: read the settings, load the model (failing fast with one line), serve."""

from __future__ import annotations

import sys

import uvicorn

from service.app import create_app
from service.config import Settings
from service.model import MugClassifier
from service.observability import configure_logging
from service.runtime import ModelLoadError


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
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
        log_config=None,  # our JSON logging, set up above
        access_log=False,  # RequestLogMiddleware writes one line per request instead
        # On SIGTERM: stop accepting, let in-flight requests finish, exit within the grace.
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )


if __name__ == "__main__":
    main()
