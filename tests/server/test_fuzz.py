"""Fuzzing: schemathesis against the published OpenAPI document, hypothesis on tensor payloads.

A live server runs in a background thread (its own event loop) with the 20-feature
LogisticRegression; the generated-case counts are printed at the end of the module.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelops.server.app import ServerState, build_app, openapi_json
from modelops.server.frameworks.sklearn import SklearnModel
from modelops.server.tensors import DATATYPES, BadRequest, decode_request

from .conftest import ArtifactFile
from .fakes import EchoModel

COUNTS: Counter[str] = Counter()
schema = schemathesis.openapi.from_dict(openapi_json())


class LiveServer:
    """Serve an app from a thread so that synchronous fuzzers can call it."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(build_app(state), access_log=None)
        self.url = ""
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        self._ready.set()
        self.loop.run_forever()

    def __enter__(self) -> LiveServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def report() -> Counter[str]:
    """Generated-case counts, printed in the terminal summary (see conftest.py)."""
    return COUNTS


@pytest.fixture(scope="module")
def lr_server(lr_artifact: ArtifactFile) -> Iterator[LiveServer]:
    model = SklearnModel()
    model.load(lr_artifact.path)
    state = ServerState(name="lr", version="1", track="stable", max_body_bytes=1 << 20)
    state.set_model(model)
    with LiveServer(state) as server:
        yield server


@pytest.fixture(scope="module")
def echo_server() -> Iterator[LiveServer]:
    state = ServerState(name="echo", version="1", track="stable")
    state.set_model(EchoModel())
    with LiveServer(state) as server:
        yield server


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_openapi_conformance(case: Any, lr_server: LiveServer, report: Counter[str]) -> None:
    """Every documented operation, with schema-valid and schema-invalid data: no 5xx, status
    codes, content types and bodies as documented."""
    report[f"schemathesis {case.operation.label}"] += 1
    response = case.call_and_validate(base_url=lr_server.url)
    assert response.status_code < 500


# Tensors: a datatype, a shape, and data that fits both.
_ELEMENTS: dict[str, st.SearchStrategy[Any]] = {
    "BOOL": st.booleans(),
    "UINT8": st.integers(0, 2**8 - 1),
    "UINT16": st.integers(0, 2**16 - 1),
    "UINT32": st.integers(0, 2**32 - 1),
    "UINT64": st.integers(0, 2**64 - 1),
    "INT8": st.integers(-(2**7), 2**7 - 1),
    "INT16": st.integers(-(2**15), 2**15 - 1),
    "INT32": st.integers(-(2**31), 2**31 - 1),
    "INT64": st.integers(-(2**63), 2**63 - 1),
    "FP16": st.floats(-1000, 1000, width=16),
    "FP32": st.floats(width=32, allow_nan=False, allow_infinity=False),
    "FP64": st.floats(allow_nan=False, allow_infinity=False),
    "BYTES": st.text(max_size=8),
}


@st.composite
def tensors(draw: st.DrawFn) -> dict[str, Any]:
    datatype = draw(st.sampled_from(sorted(_ELEMENTS)))
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    flat = draw(st.lists(_ELEMENTS[datatype], min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    nested = draw(st.booleans())
    data: Any = np.array(flat, dtype=object).reshape(shape).tolist() if nested else flat
    return {
        "name": draw(st.text("abcxyz_-", min_size=1, max_size=6)),
        "shape": shape,
        "datatype": datatype,
        "data": data,
    }


@given(inputs=st.lists(tensors(), min_size=1, max_size=3, unique_by=lambda t: t["name"]))
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
def test_valid_tensors_round_trip(
    inputs: list[dict[str, Any]], echo_server: LiveServer, http: requests.Session, report: Counter[str]
) -> None:
    report["hypothesis valid tensors"] += 1
    response = http.post(echo_server.url + "/v2/models/echo/infer", json={"inputs": inputs}, timeout=10)
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    assert [o["name"] for o in outputs] == [t["name"] for t in inputs]
    for sent, got in zip(inputs, outputs, strict=True):
        assert got["shape"] == sent["shape"]
        assert got["datatype"] == sent["datatype"]
        expected = np.asarray(sent["data"], dtype=DATATYPES[sent["datatype"]]).ravel()
        if sent["datatype"].startswith("FP"):
            assert np.array_equal(np.asarray(got["data"], dtype=expected.dtype), expected)
        else:
            assert got["data"] == expected.tolist()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def mangled_requests(draw: st.DrawFn) -> Any:
    """A valid 20-feature request with one part replaced by arbitrary JSON, or arbitrary JSON."""
    tensor: dict[str, Any] = {"name": "input-0", "shape": [1, 20], "datatype": "FP32", "data": [0.5] * 20}
    body: dict[str, Any] = {"inputs": [tensor]}
    where = draw(
        st.sampled_from(
            ["body", "inputs", "tensor", "name", "shape", "datatype", "data", "outputs", "id", "parameters"]
        )
    )
    value = draw(_json)
    if where == "body":
        return value
    if where in ("inputs", "outputs", "id", "parameters"):
        body[where] = value
    else:
        tensor[where] = value
    return body


@given(body=mangled_requests())
@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
def test_mangled_requests_never_500(
    body: Any, lr_server: LiveServer, http: requests.Session, report: Counter[str]
) -> None:
    report["hypothesis mangled requests"] += 1
    response = http.post(lr_server.url + "/v2/models/lr/infer", json=body, timeout=10)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert set(response.json()) == {"error"}


@given(_json)
@settings(max_examples=500, deadline=None)
def test_decode_request_only_raises_bad_request(body: Any) -> None:
    COUNTS["hypothesis decode_request"] += 1
    try:
        decode_request(body)
    except BadRequest as exc:
        error = exc
    else:
        return
    assert error.status == 400
    assert error.message
