"""Fixtures for the workload runner tests: a sandbox API server and a WorkloadRunner on its own thread.

Everything is observed through the API (as kubectl would), and processes through /proc.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from modelops.sandbox import ServerThread
from modelops.sandbox.cluster import RunnerThread

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "examples" / "artifacts"
IMAGE = "registry.test/modelops:sandbox-test"
T = TypeVar("T")
Obj = dict[str, Any]

CORE = "/api/v1/namespaces/default"
APPS = "/apis/apps/v1/namespaces/default"
BATCH = "/apis/batch/v1/namespaces/default"


def digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


@dataclass
class Api:
    """A tiny synchronous client of the sandbox API, for test code."""

    url: str

    def get(self, path: str, **params: str) -> Obj:
        r = requests.get(self.url + path, params=params, timeout=10)
        r.raise_for_status()
        out: Obj = r.json()
        return out

    def find(self, path: str) -> Obj | None:
        r = requests.get(self.url + path, timeout=10)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        out: Obj = r.json()
        return out

    def items(self, path: str, **params: str) -> list[Obj]:
        return list(self.get(path, **params).get("items") or [])

    def create(self, path: str, body: Obj) -> Obj:
        r = requests.post(self.url + path, json=body, timeout=10)
        assert r.status_code == 201, r.text
        out: Obj = r.json()
        return out

    def patch(self, path: str, body: Obj) -> Obj:
        r = requests.patch(
            self.url + path, json=body, headers={"Content-Type": "application/merge-patch+json"}, timeout=10
        )
        assert r.status_code == 200, r.text
        out: Obj = r.json()
        return out

    def delete(self, path: str) -> None:
        r = requests.delete(self.url + path, timeout=10)
        assert r.status_code in (200, 202), r.text

    def wait(self, check: Callable[[], T | None], within: float = 15.0, what: str = "") -> T:
        """Poll `check` until it returns something truthy (returned); fail after `within` seconds."""
        deadline = time.monotonic() + within
        last: Any = None
        while True:
            try:
                result = check()
            except (AssertionError, KeyError, IndexError, TypeError) as exc:
                result, last = None, exc
            if result:
                return result
            if time.monotonic() > deadline:
                pytest.fail(f"not true within {within}s: {what} (last: {last!r})")
            time.sleep(0.05)

    def wait_pod(self, name: str, predicate: Callable[[Obj], bool], what: str, within: float = 15.0) -> Obj:
        """The pod `name` once `predicate` holds for it."""

        def check() -> Obj | None:
            pod = self.get(f"{CORE}/pods/{name}")
            return pod if predicate(pod) else None

        return self.wait(check, within=within, what=f"pod {name}: {what}")

    def pods(self, selector: str = "") -> list[Obj]:
        params = {"labelSelector": selector} if selector else {}
        return self.items(f"{CORE}/pods", **params)


@dataclass
class Workloads:
    api: Api
    runner: RunnerThread
    state: Path

    def pids(self) -> list[int]:
        return self.runner.runner.pids()


def ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def condition(obj: Obj, ctype: str) -> Obj | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == ctype), None)


def container_status(pod: Obj, index: int = 0) -> Obj:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return dict(statuses[index]) if len(statuses) > index else {}


def serve_container(artifact: str = "churn-v1.joblib", version: str = "1", **extra: Any) -> Obj:
    """A model-server container of our image: `modelops serve` of an example artifact, read through a
    hostPath volume mounted at /models (so the mountPath rewriting is exercised too)."""
    return {
        "name": "server",
        "image": IMAGE,
        "args": [
            "serve",
            f"--model-uri=/models/{artifact}",
            "--digest",
            digest(ARTIFACTS / artifact),
            "--name",
            "churn",
            "--version",
            "$(MODEL_VERSION)",
            "--port",
            "8080",
            "--shutdown-delay",
            "0",
            "--shutdown-timeout",
            "1",
        ],
        "env": [{"name": "MODEL_VERSION", "value": version}],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http"}, "periodSeconds": 2},
        "volumeMounts": [{"name": "models", "mountPath": "/models", "readOnly": True}],
        **extra,
    }


def server_pod_spec(**container_extra: Any) -> Obj:
    return {
        "containers": [serve_container(**container_extra)],
        "volumes": [{"name": "models", "hostPath": {"path": str(ARTIFACTS), "type": "Directory"}}],
        "terminationGracePeriodSeconds": 5,
    }


@pytest.fixture
def workloads(apiserver: ServerThread, tmp_path: Path) -> Iterator[Workloads]:
    """A WorkloadRunner for `apiserver` with a short back-off and a 1-second cron minute."""
    state = tmp_path / "state"
    thread = RunnerThread(
        apiserver.url, state, IMAGE, restart_backoff=0.3, cron_minute_seconds=1.0, probe_period=0.2
    ).start()
    try:
        yield Workloads(Api(apiserver.url), thread, state)
    finally:
        pids = thread.runner.pids()
        thread.stop()
        left = [p for p in pids if alive(p)]
        assert not left, f"processes left behind: {left}"


@pytest.fixture
def api(apiserver: ServerThread) -> Api:
    return Api(apiserver.url)
