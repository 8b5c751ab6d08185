"""Helpers for `modelops rollout` against the sandbox API server, run as real processes.

ModelDeployments get a hand-written status through the status subresource (as the operator would
write it), so these tests do not depend on the reconciler.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from modelops.k8s.client import load_api_client
from modelops.k8s.resources import MODEL_DEPLOYMENT, MODEL_VERSION, CustomObjects

Obj = dict[str, Any]

STEPS: list[Obj] = [
    {"setWeight": 20},
    {"pause": {}},
    {"analysis": {"metrics": [{"name": "errors", "kind": "errorRate", "max": 0.01, "count": 3}]}},
    {"setWeight": 60},
]

PROGRESSING: Obj = {
    "phase": "Progressing",
    "observedGeneration": 1,
    "stableVersion": "churn-v1",
    "canaryVersion": "churn-v2",
    "currentStepIndex": 0,
    "canaryWeight": 20,
    "message": "canary at 20%",
    "tracks": {
        "stable": {"version": "churn-v1", "replicas": 3, "readyReplicas": 3},
        "canary": {"version": "churn-v2", "replicas": 1, "readyReplicas": 1},
    },
}


def run_cli(kubeconfig: Path | str | None, *argv: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """`python -m modelops.cli rollout ARGV --kubeconfig K`, as a user would run it."""
    extra = ["--kubeconfig", str(kubeconfig)] if kubeconfig is not None else []
    return subprocess.run(
        [sys.executable, "-m", "modelops.cli", "rollout", *argv, *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def objects(kubeconfig: Path) -> CustomObjects:
    return CustomObjects(load_api_client(str(kubeconfig)))


def model_deployment(name: str = "churn", model: Obj | None = None, steps: list[Obj] | None = None) -> Obj:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": model or {"versionRef": "churn-v2"},
            "replicas": 3,
            "strategy": {"canary": {"steps": steps or STEPS}},
        },
    }


def create_with_status(api: CustomObjects, body: Obj, status: Obj, namespace: str = "default") -> Obj:
    """Create the object, then write ``status`` through /status (create drops status)."""
    api.create(MODEL_DEPLOYMENT, namespace, body)
    if status:
        return api.patch_status(MODEL_DEPLOYMENT, namespace, body["metadata"]["name"], status)
    return api.get(MODEL_DEPLOYMENT, namespace, body["metadata"]["name"])


def create_version(api: CustomObjects, name: str, version: str, phase: str = "Verified") -> Obj:
    api.create(
        MODEL_VERSION,
        "default",
        {
            "apiVersion": "modelops.dev/v1alpha1",
            "kind": "ModelVersion",
            "metadata": {"name": name},
            "spec": {
                "modelName": "churn",
                "version": version,
                "artifact": {"uri": f"file:///models/{name}.joblib", "digest": "sha256:" + "ab" * 32},
            },
        },
    )
    return api.patch_status(MODEL_VERSION, "default", name, {"phase": phase})


class InterleavingProxy:
    """An HTTP proxy in front of the API server that runs ``before_first_status_patch`` once, just
    before forwarding the first PATCH to a /status URL: another writer wins the race, for real."""

    def __init__(self, upstream: str, before_first_status_patch: Callable[[], None]) -> None:
        self.upstream = urlsplit(upstream)
        self.hook: Callable[[], None] | None = before_first_status_patch
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status answered)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.command == "PATCH" and self.path.split("?")[0].endswith("/status") and proxy.hook:
                    hook, proxy.hook = proxy.hook, None
                    hook()
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=10)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                proxy.requests.append((self.command, self.path.split("?")[0], resp.status))
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_PATCH = do_POST = do_PUT = do_DELETE = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> InterleavingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def plugin_path(tmp_path: Path) -> Path:
    """A directory holding `kubectl-modelops`, the same shim pip writes for the console script."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "kubectl-modelops"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nfrom modelops.cli import kubectl_main\nsys.exit(kubectl_main())\n"
    )
    script.chmod(0o755)
    return bindir
