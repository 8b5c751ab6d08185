"""The end-to-end suite on a real Kubernetes cluster: kind (pinned node image), the project's image
built from the Dockerfile and loaded into it, the operator installed by Helm (the real Helm v4
engine, helm-python-sdk) or by `kubectl apply`.

It runs only when asked, `python3 -m pytest -m e2e`, and only where Docker works: otherwise every
test of tests/e2e is skipped at collection, all with one reason (the CI skip guard,
tests/support/skipguard.py, allows skips of tests marked `e2e`). docs/testing.md says what it
needs and how long it takes. It has never run on the machines this project is developed on (no
Docker engine there).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
E2E_DIR = Path(__file__).resolve().parent

KIND_VERSION = "v0.29.0"
NODE_IMAGE = "kindest/node:v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f"
"""kind v0.29.0's default node image (Kubernetes 1.33.1), pinned by digest as kind's release notes ask."""
KUBECTL_VERSION = "v1.33.1"
CLUSTER = "modelops-e2e"
IMAGE = "modelops:e2e"
"""The image built from the Dockerfile and loaded into kind (never pulled: imagePullPolicy Never/IfNotPresent)."""

NOT_ASKED = (
    "the end-to-end suite runs only when asked: python3 -m pytest -m e2e (a kind cluster, ~15 min; docs/testing.md)"
)


def docker_problem() -> str | None:
    """Why Docker cannot run kind here (None: it can)."""
    docker = shutil.which("docker")
    if docker is None:
        return "no Docker: the `docker` command is not installed (kind runs its nodes as Docker containers)"
    try:
        subprocess.run([docker, "info"], capture_output=True, check=True, timeout=30)
    except subprocess.CalledProcessError as exc:
        first = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        return f"no Docker: `docker info` failed ({first[-1] if first else f'exit {exc.returncode}'})"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no Docker: `docker info` failed ({exc})"
    return None


def _missing_plugin() -> str | None:
    if importlib.util.find_spec("pytest_kind") is None:
        return "pytest-kind is not installed: pip install -e '.[dev]'"
    return None


def _asked(config: pytest.Config) -> bool:
    expr = str(config.getoption("markexpr") or "")
    return "e2e" in expr and "not e2e" not in expr


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [item for item in items if Path(str(item.path)).resolve().is_relative_to(E2E_DIR)]
    if not ours:
        return
    reason = NOT_ASKED if not _asked(config) else (docker_problem() or _missing_plugin())
    if reason is None:
        return
    for item in ours:
        item.add_marker(pytest.mark.skip(reason=reason))


# -- the cluster -----------------------------------------------------------------------------


def _run(*cmd: str, cwd: Path = ROOT, timeout: float = 1800) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, timeout=timeout).stdout


@pytest.fixture(scope="session")
def kind_cluster(request: pytest.FixtureRequest) -> Iterator[object]:
    """A kind cluster with the pinned node image (pytest-kind's KindCluster; kind from $KIND or
    PATH, else pytest-kind downloads kind KIND_VERSION). Deleted at the end unless --keep-cluster."""
    import pytest_kind.cluster as pk

    pk.KIND_VERSION, pk.KUBECTL_VERSION = KIND_VERSION, KUBECTL_VERSION
    kind = os.environ.get("KIND") or shutil.which("kind")
    kubectl = os.environ.get("KUBECTL") or shutil.which("kubectl")
    cluster = pk.KindCluster(
        CLUSTER,
        image=NODE_IMAGE,
        kind_path=Path(kind) if kind else None,
        kubectl_path=Path(kubectl) if kubectl else None,
    )
    cluster.create()
    try:
        yield cluster
    finally:
        if not request.config.getoption("keep_cluster", default=False):
            cluster.delete()


@pytest.fixture(scope="session")
def image(kind_cluster: object) -> str:
    """The project's image, built from the Dockerfile and loaded into the kind nodes."""
    docker = shutil.which("docker") or "docker"
    _run(docker, "build", "-t", IMAGE, ".")
    kind_cluster.load_docker_image(IMAGE)  # type: ignore[attr-defined]
    return IMAGE


@pytest.fixture(scope="session")
def kubeconfig(kind_cluster: object) -> Path:
    return Path(kind_cluster.kubeconfig_path)  # type: ignore[attr-defined]
