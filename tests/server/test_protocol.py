"""Open Inference Protocol v2 over HTTP: health, metadata, inference, versions, documented bodies."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelops.server.frameworks import Model
from modelops.server.frameworks.sklearn import SklearnModel

from .conftest import ArtifactFile, ServeFactory
from .fakes import EchoModel, ProtocolExampleModel

DOCS_OPENAPI = (Path(__file__).resolve().parents[2] / "docs" / "openapi-inference-v2.json").read_text()

# The inference request example of the v2 protocol document (KServe's required_api.md and the
# Open Inference Protocol's inference_rest.md), verbatim.
DOCUMENTED_REQUEST: dict[str, Any] = {
    "id": "42",
    "inputs": [
        {"name": "input0", "shape": [2, 2], "datatype": "UINT32", "data": [1, 2, 3, 4]},
        {"name": "input1", "shape": [3], "datatype": "BOOL", "data": [True]},
    ],
    "outputs": [{"name": "output0"}],
}
# The response the document gives for it.
DOCUMENTED_RESPONSE_OUTPUT = {
    "name": "output0",
    "shape": [3, 2],
    "datatype": "FP32",
    "data": [1.0, 1.1, 2.0, 2.1, 3.0, 3.1],
}

# KServe's v2 sklearn example (iris-input-v2.json): nested data, no id.
KSERVE_IRIS_REQUEST: dict[str, Any] = {
    "inputs": [
        {
            "name": "input-0",
            "shape": [2, 4],
            "datatype": "FP32",
            "data": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]],
        }
    ]
}


async def test_documented_example_is_rejected_for_its_shape_mismatch(serve_app: ServeFactory) -> None:
    """The document's input1 declares shape [3] but carries one element: the protocol's own
    shape rule makes that a 400 naming the input, not a silently padded tensor."""
    server = await serve_app(ProtocolExampleModel(), name="mymodel")
    status, body = await server.post("/v2/models/mymodel/infer", DOCUMENTED_REQUEST)
    assert status == 400
    assert "input1" in body["error"]
    assert "[3]" in body["error"]


async def test_documented_example_with_consistent_shape_gets_the_documented_response(serve_app: ServeFactory) -> None:
    server = await serve_app(ProtocolExampleModel(), name="mymodel", version="7")
    request = copy.deepcopy(DOCUMENTED_REQUEST)
    request["inputs"][1]["shape"] = [1]
    status, body = await server.post("/v2/models/mymodel/infer", request)
    assert status == 200
    assert body["id"] == "42"
    assert body["model_name"] == "mymodel"
    assert body["model_version"] == "7"
    assert len(body["outputs"]) == 1
    (out,) = body["outputs"]
    assert out["name"] == DOCUMENTED_RESPONSE_OUTPUT["name"]
    assert out["shape"] == DOCUMENTED_RESPONSE_OUTPUT["shape"]
    assert out["datatype"] == DOCUMENTED_RESPONSE_OUTPUT["datatype"]
    assert out["data"] == pytest.approx(DOCUMENTED_RESPONSE_OUTPUT["data"], rel=1e-6)
    assert set(body) == {"model_name", "model_version", "id", "outputs"}


async def test_kserve_iris_example(serve_app: ServeFactory, iris_model: Model) -> None:
    server = await serve_app(iris_model, name="sklearn-v2-iris", version="v1")
    status, body = await server.post("/v2/models/sklearn-v2-iris/infer", KSERVE_IRIS_REQUEST)
    assert status == 200
    assert body["model_name"] == "sklearn-v2-iris"
    assert body["model_version"] == "v1"
    assert isinstance(body["id"], str)
    assert body["id"]
    (out,) = body["outputs"]
    assert out["name"] == "predict"
    assert out["shape"] == [2]
    assert out["datatype"] == "INT64"
    assert out["data"] == [1, 1]  # versicolor twice, as KServe's example answers


async def test_health_metadata_and_versions(serve_app: ServeFactory, lr_model: Model) -> None:
    server = await serve_app(lr_model, name="lr", version="3")
    assert (await server.get("/v2/health/live"))[0] == 200
    assert (await server.get("/v2/health/ready"))[0] == 200
    status, meta = await server.get("/v2")
    assert status == 200
    assert meta["name"] == "modelops"
    assert meta["extensions"] == []
    for prefix in ("/v2/models/lr", "/v2/models/lr/versions/3"):
        status, body = await server.get(prefix)
        assert status == 200
        assert body == {
            "name": "lr",
            "versions": ["3"],
            "platform": "sklearn",
            "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 20]}],
            "outputs": [
                {"name": "predict", "datatype": "INT64", "shape": [-1]},
                {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]},
                {"name": "decision_function", "datatype": "FP64", "shape": [-1]},
            ],
        }
        assert (await server.get(prefix + "/ready"))[0] == 200
        row = [0.1 * i for i in range(20)]
        status, body = await server.post(
            prefix + "/infer", {"inputs": [{"name": "x", "shape": [1, 20], "datatype": "FP64", "data": row}]}
        )
        assert status == 200, body
        expected = lr_model.predict({"x": np.array([row])}, ["predict"], None)["predict"]
        assert body["outputs"][0]["data"] == expected.tolist()
    for path in ("/v2/models/other", "/v2/models/lr/versions/4", "/v2/models/lr/versions/4/ready"):
        status, body = await server.get(path)
        assert status == 404
        assert "error" in body
    status, body = await server.post("/v2/models/lr/versions/4/infer", {"inputs": []})
    assert status == 404
    assert "version" in body["error"]


async def test_named_outputs_and_proba(serve_app: ServeFactory, lr_model: Model) -> None:
    server = await serve_app(lr_model, name="lr")
    x = np.random.default_rng(1).normal(size=(3, 20))
    request = {
        "inputs": [{"name": "input-0", "shape": [3, 20], "datatype": "FP64", "data": x.ravel().tolist()}],
        "outputs": [{"name": "predict_proba"}, {"name": "predict"}],
    }
    status, body = await server.post("/v2/models/lr/infer", request)
    assert status == 200
    assert [o["name"] for o in body["outputs"]] == ["predict_proba", "predict"]
    proba = body["outputs"][0]
    assert proba["shape"] == [3, 2]
    assert proba["datatype"] == "FP64"
    assert np.allclose(np.array(proba["data"]).reshape(3, 2).sum(axis=1), 1.0)
    assert body["outputs"][1]["data"] == np.argmax(np.array(proba["data"]).reshape(3, 2), axis=1).tolist()


async def test_several_inputs_are_columns(serve_app: ServeFactory, tmp_path: Any) -> None:
    import joblib
    from sklearn.linear_model import LinearRegression

    x = np.random.default_rng(2).normal(size=(50, 2))
    path = tmp_path / "lin.joblib"
    joblib.dump(LinearRegression().fit(x, 3 * x[:, 0] - x[:, 1]), path)
    model = SklearnModel()
    model.load(path)
    server = await serve_app(model, name="lin")
    request = {
        "inputs": [
            {"name": "a", "shape": [2], "datatype": "FP64", "data": [1.0, 0.0]},
            {"name": "b", "shape": [2, 1], "datatype": "FP64", "data": [[0.0], [1.0]]},
        ]
    }
    status, body = await server.post("/v2/models/lin/infer", request)
    assert status == 200
    assert body["outputs"][0]["datatype"] == "FP64"
    assert body["outputs"][0]["data"] == pytest.approx([3.0, -1.0], abs=1e-6)


@pytest.mark.parametrize(
    ("datatype", "data", "expected"),
    [
        ("FP32", [1.5, -2.25], [1.5, -2.25]),
        ("FP64", [1e-300, 2.5], [1e-300, 2.5]),
        ("FP16", [0.5, 2.0], [0.5, 2.0]),
        ("INT8", [-128, 127], [-128, 127]),
        ("INT16", [-1, 300], [-1, 300]),
        ("INT32", [-(2**31), 2**31 - 1], [-(2**31), 2**31 - 1]),
        ("INT64", [-(2**63), 2**63 - 1], [-(2**63), 2**63 - 1]),
        ("UINT8", [0, 255], [0, 255]),
        ("UINT16", [0, 65535], [0, 65535]),
        ("UINT32", [0, 2**32 - 1], [0, 2**32 - 1]),
        ("UINT64", [0, 2**64 - 1], [0, 2**64 - 1]),
        ("BOOL", [True, False], [True, False]),
        ("BYTES", ["héllo", ""], ["héllo", ""]),
    ],
)
async def test_every_datatype_round_trips(
    serve_app: ServeFactory, datatype: str, data: list[Any], expected: list[Any]
) -> None:
    server = await serve_app(EchoModel(), name="echo")
    request = {"inputs": [{"name": "t", "shape": [1, 2], "datatype": datatype, "data": [data]}]}
    status, body = await server.post("/v2/models/echo/infer", request)
    assert status == 200, body
    (out,) = body["outputs"]
    assert out == {"name": "t", "shape": [1, 2], "datatype": datatype, "data": expected}


async def test_parameters_pass_through(serve_app: ServeFactory) -> None:
    server = await serve_app(EchoModel(), name="echo")
    params = {"content_type": "np", "threshold": 0.5, "explain": False}
    request = {
        "id": "abc",
        "parameters": params,
        "inputs": [
            {"name": "a", "shape": [2], "datatype": "INT32", "data": [1, 2], "parameters": {"x": 1}},
            {"name": "b", "shape": [1], "datatype": "BYTES", "data": ["z"]},
        ],
        "outputs": [{"name": "b"}],
    }
    status, body = await server.post("/v2/models/echo/infer", request)
    assert status == 200
    assert EchoModel.last_parameters == params
    assert body["parameters"] == params
    assert body["id"] == "abc"
    assert body["outputs"] == [{"name": "b", "shape": [1], "datatype": "BYTES", "data": ["z"]}]


async def test_onnx_model(serve_app: ServeFactory, onnx_model: Model) -> None:
    server = await serve_app(onnx_model, name="onnx")
    status, meta = await server.get("/v2/models/onnx")
    assert status == 200
    assert meta["platform"] == "onnxruntime"
    assert meta["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 5]}]
    assert {o["name"] for o in meta["outputs"]} == {"label", "probabilities"}
    request = {
        "inputs": [{"name": "X", "shape": [2, 5], "datatype": "FP64", "data": [[0, 2, 0, 0, 0], [0, -2, 0, 0, 0]]}]
    }
    status, body = await server.post("/v2/models/onnx/infer", request)
    assert status == 200, body
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["label"]["data"] == [1, 0]
    assert outputs["probabilities"]["shape"] == [2, 2]
    status, body = await server.post(
        "/v2/models/onnx/infer", {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [0, 0, 0, 0]}]}
    )
    assert status == 400
    assert "5 features" in body["error"]


async def test_not_ready_until_loaded(serve_app: ServeFactory, lr_model: Model) -> None:
    server = await serve_app(None, name="lr")
    assert (await server.get("/v2/health/live"))[0] == 200
    assert (await server.get("/v2/health/ready"))[0] == 503
    assert (await server.get("/v2/models/lr/ready"))[0] == 503
    status, body = await server.post(
        "/v2/models/lr/infer", {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}
    )
    assert status == 503
    assert "not loaded" in body["error"]
    server.state.set_model(lr_model)
    assert (await server.get("/v2/health/ready"))[0] == 200
    server.state.start_draining()
    assert (await server.get("/v2/health/ready"))[0] == 503
    assert (await server.get("/v2/health/live"))[0] == 200


async def test_openapi_document_served_and_copied_to_docs(serve_app: ServeFactory) -> None:
    server = await serve_app(EchoModel())
    status, doc = await server.get("/v2/openapi.json")
    assert status == 200
    assert json.loads(DOCS_OPENAPI) == doc, "docs/openapi-inference-v2.json is stale"
    assert "/v2/models/{model_name}/versions/{model_version}/infer" in doc["paths"]


def test_framework_is_resolved_by_import_path(lr_artifact: ArtifactFile) -> None:
    from modelops.server.frameworks import guess_framework, resolve

    assert resolve(f"{EchoModel.__module__}:EchoModel") is EchoModel
    assert resolve("sklearn") is SklearnModel
    assert guess_framework("s3://b/m.onnx") == "onnx"
    assert guess_framework("x.bin", "joblib") == "sklearn"
    with pytest.raises(ValueError, match="unknown framework"):
        resolve("tensorflow")
