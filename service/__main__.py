"""`python -m service`: read the settings, load the model (failing fast with one line), serve
(`service.server`: one process or WORKERS, each draining on SIGTERM before it stops)."""

from __future__ import annotations

import os
import sys

from service.app import create_app
from service.config import Settings
from service.model import ImageClassifier
from service.observability import configure_logging
from service.runtime import ModelLoadError
from service.server import LameDuckServer, serve_workers, uvicorn_config


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    model = ImageClassifier(settings)
    try:
        model.load()
    except ModelLoadError as error:
        print(f"error: cannot load the model: {error}", file=sys.stderr)
        sys.exit(1)
    if settings.workers > 1:
        # The workers load the model folder this process checked (a gs:// one copied down
        # once, not once a worker).
        os.environ["MODEL_DIR"] = str(model.local_dir)
        del model
        serve_workers(settings)
        return
    app = create_app(settings, model)
    LameDuckServer(uvicorn_config(settings, app), settings.shutdown_drain_s).run()


if __name__ == "__main__":
    main()
