"""`python -m service` as an operator runs it: serves on $PORT, or refuses to start with one
clear line when the model cannot be loaded."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import httpx2
import pytest

from service.runtime import TFLITE_FILE, TFLITE_INT8_FILE
from tests.conftest import free_port, start_service

pytestmark = pytest.mark.slow


def test_serves_predictions_on_the_port_it_is_given(live_url: str, test_photos) -> None:
    photo, label = test_photos[-1]
    response = httpx2.post(f"{live_url}/predict", files={"image": photo.read_bytes()})
    assert response.status_code == 200
    assert response.json()["index"] == label


def test_oversized_chunked_body_is_refused_while_streaming(live_url: str) -> None:
    """No Content-Length: the limit applies to the bytes as they arrive. The client sends a
    little over the limit of a body it says goes on, and gets 413 without sending the rest."""
    host, port = live_url.removeprefix("http://").split(":")
    head = (
        b"POST /predict HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\n\r\n"
    )
    part = b'--x\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'
    megabyte = b"\0" * (1024 * 1024)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head + b"%x\r\n%s\r\n" % (len(part), part))
        for _ in range(11):  # 11 MiB of a body that never ends
            sock.sendall(b"%x\r\n%s\r\n" % (len(megabyte), megabyte))
        answer = b""
        while not answer.endswith(b"}"):  # the JSON body closes the response
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"error":"body_too_large"' in answer
    assert httpx2.get(f"{live_url}/health").status_code == 200


def broken_model_dirs(model_dir: Path, root: Path) -> dict[str, tuple[Path, str]]:
    """Model folders that must not be served, with the words the error must contain."""
    empty = root / "empty"
    empty.mkdir()
    metadata_only = root / "metadata-only"
    metadata_only.mkdir()
    shutil.copy(model_dir / "metadata.json", metadata_only)
    corrupt = root / "corrupt"
    shutil.copytree(model_dir, corrupt)
    # Both LiteRT files: MODEL_PRECISION=auto serves whichever the parity check chose.
    for name in (TFLITE_FILE, TFLITE_INT8_FILE):
        (corrupt / name).write_bytes(b"not a flatbuffer" * 100)
    wrong_classes = root / "wrong-classes"
    shutil.copytree(model_dir, wrong_classes)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    metadata["class_names"] = ["cup", "glass"]
    (wrong_classes / "metadata.json").write_text(json.dumps(metadata))
    reserved_label = root / "reserved-label"
    shutil.copytree(model_dir, reserved_label)
    metadata["class_names"] = ["white", "black", "blue", "unknown"]
    (reserved_label / "metadata.json").write_text(json.dumps(metadata))
    wrong_shape = root / "wrong-shape"
    shutil.copytree(model_dir, wrong_shape)
    three_classes = three_class_litert_model()
    for name in (TFLITE_FILE, TFLITE_INT8_FILE):
        (wrong_shape / name).write_bytes(three_classes)
    return {
        "missing": (root / "nowhere", "model folder not found"),
        "empty": (empty, "not a model folder (no metadata.json"),
        "no model file": (metadata_only, "LiteRT model not found"),
        "corrupt": (corrupt, "cannot load LiteRT model"),
        "wrong classes": (wrong_classes, "returns shape (4,), expected (2,): the classes of"),
        "reserved label": (reserved_label, "'unknown' cannot be a label"),
        "wrong shape": (wrong_shape, "model returns shape (3,), expected (4,)"),
    }


def three_class_litert_model() -> bytes:
    """A real LiteRT model with the service's signature (`images` in, `probabilities` and
    `logits` out) but three classes instead of four."""
    import tensorflow as tf  # only this test needs it, to build the model

    class ThreeClasses(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 64, 64, 3], tf.float32, "images")])
        def serving_default(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
            means = tf.reduce_mean(images, axis=[1, 2])  # [N, 3]
            return {"probabilities": tf.nn.softmax(means), "logits": means}

    module = ThreeClasses()
    function = module.serving_default.get_concrete_function()
    return tf.lite.TFLiteConverter.from_concrete_functions([function], module).convert()


def test_unloadable_model_stops_start_up_with_one_line(model_dir: Path, tmp_path: Path) -> None:
    for name, (path, words) in broken_model_dirs(model_dir, tmp_path).items():
        process = start_service(capture_stderr=True, PORT=str(free_port()), MODEL_DIR=str(path))
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 1, name
        # TensorFlow's own start-up notices may precede it; the reason is one line.
        reasons = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert len(reasons) == 1 and "Traceback" not in stderr, stderr
        assert reasons[0].startswith("error: cannot load the model") and words in reasons[0]
