"""`python -m service`: read the settings, load the model (failing fast with one line), serve
(`service.server`: one process or WORKERS, each draining on SIGTERM before it stops)."""

from __future__ import annotations

import os
import sys

from service.app import create_app
from service.config import Settings
from service.observability import configure_logging
from service.registry import ModelRegistry
from service.runtime import ModelLoadError
from service.server import LameDuckServer, serve_workers, uvicorn_config


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    registry = ModelRegistry(settings)
    try:
        registry.load()
    except ModelLoadError as error:
        print(f"error: cannot load the model: {error}", file=sys.stderr)
        sys.exit(1)
    if settings.workers > 1:
        if not registry.versioned:
            # The workers load the model folder this process checked (a gs:// one copied
            # down once, not once a worker).
            (model,) = registry.loaded_models()
            os.environ["MODEL_DIR"] = str(model.local_dir)
        del registry
        serve_workers(settings)
        return
    app = create_app(settings, registry)
    LameDuckServer(uvicorn_config(settings, app), settings.shutdown_drain_s).run()


if __name__ == "__main__":
    main()
