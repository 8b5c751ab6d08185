"""Every malformed request gets a 4xx with {"error": ...} naming the problem; the server stays up."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from modelops.server.frameworks import Model
from modelops.server.tensors import BadRequest, decode_input

from .conftest import ServeFactory

ROW = [0.5] * 20


def _body(**input_fields: Any) -> dict[str, Any]:
    tensor = {"name": "input-0", "shape": [1, 20], "datatype": "FP32", "data": ROW}
    tensor.update(input_fields)
    return {"inputs": [{k: v for k, v in tensor.items() if v is not ...}]}


BAD_BODIES: list[tuple[str, bytes | dict[str, Any] | list[Any], int, str]] = [
    ("not json", b"{'inputs': nope", 400, "not valid JSON"),
    ("empty body", b"", 400, "not valid JSON"),
    ("NaN literal", b'{"inputs": [NaN]}', 400, "not valid JSON"),
    ("json array", [1, 2], 400, "JSON object"),
    ("no inputs", {"id": "x"}, 400, "missing input"),
    ("empty inputs", {"inputs": []}, 400, "missing input"),
    ("inputs not a list", {"inputs": {"name": "x"}}, 400, "missing input"),
    ("input not an object", {"inputs": [3]}, 400, "must be an object"),
    ("input without name", _body(name=...), 400, "name"),
    ("input without shape", _body(shape=...), 400, "shape"),
    ("input without datatype", _body(datatype=...), 400, "datatype"),
    ("input without data", _body(data=...), 400, "data"),
    ("shape not a list", _body(shape="1,20"), 400, "shape"),
    ("negative dimension", _body(shape=[-1, 20]), 400, "shape"),
    ("float dimension", _body(shape=[1.0, 20]), 400, "shape"),
    ("shape/data mismatch", _body(shape=[2, 20]), 400, "needs 40 elements, data has 20"),
    ("more data than shape", _body(shape=[1, 10]), 400, "shape [1, 10] needs 10 elements, data has 20"),
    ("scalar shape, two values", _body(shape=[], data=[1.0, 2.0]), 400, "shape [] needs 1 elements, data has 2"),
    ("ragged data", _body(shape=[2, 2], data=[[1, 2], [3]]), 400, "input-0"),
    ("unknown datatype", _body(datatype="FP128"), 400, "unknown datatype 'FP128'"),
    ("lowercase datatype", _body(datatype="fp32"), 400, "unknown datatype"),
    ("strings as FP32", _body(shape=[1, 2], data=["a", "b"]), 400, "not a valid FP32"),
    ("objects as data", _body(shape=[1, 1], data=[{"a": 1}]), 400, "not a valid FP32"),
    ("null in INT64", _body(datatype="INT64", shape=[1, 2], data=[1, None]), 400, "INT64"),
    ("INT32 overflow", _body(datatype="INT32", shape=[1], data=[2**40]), 400, "INT32"),
    ("FP16 overflow", _body(datatype="FP16", data=[70000.0, *ROW[1:]]), 400, "value 70000 overflows FP16"),
    ("FP32 overflow", _body(data=[*ROW[1:], -1e39]), 400, "value -1e+39 overflows FP32"),
    ("numbers as BYTES", _body(datatype="BYTES", shape=[1], data=[1]), 400, "BYTES"),
    ("numbers as BOOL", _body(datatype="BOOL", shape=[2], data=[1, 0]), 400, "BOOL"),
    ("wrong feature count", _body(shape=[1, 19], data=ROW[:19]), 400, "expects 20 features, got 19"),
    ("3-d tensor", _body(shape=[1, 2, 10]), 400, "[batch, features]"),
    ("empty batch", _body(shape=[0, 20], data=[]), 400, "empty batch"),
    ("strings as features", _body(datatype="BYTES", data=["x"] * 20), 400, "model rejected"),
    ("unknown output", {**_body(), "outputs": [{"name": "nope"}]}, 400, "unknown output 'nope'"),
    ("outputs not a list", {**_body(), "outputs": "predict"}, 400, "'outputs'"),
    ("output without name", {**_body(), "outputs": [{}]}, 400, "'outputs'"),
    ("id not a string", {**_body(), "id": 5}, 400, "'id'"),
    ("parameters not an object", {**_body(), "parameters": [1]}, 400, "'parameters'"),
    ("duplicate input", {"inputs": _body()["inputs"] * 2}, 400, "twice"),
    ("input parameters not an object", _body(parameters=3), 400, "'parameters'"),
    ("deep nesting", b'{"inputs":' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "not valid JSON"),
]


@pytest.mark.parametrize(("case", "body", "status", "fragment"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
async def test_bad_input_is_a_4xx_naming_the_problem(
    serve_app: ServeFactory, lr_model: Model, case: str, body: Any, status: int, fragment: str
) -> None:
    server = await serve_app(lr_model, name="lr", max_body_bytes=1 << 20)
    raw = body if isinstance(body, bytes) else None
    got_status, got = await server.post("/v2/models/lr/infer", None if raw is not None else body, data=raw)
    assert got_status == status, got
    assert set(got) == {"error"}
    assert fragment in got["error"]
    # ... and the server is still up and still answers correctly.
    assert (await server.get("/v2/health/ready"))[0] == 200
    ok, answer = await server.post("/v2/models/lr/infer", _body())
    assert ok == 200
    assert answer["outputs"][0]["shape"] == [1]


async def test_body_over_the_limit_is_413(serve_app: ServeFactory, lr_model: Model) -> None:
    server = await serve_app(lr_model, name="lr", max_body_bytes=2048)
    big = {"inputs": [{"name": "x", "shape": [100, 20], "datatype": "FP32", "data": [0.25] * 2000}]}
    status, body = await server.post("/v2/models/lr/infer", big)
    assert status == 413
    assert "exceeds the limit of 2048 bytes" in body["error"]

    async def chunks() -> Any:  # no Content-Length: the limit holds while streaming too
        for _ in range(10):
            yield b" " * 1024

    async with server.http.post(server.url + "/v2/models/lr/infer", data=chunks()) as resp:
        assert resp.status == 413
        assert "exceeds the limit" in (await resp.json())["error"]
    assert (await server.post("/v2/models/lr/infer", _body()))[0] == 200


async def test_unknown_paths_and_methods_answer_json(serve_app: ServeFactory, lr_model: Model) -> None:
    server = await serve_app(lr_model, name="lr")
    status, body = await server.get("/v3/whatever")
    assert status == 404
    assert "Not Found" in body["error"]
    async with server.http.put(server.url + "/v2/models/lr/infer") as resp:
        assert resp.status == 405
        assert "POST" in resp.headers["Allow"]
        assert "error" in await resp.json()


@pytest.mark.parametrize(("datatype", "value"), [("FP16", 65520.0), ("FP32", 3.5e38)])
def test_float_overflow_is_bad_input_without_a_runtime_warning(datatype: str, value: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "overflow encountered in cast" would raise here
        with pytest.raises(BadRequest) as caught:
            decode_input({"name": "x", "shape": [2], "datatype": datatype, "data": [1.0, value]})
    assert caught.value.status == 400
    assert f"input 'x': value {value:g} overflows {datatype}" in caught.value.message


def test_largest_finite_fp16_is_accepted() -> None:
    assert decode_input({"name": "x", "shape": [1], "datatype": "FP16", "data": [65504.0]})[2][0] == 65504.0
