"""The Open Inference Protocol v2 REST endpoints on aiohttp.

The infer handler is the hot path: orjson in and out, hand-written validation (no pydantic), the
model called inline (a ~100 µs predict costs less than a thread hand-off), metrics as float
additions, and the prediction log as a deque append. Everything else (health, metadata, metrics)
is cold.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from importlib import resources
from time import perf_counter
from typing import Any

import numpy as np
import orjson
from aiohttp import hdrs, web

from modelops import __version__
from modelops.server.frameworks import InvalidInput, Model, Signature
from modelops.server.metrics import RequestMetrics, Slots, make_registry, render
from modelops.server.predlog import PredictionLog
from modelops.server.tensors import BadRequest, decode_request, encode_output

log = logging.getLogger(__name__)

JSON = "application/json"
_DUMPS_OPTS = orjson.OPT_SERIALIZE_NUMPY
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def openapi_document() -> bytes:
    """The packaged OpenAPI document of these endpoints (a copy lives in docs/)."""
    return resources.files("modelops.server").joinpath("openapi.json").read_bytes()


class ServerState:
    """One worker's view: the model once loaded, readiness, metrics and the prediction log."""

    def __init__(
        self,
        *,
        name: str,
        version: str,
        track: str,
        slots: Slots | None = None,
        worker: int = 0,
        max_body_bytes: int = 10 * 1024 * 1024,
        deployment: str | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.track = track
        self.slots = slots or Slots.local()
        self.worker = worker
        self.max_body_bytes = max_body_bytes
        self.model: Model | None = None
        self.signature: Signature | None = None
        self.predlog: PredictionLog | None = None
        self.draining = False
        self.labels = {"model": name, "version": version, "track": track}
        # The ModelDeployment this server belongs to, as a constant label of every metric: the
        # canary analysis selects both tracks of one deployment by it (prediction-log rows keep
        # their columns).
        metric_labels = {**self.labels, "deployment": deployment} if deployment else self.labels
        self.metrics = RequestMetrics(self.slots, worker)
        self.registry = make_registry(self.slots, metric_labels, self._output_names)
        self._ids = itertools.count(1)
        self._id_prefix = f"{os.getpid():x}-"

    def _output_names(self) -> list[str]:
        return [o.name for o in self.signature.outputs] if self.signature else []

    def set_model(self, model: Model) -> None:
        """Publish a loaded model: from here on this worker counts as loaded."""
        self.signature = model.signature()
        self.metrics.outputs = {o.name: i for i, o in enumerate(self.signature.outputs)}
        self.model = model
        self.slots.set_loaded(self.worker)

    @property
    def ready(self) -> bool:
        return self.model is not None and not self.draining and not self.slots.draining and self.slots.all_loaded()

    def start_draining(self) -> None:
        self.draining = True
        self.slots.set_draining()

    def next_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids)}"


def _json(body: bytes, status: int = 200) -> web.Response:
    # Setting the header directly skips content_type's parsing: ~2 µs a response.
    response = web.Response(status=status, body=body)
    response.headers[hdrs.CONTENT_TYPE] = JSON
    return response


def _error(status: int, message: str) -> web.Response:
    return _json(orjson.dumps({"error": message}), status)


def _empty(status: int) -> web.Response:
    return web.Response(status=status)


