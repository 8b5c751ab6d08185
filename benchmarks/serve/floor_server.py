"""The bare aiohttp floor: the same JSON parsing, predict and JSON encoding as any v2 server
must do, with nothing else (no validation, metrics, logging). Same stack as modelops serve
(uvloop, orjson), so the ratio measures what the server adds, not what the libraries save.

    python floor_server.py MODEL.joblib PORT WORKERS
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

import joblib
import numpy as np
import orjson
import uvloop
from aiohttp import web


def make_app(model: Any) -> web.Application:
    async def infer(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        tensor = body["inputs"][0]
        x = np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])
        y = model.predict(x)
        out = {
            "model_name": "lr",
            "id": body.get("id", ""),
            "outputs": [{"name": "predict", "shape": list(y.shape), "datatype": "INT64", "data": y}],
        }
        return web.Response(body=orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY), content_type="application/json")

    async def ready(request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()
    app.router.add_post("/v2/models/lr/infer", infer)
    app.router.add_get("/v2/health/ready", ready)
    return app


def serve(path: str, port: int) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    uvloop.install()
    web.run_app(make_app(joblib.load(path)), sock=sock, access_log=None, print=None)


if __name__ == "__main__":
    model_path, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    children = []
    for _ in range(workers - 1):
        pid = os.fork()
        if pid == 0:
            serve(model_path, port)
            os._exit(0)
        children.append(pid)
    serve(model_path, port)
