"""Fixtures for the sandbox Kubernetes API server (`modelops.sandbox`), with the repo's CRDs preloaded.

`apiserver` is function-scoped: every test gets an empty cluster (plus the default namespaces).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import config
from kubernetes.client import ApiClient

from modelops.sandbox import ServerThread
from modelops.sandbox.cluster.gateway import GATEWAY_API_CRDS

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"


@pytest.fixture
def apiserver() -> Iterator[ServerThread]:
    """A started sandbox API server (own thread and loop), crds/ and Gateway API CRDs preloaded as `sandbox up` does."""
    server = ServerThread(port=0, crds=[CRDS, GATEWAY_API_CRDS], bookmark_interval=1.0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kubeconfig(apiserver: ServerThread, tmp_path: Path) -> Path:
    """Path of a kubeconfig (context `sandbox`, namespace `default`) for `apiserver`."""
    return apiserver.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def k8s_api_client(kubeconfig: Path) -> Iterator[ApiClient]:
    """A `kubernetes.client.ApiClient` configured for `apiserver`."""
    client: ApiClient = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    try:
        yield client
    finally:
        client.close()  # type: ignore[no-untyped-call]