class Handlers:
    """Route handlers bound to one ServerState."""

    def __init__(self, state: ServerState) -> None:
        self.s = state

    def _model_or_error(self, request: web.Request) -> web.Response | None:
        name = request.match_info["name"]
        version = request.match_info.get("version")
        if name != self.s.name:
            return _error(404, f"model {name!r} not found; this server serves {self.s.name!r}")
        if version is not None and version != self.s.version:
            return _error(404, f"model {name!r} has no version {version!r}; this server serves {self.s.version!r}")
        return None

    async def live(self, request: web.Request) -> web.Response:
        return _empty(200)

    async def ready(self, request: web.Request) -> web.Response:
        return _empty(200 if self.s.ready else 503)

    async def server_metadata(self, request: web.Request) -> web.Response:
        body = {"name": "modelops", "version": __version__, "extensions": []}
        return web.Response(body=orjson.dumps(body), content_type=JSON)

    async def model_ready(self, request: web.Request) -> web.Response:
        error = self._model_or_error(request)
        if error is not None:
            return error
        return _empty(200 if self.s.ready else 503)

    async def model_metadata(self, request: web.Request) -> web.Response:
        error = self._model_or_error(request)
        if error is not None:
            return error
        s = self.s
        if s.signature is None or s.model is None:
            return _error(503, f"model {s.name!r} is not loaded yet")
        body = {
            "name": s.name,
            "versions": [s.version],
            "platform": s.model.platform,
            "inputs": [t.as_dict() for t in s.signature.inputs],
            "outputs": [t.as_dict() for t in s.signature.outputs],
        }
        return web.Response(body=orjson.dumps(body), content_type=JSON)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=render(self.s.registry), headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=openapi_document(), content_type=JSON)

    async def infer(self, request: web.Request) -> web.Response:
        """The hot path, kept flat: every call and allocation here is paid per request."""
        start = perf_counter()
        s = self.s
        metrics = s.metrics
        metrics.started()
        code = 200
        result: dict[str, np.ndarray[Any, Any]] | None = None
        batch = 0
        try:
            error = self._model_or_error(request)
            if error is not None:
                code = error.status
                return error
            model = s.model
            signature = s.signature
            if model is None or signature is None:
                code = 503
                return _error(503, f"model {s.name!r} is not loaded yet")
            length = request.content_length
            if length is not None and length > s.max_body_bytes:
                raise BadRequest(f"request body of {length} bytes exceeds the limit of {s.max_body_bytes} bytes", 413)
            try:
                raw = await request.read()
            except web.HTTPRequestEntityTooLarge:
                raise BadRequest(f"request body exceeds the limit of {s.max_body_bytes} bytes", 413) from None
            try:
                payload = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise BadRequest(f"request body is not valid JSON: {exc}") from None
            req = decode_request(payload)
            result = model.predict(req.inputs, req.outputs or signature.default_outputs, req.parameters)
            request_id = req.id if req.id is not None else s.next_id()
            body: dict[str, Any] = {
                "model_name": s.name,
                "model_version": s.version,
                "id": request_id,
                "outputs": [encode_output(name, array) for name, array in result.items()],
            }
            if req.parameters:
                body["parameters"] = req.parameters
            response = _json(orjson.dumps(body, option=_DUMPS_OPTS))
            first = next(iter(req.inputs.values()))
            batch = int(first.shape[0]) if first.ndim else 1
            predlog = s.predlog
            if predlog is not None and (predlog.always or predlog.draw() < predlog.rate):
                predlog.record(request_id, req.inputs, result)
            return response
        except BadRequest as exc:
            code = exc.status
            result = None
            return _error(code, exc.message)
        except InvalidInput as exc:
            code = 400
            result = None
            return _error(400, str(exc))
        except Exception as exc:  # a model bug, never the input's fault: say so, stay up
            log.exception("inference failed")
            code = 500
            result = None
            return _error(500, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            metrics.finished(code, perf_counter() - start, batch, result)


def build_app(state: ServerState, *, with_metrics: bool = True) -> web.Application:
    """The v2 routes, with and without ``/versions/{version}``; ``/metrics`` unless served apart.

    Wrong methods and unknown paths answer in the protocol's ``{"error": ...}`` shape through
    catch-all routes rather than a middleware, which would cost every request a few µs.
    """
    app = web.Application(client_max_size=state.max_body_bytes)
    h = Handlers(state)
    routes: list[tuple[str, str, Any]] = []
    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        routes += [
            ("POST", prefix + "/infer", h.infer),
            ("GET", prefix + "/ready", h.model_ready),
            ("GET", prefix, h.model_metadata),
        ]
    routes += [
        ("GET", "/v2/health/live", h.live),
        ("GET", "/v2/health/ready", h.ready),
        ("GET", "/v2", h.server_metadata),
        ("GET", "/v2/openapi.json", h.openapi),
    ]
    if with_metrics:
        routes.append(("GET", "/metrics", h.metrics))
    for method, path, handler in routes:
        if method == "GET":
            app.router.add_get(path, handler)
        else:
            app.router.add_route(method, path, handler)
        app.router.add_route("*", path, _method_not_allowed("GET, HEAD" if method == "GET" else method))
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app


def _method_not_allowed(allow: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        response = _error(405, f"Method Not Allowed: {request.method} {request.path}; use {allow}")
        response.headers["Allow"] = allow
        return response

    return handler


async def _not_found(request: web.Request) -> web.Response:
    return _error(404, f"Not Found: {request.method} {request.path}")


def build_metrics_app(state: ServerState) -> web.Application:
    """The separate ``--metrics-port`` listener: metrics and health only."""
    app = web.Application()
    h = Handlers(state)
    app.router.add_get("/metrics", h.metrics)
    app.router.add_get("/v2/health/live", h.live)
    app.router.add_get("/v2/health/ready", h.ready)
    return app


def openapi_json() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(openapi_document())
    return result
