"""Helpers for tests that run `modelops` as a user does: a separate process, its exit code and stderr."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def modelops(*args: str | Path, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`modelops ARGS` as a process (``python -m modelops.cli``, the console script's code)."""
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "modelops.cli", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line on stderr (and never a traceback)."""
    lines = result.stderr.splitlines()
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else is listening on (all interfaces, as the servers bind by default)."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def mv_yaml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/artifacts/churn-v1.joblib registered with --dry-run, as the README does."""
    path = tmp_path_factory.mktemp("mv") / "mv.yaml"
    result = modelops(
        "registry", "register", EXAMPLES / "artifacts" / "churn-v1.joblib", "--name", "churn", "--version", "1",
        "--dry-run",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    path.write_text(result.stdout)
    return path
