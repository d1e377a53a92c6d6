"""Loading an exported model directory and running it: the one place that knows its layout.

A model directory holds `saved_model/` (TensorFlow SavedModel), `model.tflite` (the same
network converted for LiteRT), `metadata.json` and the training report. Training writes it
through `ModelMetadata` and reads it back through `load_predictor`, so there is a single
definition of the format. Two runtimes run it behind one interface: LiteRT (small and quick
to start, the default) and TensorFlow (needs the `tensorflow` extra).
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, Field, ValidationError, field_validator

from service.cpus import usable_cpus
from service.storage import StorageError, fetch_folder, is_remote, list_files

SAVED_MODEL_DIR = "saved_model"
TFLITE_FILE = "model.tflite"
REPORT_HTML = "report.html"  # the model folder's report page (training.report_page)
TFLITE_INT8_FILE = "model_int8.tflite"  # dynamic-range quantised: int8 weights, ~2x faster
METADATA_FILE = "metadata.json"
PROBABILITIES = "probabilities"  # the output every model folder must have
LOGITS = "logits"  # before the temperature; /explain's occlusion measures these
NOVELTY = "novelty"  # how little the model prefers any class; models before it lack this output
RUNTIMES = ("litert", "tensorflow")
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "mugs"


MIN_CLASSES, MAX_CLASSES = 2, 100
MIN_INPUT_SIZE, MAX_INPUT_SIZE = 16, 1024
# Answers the service gives besides a class (`unknown`) or takes as a correction (`none`).
RESERVED_LABELS = ("unknown", "none")
LABEL_PATTERN = re.compile(r"^[^\W_](?:[\w .-]{0,62}[^\W_])?$")
DEFAULT_MODEL_NAME = "model"


class ModelLoadError(Exception):
    """The model directory cannot be served; the message is one line saying why."""


def label_problem(label: str) -> str | None:
    """Why `label` cannot name a class (None if it can): it appears in JSON keys, metrics
    and URLs, so letters and digits, with spaces, `-`, `_` or `.` inside, 1-64 characters,
    and none of RESERVED_LABELS."""
    if not LABEL_PATTERN.match(label):
        return (
            f"{label!r} cannot be a label: use 1-64 letters or digits, with spaces, '-', '_' "
            "or '.' between them"
        )
    if label.lower() in RESERVED_LABELS:
        return f"{label!r} cannot be a label: the service answers it for no class"
    return None


class ModelMetadata(BaseModel):
    """What a client or operator needs to know about the exported model: the single place
    that knows the task (its labels, their order, the input size, the model's name)."""

    # The model's name in URLs (`/v1/models/{name}`); MODEL_NAME overrides it.
    name: str = Field(DEFAULT_MODEL_NAME, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    # What the page says it tells apart; without them it speaks of "photos" and the labels.
    title: str | None = None
    description: str | None = None
    class_names: list[str] = Field(min_length=MIN_CLASSES, max_length=MAX_CLASSES)
    input_size: int = Field(ge=MIN_INPUT_SIZE, le=MAX_INPUT_SIZE)
    model_version: str
    trained_at: str
    git_commit: str
    # The data folders it was trained on (as given) and how many photos came from each.
    data_sources: dict[str, int] | None = None
    metrics: dict[str, Any] = {}
    # How the probabilities were calibrated (the temperature inside the graph, and the figures
    # it was fitted on); absent for models exported before calibration.
    calibration: dict[str, Any] | None = None
    # The quantised LiteRT model's parity with the float one, measured by training; "auto"
    # precision serves it only when `passed` is true.
    quantization: dict[str, Any] | None = None
    # The `unknown` answer: the novelty threshold chosen by training, and the figures it was
    # chosen from; absent for models without a novelty output.
    novelty: dict[str, Any] | None = None
    # What its answers look like on held-out photos (label mix, confidence, unknown share):
    # the reference `service.drift` compares the prediction log with.
    reference: dict[str, Any] | None = None

    def served_precision(self, requested: str) -> str:
        """`float` or `int8` for MODEL_PRECISION=`requested` (auto, float or int8)."""
        if requested != "auto":
            return requested
        return "int8" if self.quantization and self.quantization.get("passed") else "float"

    @field_validator("class_names")
    @classmethod
    def _labels(cls, names: list[str]) -> list[str]:
        for name in names:
            if problem := label_problem(name):
                raise ValueError(problem)
        if len(set(names)) != len(names):
            raise ValueError("class names must be unique")
        return names

    @classmethod
    def read(cls, model_dir: Path) -> ModelMetadata:
        path = model_dir / METADATA_FILE
        try:
            metadata = cls.model_validate_json(path.read_bytes())
        except FileNotFoundError as error:
            raise ModelLoadError(f"{path}: metadata file not found") from error
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "the file"
            message = first["msg"].removeprefix("Value error, ")
            raise ModelLoadError(f"{path}: invalid metadata ({where}: {message})") from error
        except OSError as error:
            raise ModelLoadError(f"{path}: cannot read metadata ({error})") from error
        return metadata

    def write(self, model_dir: Path) -> None:
        (model_dir / METADATA_FILE).write_text(json.dumps(self.model_dump(), indent=2) + "\n")


class Predictor(Protocol):
    """A loaded model: uint8 images [N, size, size, 3] -> its named outputs, among them the
    (calibrated) `probabilities` float32 [N, classes]."""

    metadata: ModelMetadata
    precision: str  # float or int8: what is running
    model_dir: Path  # the local folder it was loaded from (a gs:// model's copy)
    threads: int | None  # a call's threads; None: the runtime's own choice (TensorFlow)

    def outputs(self, images: np.ndarray) -> dict[str, np.ndarray]: ...

    def predict(self, images: np.ndarray) -> np.ndarray: ...

    def predict_batches(self, images: np.ndarray) -> np.ndarray: ...

    def output_batches(self, images: np.ndarray) -> dict[str, np.ndarray]: ...


class _Outputs:
    """What both runtimes derive from their `outputs`."""

    def outputs(self, images: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def predict(self, images: np.ndarray) -> np.ndarray:
        """The probabilities, float32 [N, classes]."""
        return self.outputs(images)[PROBABILITIES]

    def predict_batches(self, images: np.ndarray, batch: int = 256) -> np.ndarray:
        """`predict` over any number of images, `batch` at a time."""
        return self.output_batches(images, batch)[PROBABILITIES]

    def output_batches(self, images: np.ndarray, batch: int = 256) -> dict[str, np.ndarray]:
        """`outputs` over any number of images, `batch` at a time."""
        parts = [self.outputs(images[i : i + batch]) for i in range(0, len(images), batch)]
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


class TensorFlowPredictor(_Outputs):
    """Runs the SavedModel's default signature with TensorFlow (float only)."""

    precision = "float"
    threads = None

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self.metadata = ModelMetadata.read(model_dir)
        path = model_dir / SAVED_MODEL_DIR
        if not path.is_dir():
            raise ModelLoadError(f"{path}: SavedModel folder not found")
        try:
            import tensorflow as tf  # imported here: only this runtime pays its start-up cost
        except ImportError as error:
            hint = "pip install 'mug-classifier[tensorflow]'"
            raise ModelLoadError(f"MODEL_RUNTIME=tensorflow needs TensorFlow: {hint}") from error
        try:
            loaded = tf.saved_model.load(str(path))
            self._signature = loaded.signatures["serving_default"]
        except (OSError, ValueError, KeyError, tf.errors.OpError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
            raise ModelLoadError(f"{path}: cannot load SavedModel ({first})") from error
        self._loaded = loaded  # keeps the signature's variables alive
        self._tf = tf

    def outputs(self, images: np.ndarray) -> dict[str, np.ndarray]:
        batch = self._tf.constant(images, dtype=self._tf.float32)
        return {name: value.numpy() for name, value in self._signature(images=batch).items()}


class LiteRTPredictor(_Outputs):
    """Runs `model.tflite` (or its quantised twin) with LiteRT: no TensorFlow needed, small
    and quick to load."""

    def __init__(
        self, model_dir: Path, threads: int | None = None, precision: str = "auto"
    ) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.model_dir = model_dir
        self.metadata = ModelMetadata.read(model_dir)
        self.precision = self.metadata.served_precision(precision)
        path = model_dir / (TFLITE_INT8_FILE if self.precision == "int8" else TFLITE_FILE)
        if not path.is_file():
            raise ModelLoadError(f"{path}: LiteRT model not found")
        try:
            # Left to itself LiteRT runs one thread: half the speed of two, the same numbers.
            self.threads = threads or usable_cpus()
            interpreter = Interpreter(model_path=str(path), num_threads=self.threads)
            self._runner = interpreter.get_signature_runner("serving_default")
            outputs = self._runner.get_output_details()
        except (ValueError, RuntimeError) as error:
            raise ModelLoadError(f"{path}: cannot load LiteRT model ({error})") from error
        for name in (PROBABILITIES, LOGITS):
            if name not in outputs:
                raise ModelLoadError(f"{path}: the model has no {name!r} output")
        self._interpreter = interpreter
        # An interpreter runs one call at a time; the batcher sends one at a time anyway.
        self._lock = threading.Lock()

    def outputs(self, images: np.ndarray) -> dict[str, np.ndarray]:
        with self._lock:
            outputs = self._runner(images=images.astype(np.float32, copy=False))
            return {name: np.array(value) for name, value in outputs.items()}  # buffers reused


def list_versions(location: str | Path) -> dict[int, str] | None:
    """The complete numbered version folders below a base path, {number: location}, as TF
    Serving lays them out (`base/1/`, `base/2/`); None when `location` is itself a model
    folder. A version is complete once its metadata.json is there: training writes it last
    (`training.publish`), so a polling server never loads half a version."""
    try:
        if not is_remote(location):
            root = Path(location)
            if (root / METADATA_FILE).is_file():
                return None
            if not root.is_dir():
                raise ModelLoadError(f"{root}: model folder not found")
            return {
                int(child.name): str(child)
                for child in root.iterdir()
                if child.name.isdigit() and (child / METADATA_FILE).is_file()
            }
        files = list_files(location)
    except StorageError as error:
        raise ModelLoadError(str(error)) from error
    base = str(location).rstrip("/")
    if f"{base}/{METADATA_FILE}" in files:
        return None
    versions = {}
    for file in files:
        parts = file.removeprefix(f"{base}/").split("/")
        if len(parts) == 2 and parts[0].isdigit() and parts[1] == METADATA_FILE:
            versions[int(parts[0])] = f"{base}/{parts[0]}"
    if not files:
        raise ModelLoadError(f"{base}: no such folder (nothing stored under this prefix)")
    return versions


def load_predictor(
    location: str | Path,
    runtime: str = "litert",
    threads: int | None = None,
    precision: str = "auto",
) -> Predictor:
    """Load and check a model folder, local or `gs://` (copied down once, then checked the
    same way): it must answer a dummy batch with a probability per class. Problems are one
    ModelLoadError line naming `location`. LiteRT runs `threads` per call, by default every
    CPU this process may use, as the service does (MODEL_THREADS)."""
    if runtime not in RUNTIMES:
        raise ModelLoadError(f"unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}")
    if runtime == "tensorflow" and precision == "int8":
        raise ModelLoadError("MODEL_PRECISION=int8 runs on LiteRT only (MODEL_RUNTIME=litert)")
    try:
        model_dir = fetch_folder(location, required_file=METADATA_FILE)
    except StorageError as error:
        raise ModelLoadError(str(error)) from error
    if not model_dir.is_dir():
        raise ModelLoadError(f"{model_dir}: model folder not found")
    try:
        if runtime == "litert":
            predictor: Predictor = LiteRTPredictor(model_dir, threads, precision)
        else:
            predictor = TensorFlowPredictor(model_dir)
        check_output_shape(predictor)
    except ModelLoadError as error:
        if is_remote(location):  # name the bucket, not the temporary copy
            raise ModelLoadError(str(error).replace(str(model_dir), str(location))) from error
        raise
    return predictor


def check_output_shape(predictor: Predictor) -> None:
    """One dummy prediction at the metadata's input size: proves the model runs and answers
    with a probability for each of the metadata's classes."""
    size, classes = predictor.metadata.input_size, len(predictor.metadata.class_names)
    dummy = np.zeros((2, size, size, 3), dtype=np.uint8)
    try:
        output = predictor.predict(dummy)
    except Exception as error:  # a runtime's own error type; reported as a load failure
        shape = f"[2, {size}, {size}, 3]"
        raise ModelLoadError(f"model cannot run on a {shape} batch ({error})") from error
    if output.shape != (2, classes):
        raise ModelLoadError(
            f"model returns shape {output.shape[1:]}, expected ({classes},): the classes "
            f"of {METADATA_FILE}"
        )
