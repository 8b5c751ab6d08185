"""Fixtures for the model server: real model files, in-process servers, `modelops serve` processes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import joblib
import numpy as np
import pytest
from aiohttp import web

from modelops.server.app import ServerState, build_app
from modelops.server.frameworks import Model
from modelops.server.frameworks.onnx import OnnxModel
from modelops.server.frameworks.sklearn import SklearnModel

TESTS_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ArtifactFile:
    path: Path
    digest: str


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def lr_artifact(tmp_path_factory: pytest.TempPathFactory) -> ArtifactFile:
    """The benchmark's model: LogisticRegression on 20 features."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    x = rng.normal(size=(400, 20))
    y = (x[:, 0] - x[:, 3] > 0).astype(np.int64)
    path = tmp_path_factory.mktemp("lr") / "model.joblib"
    joblib.dump(LogisticRegression().fit(x, y), path)
    return ArtifactFile(path, sha256(path))


@pytest.fixture(scope="session")
def iris_artifact(tmp_path_factory: pytest.TempPathFactory) -> ArtifactFile:
    """The KServe v2 sklearn example's model: iris, 4 features, 3 classes."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    path = tmp_path_factory.mktemp("iris") / "model.joblib"
    joblib.dump(LogisticRegression(max_iter=1000).fit(data.data, data.target), path)
    return ArtifactFile(path, sha256(path))


@pytest.fixture(scope="session")
def onnx_artifact(tmp_path_factory: pytest.TempPathFactory) -> ArtifactFile:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    y = (x[:, 1] > 0).astype(np.int64)
    onx = to_onnx(LogisticRegression().fit(x, y), x[:1], options={"zipmap": False}, target_opset=15)
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    path.write_bytes(onx.SerializeToString())
    return ArtifactFile(path, sha256(path))


def load(model: Model, path: Path) -> Model:
    model.load(path)
    return model


@pytest.fixture(scope="session")
def lr_model(lr_artifact: ArtifactFile) -> Model:
    return load(SklearnModel(), lr_artifact.path)


@pytest.fixture(scope="session")
def iris_model(iris_artifact: ArtifactFile) -> Model:
    return load(SklearnModel(), iris_artifact.path)


@pytest.fixture(scope="session")
def onnx_model(onnx_artifact: ArtifactFile) -> Model:
    return load(OnnxModel(), onnx_artifact.path)


@dataclass
class Running:
    """An in-process server on a loopback port, and a client session for it."""

    url: str
    state: ServerState
    http: aiohttp.ClientSession

    async def post(self, path: str, body: Any = None, data: bytes | None = None) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"data": data} if data is not None else {"json": body}
        async with self.http.post(self.url + path, **kwargs) as resp:
            text = await resp.read()
            return resp.status, _json_or_text(text, resp.content_type)

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.url + path) as resp:
            text = await resp.read()
            return resp.status, _json_or_text(text, resp.content_type)


def _json_or_text(raw: bytes, content_type: str) -> Any:
    import json

    if content_type == "application/json":
        return json.loads(raw)
    return raw.decode()


ServeFactory = Callable[..., Any]


@pytest.fixture
async def serve_app() -> AsyncIterator[ServeFactory]:
    """Start in-process servers: ``await serve_app(model, name=..., version=...)``."""
    runners: list[web.AppRunner] = []
    sessions: list[aiohttp.ClientSession] = []

    async def start(model: Model | None, name: str = "m", version: str = "1", **kwargs: Any) -> Running:
        state = ServerState(name=name, version=version, track=kwargs.pop("track", "stable"), **kwargs)
        if model is not None:
            state.set_model(model)
        runner = web.AppRunner(build_app(state), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        session = aiohttp.ClientSession()
        sessions.append(session)
        return Running(f"http://127.0.0.1:{port}", state, session)

    yield start
    for session in sessions:
        await session.close()
    for runner in runners:
        await runner.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ServeProcess:
    """A real `modelops serve` subprocess."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> None:
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            with (
                contextlib.suppress(urllib.error.URLError, OSError),
                urllib.request.urlopen(self.url + "/v2/health/ready", timeout=1) as resp,
            ):
                if resp.status == 200:
                    return
            time.sleep(0.05)
        raise AssertionError(f"server not ready after {timeout}s:\n{self.log()}")

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """Start `python -m modelops.cli serve ARGS` on a free loopback port; killed at teardown."""
    started: list[ServeProcess] = []

    def start(*args: str, port: int | None = None) -> ServeProcess:
        port = port or free_port()
        log_path = tmp_path / f"serve-{len(started)}.log"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}
        with log_path.open("wb") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "modelops.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=env,
            )
        sp = ServeProcess(proc, port, log_path)
        started.append(sp)
        return sp

    yield start
    for sp in started:
        if sp.proc.poll() is None:
            sp.proc.kill()
            sp.proc.wait(timeout=10)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Report how many cases the fuzzers generated (tests/server/test_fuzz.py)."""
    fuzz = sys.modules.get(__name__.rpartition(".")[0] + ".test_fuzz")
    counts = getattr(fuzz, "COUNTS", None)
    if counts:
        total = sum(counts.values())
        terminalreporter.write_line(f"fuzz cases generated: {total} in all")
        for name, n in sorted(counts.items()):
            terminalreporter.write_line(f"  {n:6d}  {name}")
