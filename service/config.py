"""Every knob of the service, its default and its environment variable, in one place."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.cpus import usable_cpus
from service.imaging import DEFAULT_MAX_PIXELS
from service.runtime import DEFAULT_MODEL_DIR

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Read from the environment (names case-insensitive), e.g. `PORT=9000`."""

    model_config = SettingsConfigDict(case_sensitive=False, frozen=True, populate_by_name=True)

    host: str = Field("0.0.0.0", description="interface to listen on")
    port: int = Field(
        8080,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("AIP_HTTP_PORT", "PORT"),
        description="port: $AIP_HTTP_PORT (Vertex AI) if set, else $PORT (Cloud Run)",
    )
    aip_health_route: str | None = Field(
        None, description="Vertex AI: an extra path answering like /health"
    )
    aip_predict_route: str | None = Field(
        None, description='Vertex AI: an extra path taking {"instances": [...]} like :predict'
    )
    workers: int = Field(
        1, ge=1, description="server processes, each with its own model and batch queue"
    )
    shutdown_drain_s: float = Field(
        2.0,
        ge=0,
        description="on SIGTERM, how long /health answers 503 while requests are still read "
        "and answered, before the server stops accepting",
    )
    shutdown_timeout_s: float = Field(
        7.0, gt=0, description="then, how long in-flight requests may take to finish"
    )
    model_dir: str | Path | None = Field(
        None,
        description="exported model folder, or a base path of numbered version folders "
        "(base/1/, base/2/, ...): a local path or gs://bucket/prefix",
    )
    model_versions: str = Field(
        "latest",
        pattern=r"^(latest|all|\d+(,\d+)*)$",
        description="of a base path's versions, which are served: latest, all, or a list (3,4)",
    )
    model_labels: str | None = Field(
        None,
        pattern=r"^[A-Za-z][\w.-]*=\d+(,[A-Za-z][\w.-]*=\d+)*$",
        description="names for versions, e.g. stable=3,canary=4 (each named version is served)",
    )
    model_poll_s: float = Field(
        30.0,
        ge=0,
        description="how often a base path is looked at for new or removed versions (0: never)",
    )
    aip_storage_uri: str | None = Field(
        None, description="Vertex AI: the model's gs:// folder, used when MODEL_DIR is unset"
    )
    bundled_model_dir: Path = Field(
        DEFAULT_MODEL_DIR, description="the model served when neither of the above is set"
    )
    model_name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="the model's name in URLs (/v1/models/{name}); default: the metadata's",
    )
    model_runtime: Literal["litert", "tensorflow"] = Field(
        "litert", description="litert (lean, no TensorFlow) or tensorflow (the SavedModel)"
    )
    model_precision: Literal["auto", "float", "int8"] = Field(
        "auto",
        description="LiteRT model: int8 (quantised, faster), float, or auto: int8 when the "
        "parity check training ran on it passed",
    )
    model_threads: int = Field(
        default_factory=usable_cpus,
        ge=1,
        description="threads for one model call (default: the CPUs this process may use, its "
        "affinity capped by a CPU quota)",
    )
    decode_threads: int = Field(4, ge=1, description="images decoded at once, off the event loop")
    max_upload_bytes: int = Field(10 * MIB, ge=1, description="largest request body (413 above)")
    max_batch_images: int = Field(64, ge=1, description="most images in one request (422 above)")
    max_image_pixels: int = Field(
        DEFAULT_MAX_PIXELS, ge=1, description="largest width x height decoded (413 above)"
    )
    # As fast under load as 64, for less memory (docs/performance.md, why the defaults).
    batch_max_size: int = Field(
        32, ge=1, description="images per model call before the batch queue flushes"
    )
    batch_max_wait_ms: float = Field(
        0.0, ge=0, description="longest a request waits in the batch queue for company"
    )
    # About a second of 32-image requests: a burst of batches is let in, a crowd does not
    # queue for longer (docs/performance.md, why the defaults).
    max_waiting_images: int = Field(
        600,
        ge=1,
        description="images (or requests, before their images are counted) admitted and not "
        "yet answered before new requests get 503 with Retry-After: under a second's work",
    )
    # About where one event loop answers the most; letting in more only adds waiting
    # (docs/performance.md, why the defaults).
    max_active_requests: int = Field(
        64,
        ge=1,
        description="HTTP requests let in and not yet answered before new ones get 503 with "
        "Retry-After: past what the event loop answers in well under a second",
    )
    # A held request's latency is up to this plus its answer's: longer would pass the 2 s an
    # answer may take (docs/performance.md, why the defaults).
    overload_hold_s: float = Field(
        1.5,
        ge=0,
        description="longest a request from a connection that comes back before its "
        "Retry-After is up waits in line for a place before it is refused (0: refused at once)",
    )
    unknown_threshold: float | Literal["off"] | None = Field(
        None,
        description="novelty score above which the answer is `unknown` (default: the "
        "threshold training chose, in metadata.json); `off`: always one of the classes",
    )
    prediction_log: str | None = Field(
        None,
        description="folder or gs://bucket/prefix where sampled predictions (their photos "
        "too) and corrections from /feedback are kept; unset: nothing is kept",
    )
    prediction_log_sample: float = Field(
        0.0, ge=0, le=1, description="share of the images answered that are logged (0: none)"
    )
    prediction_log_max_mb: float = Field(
        32.0, gt=0, description="most photo bytes queued for the log; past it, entries dropped"
    )
    prediction_log_flush_s: float = Field(
        10.0, gt=0, description="longest an entry waits in memory before it is written"
    )
    api_keys: str | None = Field(
        None,
        repr=False,  # never printed with the settings
        description="comma-separated keys; when set, prediction routes require one",
    )
    cors_origins: str | None = Field(
        None, description="comma-separated origins allowed by CORS (off when unset)"
    )
    request_timeout_s: float = Field(
        10.0, gt=0, description="longest decoding plus prediction may take for one request"
    )
    log_level: str = Field("info", description="uvicorn log level")

    @property
    def model_location(self) -> str:
        """Where the model is loaded from: MODEL_DIR, else AIP_STORAGE_URI, else the bundled."""
        return str(self.model_dir or self.aip_storage_uri or self.bundled_model_dir)

    @property
    def version_labels(self) -> dict[str, int]:
        """MODEL_LABELS as {label: version}."""
        pairs = (item.split("=") for item in _split(self.model_labels))
        return {label: int(version) for label, version in pairs}

    @property
    def api_key_list(self) -> tuple[str, ...]:
        return _split(self.api_keys)

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        return _split(self.cors_origins)


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())
