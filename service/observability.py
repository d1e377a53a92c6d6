"""Prometheus metrics, structured JSON logs that Cloud Logging understands, and request IDs.

Metrics live in a registry owned by the app (not prometheus-client's global one), so two
apps in one process, as in the tests, never share counters.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from service.model import Classification

log = logging.getLogger("service.access")

REQUEST_ID_HEADER = "x-request-id"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
_PROBABILITY_BUCKETS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0)
_NOVELTY_BUCKETS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0)


class Metrics:
    """Everything /metrics exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "classifier_http_requests", "HTTP requests by route and status", ["route", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "classifier_http_request_seconds", "Request latency by route", ["route"],
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.batch_size = Histogram(
            "classifier_model_batch_images", "Images per model call", buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )  # fmt: skip
        self.inference = Histogram(
            "classifier_model_inference_seconds", "Duration of one model call",
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.rejected = Counter(
            "classifier_rejected_requests", "Requests refused, by reason (the error code)",
            ["reason"], registry=self.registry,
        )  # fmt: skip

        self.answers = Counter(
            "classifier_answers",
            "Images answered, by label (unknown: none of the classes) and model version",
            ["label", "version"], registry=self.registry,
        )  # fmt: skip
        self.version_latency = Histogram(
            "classifier_version_request_seconds",
            "Time a request held a model version (decoding and prediction), by version",
            ["version"], buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.versions_in_memory = Gauge(
            "classifier_model_versions_in_memory", "Model versions loaded (served or releasing)",
            registry=self.registry,
        )  # fmt: skip
        self.version_refusals = Counter(
            "classifier_model_version_refusals", "New model versions refused by their checks",
            registry=self.registry,
        )  # fmt: skip
        self.poll_failures = Counter(
            "classifier_model_poll_failures", "Looks at the model base path that failed",
            registry=self.registry,
        )  # fmt: skip

        self.top_probability = Histogram(
            "classifier_top_probability", "Each answer's highest probability",
            buckets=_PROBABILITY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.novelty = Histogram(
            "classifier_novelty_score",
            "Each answer's novelty score (above the threshold: unknown)",
            buckets=_NOVELTY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.log_entries = Counter(
            "classifier_prediction_log_entries", "Prediction log entries, by what became of them",
            ["outcome"], registry=self.registry,
        )  # fmt: skip
        self.log_failures = Counter(
            "classifier_prediction_log_write_failures",
            "Prediction log batches that failed to write", registry=self.registry,
        )  # fmt: skip

    def observe_answers(self, answers: list[Classification], version: str = "") -> None:
        """Each answer by label and version, with its top probability and novelty score:
        what drift shows in (`service.drift` compares the log with training's reference)."""
        for answer in answers:
            self.answers.labels(label=answer.label, version=version).inc()
            self.top_probability.observe(max(answer.probabilities))
            if answer.novelty is not None:
                self.novelty.observe(answer.novelty)

    def observe_model_call(self, images: int, seconds: float) -> None:
        self.batch_size.observe(images)
        self.inference.observe(seconds)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `severity` and `message`, plus `httpRequest` and request ID
    when the record carries them (Cloud Logging reads these field names)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "logger": record.name,
        }
        for key in ("httpRequest", "request_id"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True


class RequestLogMiddleware:
    """Gives each request an ID (from `X-Request-ID` or new), echoes it in the response,
    logs one line per request and counts it. Never logs bodies or headers such as keys."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = self.ids.given_or_new(headers)
        scope.setdefault("state", {})["request_id"] = request_id  # request.state.request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            if log.isEnabledFor(logging.INFO):  # build the entry only when it is written
                self._log(scope, headers, request_id, status, elapsed)

    @staticmethod
    def _log(scope: Scope, headers: Headers, request_id: str, status: int, elapsed: float) -> None:
        log.info(
            "%s %s %d %.1fms",
            scope["method"],
            scope["path"],
            status,
            elapsed * 1000,
            extra={
                "request_id": request_id,
                "httpRequest": {
                    "requestMethod": scope["method"],
                    "requestUrl": scope["path"],
                    "status": status,
                    "latency": f"{elapsed:.6f}s",
                    "remoteIp": (scope.get("client") or ("", 0))[0],
                    "userAgent": headers.get("user-agent", ""),
                },
            },
        )


class RequestIds:
    """New request IDs, 32 hex digits as a UUID's: a random half for the process and a
    count, unique across processes and instances without a random draw per request."""

    def __init__(self) -> None:
        self._process = secrets.token_hex(8)
        self._count = itertools.count()

    def given_or_new(self, headers: Headers) -> str:
        """The client's X-Request-ID if it is a sane token, else a new one."""
        given = headers.get(REQUEST_ID_HEADER, "")
        if 0 < len(given) <= 128 and all(c.isalnum() or c in "-_.:" for c in given):
            return given
        return f"{self._process}{next(self._count):016x}"


def _route_template(scope: Scope) -> str:
    """The matched route's path template (bounded label values), not the raw path."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"
