"""The Open Inference Protocol (V2) over REST, driven by the real `tritonclient[http]` client
against the service in its own process, and by hand where the client cannot go wrong."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx2
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.conftest import MUG_LABELS


@pytest.fixture(scope="module")
def triton_client(live_url: str) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=live_url.removeprefix("http://"))


def images_input(photos: list[Path], binary: bool = True) -> triton.InferInput:
    tensor = triton.InferInput("images", [len(photos)], "BYTES")
    tensor.set_data_from_numpy(
        np.array([p.read_bytes() for p in photos], dtype=np.object_), binary_data=binary
    )
    return tensor


def test_health_and_metadata(triton_client: triton.InferenceServerClient, live_url: str) -> None:
    assert triton_client.is_server_live() and triton_client.is_server_ready()
    assert triton_client.is_model_ready("mugs")
    assert not triton_client.is_model_ready("flowers")
    metadata = triton_client.get_model_metadata("mugs")
    version = httpx2.get(f"{live_url}/health").json()["model_version"]
    assert metadata["name"] == "mugs" and metadata["versions"] == [version]
    assert metadata["inputs"] == [{"name": "images", "datatype": "BYTES", "shape": [-1]}]
    outputs = {o["name"]: o for o in metadata["outputs"]}
    assert outputs["probabilities"] == {
        "name": "probabilities", "datatype": "FP32", "shape": [-1, 4]
    }  # fmt: skip
    assert set(outputs) == {"probabilities", "label", "classes", "novelty"}
    assert triton_client.get_model_metadata("mugs", model_version=version)["name"] == "mugs"
    assert "binary_tensor_data" in triton_client.get_server_metadata()["extensions"]


def test_infer_with_binary_data_answers_as_predict_does(
    triton_client: triton.InferenceServerClient, live_url: str, test_photos
) -> None:
    photos = [photo for photo, _ in test_photos[::125]]  # one of each mug
    result = triton_client.infer("mugs", [images_input(photos)])
    probabilities = result.as_numpy("probabilities")
    labels = [label.decode() for label in result.as_numpy("label")]
    assert probabilities.shape == (4, 4) and labels == list(MUG_LABELS)
    np.testing.assert_array_equal(result.as_numpy("classes"), [0, 1, 2, 3])
    response = httpx2.post(
        f"{live_url}/predict", files=[("images", p.read_bytes()) for p in photos]
    ).json()
    for row, prediction in zip(probabilities, response["predictions"], strict=True):
        np.testing.assert_allclose(row, list(prediction["probabilities"].values()), atol=1e-6)
        assert prediction["model_version"] == result.get_response()["model_version"]
    novelty = result.as_numpy("novelty")
    assert novelty.shape == (4,) and (novelty >= 0).all()


def test_infer_with_json_outputs_and_a_pinned_version(
    triton_client: triton.InferenceServerClient, live_url: str, test_photos
) -> None:
    version = httpx2.get(f"{live_url}/health").json()["model_version"]
    photo = test_photos[130][0]  # a black mug
    outputs = [triton.InferRequestedOutput("label", binary_data=False)]
    result = triton_client.infer(
        "mugs", [images_input([photo])], model_version=version, outputs=outputs, request_id="r1"
    )
    body = result.get_response()
    assert body["id"] == "r1" and body["model_version"] == version
    assert [o["name"] for o in body["outputs"]] == ["label"]
    assert body["outputs"][0]["data"] == ["black"]


def test_infer_in_plain_json_with_base64(live_url: str, test_photos) -> None:
    photo = test_photos[0][0]
    request = {
        "inputs": [
            {"name": "images", "shape": [1], "datatype": "BYTES",
             "data": [base64.b64encode(photo.read_bytes()).decode()]}
        ]
    }  # fmt: skip
    response = httpx2.post(f"{live_url}/v2/models/mugs/infer", json=request)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["label"]["data"] == ["white"]
    assert len(outputs["probabilities"]["data"]) == 4


def test_bad_requests_are_clear_errors(
    triton_client: triton.InferenceServerClient, live_url: str, test_photos
) -> None:
    with pytest.raises(InferenceServerException, match="no model named 'flowers'"):
        triton_client.infer("flowers", [images_input([test_photos[0][0]])])
    with pytest.raises(InferenceServerException, match="not served"):
        triton_client.infer("mugs", [images_input([test_photos[0][0]])], model_version="999")
    text = triton.InferInput("images", [1], "BYTES")
    text.set_data_from_numpy(np.array([b"not an image"], dtype=np.object_))
    with pytest.raises(InferenceServerException, match="not a recognisable image"):
        triton_client.infer("mugs", [text])
    wrong = triton.InferInput("pixels", [1], "FP32")
    wrong.set_data_from_numpy(np.zeros([1], np.float32))
    with pytest.raises(InferenceServerException, match="one input named 'images'"):
        triton_client.infer("mugs", [wrong])
    cut = {"inference-header-content-length": "999999", "content-type": "application/octet-stream"}
    response = httpx2.post(f"{live_url}/v2/models/mugs/infer", content=b"{}", headers=cut)
    assert response.status_code == 400 and "error" in json.loads(response.text)
