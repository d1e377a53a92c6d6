"""Serving on uvicorn: one process, or WORKERS processes sharing the port, each with its own
model and batch queue (one event loop does all of a process's HTTP work: more cores need
more processes).

On SIGTERM each server first goes lame-duck for SHUTDOWN_DRAIN_S: /health answers 503 so a
load balancer stops sending, while everything else keeps being read and answered, so every
request whose bytes had reached the server becomes one the server is working on. Only then
does uvicorn's graceful shutdown begin: stop accepting, finish in-flight requests (at most
SHUTDOWN_TIMEOUT_S), exit. Without the drain, uvicorn closes connections whose request had
arrived but not yet been read on a busy server (docs/operations.md). uvicorn's own
worker supervisor runs its plain Server in each worker, hence the small one here.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
from types import FrameType

import uvicorn
from fastapi import FastAPI

from service.backoff import LONGEST_S
from service.config import Settings
from service.observability import configure_logging

log = logging.getLogger(__name__)


class LameDuckServer(uvicorn.Server):
    """uvicorn, with a drain between the first SIGTERM (or Ctrl-C) and its shutdown."""

    def __init__(self, config: uvicorn.Config, drain_s: float) -> None:
        super().__init__(config)
        self.drain_s = drain_s
        self.draining = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # The app's /health reads the flag the signal sets. The server's own flag is handed
        # over, not the app's taken: a SIGTERM that came while the app was still being
        # imported (a worker of WORKERS > 1 starts seconds after the first) has set it
        # already, and /health must not then answer 200 through the drain.
        app = self.config.loaded_app
        while not isinstance(app, FastAPI):  # inside uvicorn's own middleware
            app = app.app
        app.state.draining = self.draining
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.draining.is_set() or self.drain_s <= 0:
            super().handle_exit(sig, frame)  # a second signal: shut down now
            return
        self.draining.set()
        log.info("signal %d: draining for %gs before shutting down", sig, self.drain_s)
        timer = threading.Timer(self.drain_s, super().handle_exit, (sig, frame))
        timer.daemon = True
        timer.start()


def uvicorn_config(settings: Settings, app: FastAPI | str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        factory=isinstance(app, str),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # our JSON logging
        access_log=False,  # RequestLogMiddleware writes one line per request instead
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
        # A client waiting as long as Retry-After says keeps its idle connection: with
        # uvicorn's 5 s, a 15 s run of 1,500 such clients had 376 connections closed under them.
        timeout_keep_alive=LONGEST_S + 5,
    )


def _worker(config: uvicorn.Config, drain_s: float, sock: socket.socket, level: str) -> None:
    """One worker process: its own app, model and batch queue, on the shared socket."""
    configure_logging(level)
    LameDuckServer(config, drain_s).run(sockets=[sock])


def serve_workers(settings: Settings) -> None:
    """WORKERS processes on one listening socket. The parent forwards SIGTERM and SIGINT to
    each (each drains and shuts down on its own) and exits when they all have."""
    config = uvicorn_config(settings, "service.app:create_app")
    sock = config.bind_socket()
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(
            target=_worker, args=(config, settings.shutdown_drain_s, sock, settings.log_level)
        )
        for _ in range(settings.workers)
    ]
    for worker in workers:
        worker.start()

    def forward(sig: int, frame: FrameType | None) -> None:
        for worker in workers:
            if worker.is_alive():
                os.kill(worker.pid, sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for worker in workers:
        worker.join()
    sock.close()
