"""Run `modelops run` as a real process (so a test can SIGKILL it at any moment)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_operator(
    kubeconfig: str,
    log: Path,
    namespace: str | None = "default",
    health_port: int | None = None,
    metrics_port: int | None = None,
    extra: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """``namespace=None`` runs cluster-wide (``--all-namespaces``); ``extra``: more `modelops run` flags."""
    scope = ["--namespace", namespace] if namespace else ["--all-namespaces"]
    ports = ["--health-port", str(health_port or free_port()), "--metrics-port", str(metrics_port or free_port())]
    cmd = [sys.executable, "-m", "modelops.cli", "run", *scope, "--kubeconfig", kubeconfig, "--host", "127.0.0.1"]
    cmd.append("--allow-file-artifacts")  # the tests register file:// artifacts, as the sandbox allows
    return subprocess.Popen([*cmd, *ports, *extra], stdout=log.open("ab"), stderr=subprocess.STDOUT, env={**os.environ})


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no cleanup, no flush, exactly like a node dying."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
