"""A real Prometheus scraping real `modelops serve` processes of two ModelDeployments under load.

- ``good``: churn-v1 on both tracks (the same model: no prediction shift, no errors).
- ``const``: churn-v1 stable, a DummyClassifier that always answers 1 as canary, which also
  receives malformed requests (HTTP 400).

Prometheus scrapes every second with the target labels the sandbox gives pods (``namespace``,
``pod``). The load runs once per module; ``Cluster.quiet_at`` is a moment when each canary had
answered only a handful of requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import joblib
import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CHURN_V1 = ROOT / "examples" / "artifacts" / "churn-v1.joblib"
NAMESPACE = "shop"
ROWS = 5  # rows per request
GOOD_REQUESTS = 150  # per track
BAD_REQUESTS = 50  # malformed, to the const canary only
QUIET_REQUESTS = 5  # per track, before the load


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def wait(check: Callable[[], bool], what: str, timeout: float, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"{p.args!r} exited with {p.returncode} while waiting for {what}")
        with contextlib.suppress(OSError, ValueError, urllib.error.URLError):
            if check():
                return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return json.loads(resp.read()) if "json" in resp.headers.get("Content-Type", "") else resp.status


@dataclass(frozen=True)
class Server:
    deployment: str
    track: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Cluster:
    prometheus_url: str
    servers: tuple[Server, ...]
    quiet_at: datetime
    load_done_at: datetime

    def server(self, deployment: str, track: str) -> Server:
        return next(s for s in self.servers if s.deployment == deployment and s.track == track)

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        result: list[dict[str, Any]] = get(url)["data"]["result"]
        return result

    def total(self, selector: str) -> float:
        result = self.query(f"sum(modelops_inference_requests_total{selector})")
        return float(result[0]["value"][1]) if result else -1.0


def body(rng: np.random.Generator, rows: int = ROWS, features: int = 4) -> dict[str, Any]:
    data = rng.normal(size=(rows, features)).round(4).tolist()
    return {"inputs": [{"name": "input-0", "shape": [rows, features], "datatype": "FP64", "data": data}]}


async def drive(jobs: list[tuple[str, dict[str, Any], int]], concurrency: int = 16) -> None:
    """POST every (url, body, expected status), ``concurrency`` at a time."""
    queue: asyncio.Queue[tuple[str, dict[str, Any], int]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def worker(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            url, payload, expected = queue.get_nowait()
            async with http.post(url, json=payload) as resp:
                await resp.read()
                assert resp.status == expected, (url, resp.status)

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))


def infer_url(server: Server) -> str:
    return f"{server.url}/v2/models/churn/infer"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("needs the prometheus binary (Debian package prometheus)")
    from sklearn.dummy import DummyClassifier

    tmp = tmp_path_factory.mktemp("analysis")
    rng = np.random.default_rng(11)
    constant = tmp / "constant.joblib"
    x = rng.normal(size=(20, 4))
    joblib.dump(DummyClassifier(strategy="constant", constant=1).fit(x, np.arange(20) % 2), constant)

    layout = [("good", "stable", CHURN_V1), ("good", "canary", CHURN_V1)]
    layout += [("const", "stable", CHURN_V1), ("const", "canary", constant)]
    servers = tuple(Server(dep, track, free_port()) for dep, track, _ in layout)
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    env = {k: v for k, v in os.environ.items() if k != "MODELOPS_SANDBOX_PORT_MAP"}  # real ports, as configured
    try:
        for server, (_, _, artifact) in zip(servers, layout, strict=True):
            version = "1" if artifact == CHURN_V1 else "2"
            command = [sys.executable, "-m", "modelops.cli", "serve", "--host", "127.0.0.1", "--port", str(server.port)]
            command += ["--model-uri", str(artifact), "--digest", sha256(artifact), "--name", "churn"]
            command += ["--version", version, "--track", server.track, "--deployment", server.deployment]
            command += ["--shutdown-delay", "0"]
            log = tmp / f"serve-{server.deployment}-{server.track}.log"
            logs.append(log)
            with log.open("wb") as fh:
                procs.append(subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT, env=env))
        prom_port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "kubernetes-pods",
                    "static_configs": [
                        {
                            "targets": [f"127.0.0.1:{s.port}"],
                            "labels": {"namespace": NAMESPACE, "pod": f"{s.deployment}-{s.track}-0"},
                        }
                        for s in servers
                    ],
                }
            ],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        log = tmp / "prometheus.log"
        logs.append(log)
        command = [prometheus, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'tsdb'}"]
        command += [f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"]
        with log.open("wb") as fh:
            procs.append(subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT))
        prom = f"http://127.0.0.1:{prom_port}"
        for s in servers:
            wait(lambda s=s: get(f"{s.url}/v2/health/ready") == 200, f"{s.deployment}/{s.track} ready", 60, procs)  # type: ignore[misc]
        wait(lambda: get(f"{prom}/-/ready") == 200, "prometheus ready", 30, procs)
        c = Cluster(prom, servers, datetime.now(UTC), datetime.now(UTC))
        # Every target scraped twice with a loaded model and its counters at zero: increase() has a
        # baseline. (The prediction histograms appear once the model has loaded: its outputs name them.)
        baseline = 'count_over_time(modelops_prediction_value_bucket{le="+Inf",output="predict"}[1m]) >= 2'
        wait(lambda: len(c.query(baseline)) == len(servers), "two scrapes of every loaded server", 30, procs)

        # A few requests per track, then a moment when that is all the canaries have seen.
        good = [(infer_url(s), body(rng), 200) for s in servers for _ in range(QUIET_REQUESTS)]
        asyncio.run(drive(good))
        wait(lambda: c.total("") == QUIET_REQUESTS * len(servers), "the quiet requests scraped", 30, procs)
        # The newest sample Prometheus holds was scraped before the load below starts.
        newest = float(c.query("max(timestamp(modelops_inference_requests_total))")[0]["value"][1])
        quiet_at = datetime.fromtimestamp(newest, UTC)

        # The load: the same inputs to every track; malformed requests to the const canary.
        inputs = [body(rng) for _ in range(GOOD_REQUESTS)]
        jobs = [(infer_url(s), b, 200) for s in servers for b in inputs]
        bad = {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP64", "data": [1.0, 2.0, 3.0]}]}
        jobs += [(infer_url(servers[3]), bad, 400)] * BAD_REQUESTS
        asyncio.run(drive(jobs))
        expected = (QUIET_REQUESTS + GOOD_REQUESTS) * len(servers) + BAD_REQUESTS
        wait(lambda: c.total("") == expected, "the load scraped", 30, procs)
        yield Cluster(prom, servers, quiet_at, datetime.now(UTC))
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n" + "\n".join(f"--- {p}\n{p.read_text()[-2000:]}" for p in logs)) from None
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
