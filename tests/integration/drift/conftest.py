"""Fixtures and helpers shared by the DriftMonitor integration tests."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelops.k8s.resources import MODEL_VERSION

NS = "default"
Obj = dict[str, Any]


def write_csv(path: Path, shift: float, rows: int = 800, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    cols = {
        "tenure": rng.normal(24 + shift * 10, 6, rows),
        "charges": rng.normal(70, 15, rows),
        "calls": rng.poisson(2 + shift * 3, rows).astype(float),
        "plan": rng.choice(["basic", "plus", "pro"], rows, p=[0.5, 0.3, 0.2] if not shift else [0.1, 0.2, 0.7]),
    }
    lines = [",".join(cols)] + [",".join(str(cols[c][i]) for c in cols) for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def monitor(reference: Path, current: Path, action: str = "retrain", consecutive: int = 1) -> Obj:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": "churn-drift"},
        "spec": {
            "target": {"modelVersion": "churn-v1"},
            "schedule": "*/30 * * * *",
            "reference": {"uri": str(reference)},
            "current": {"source": "uri", "uri": str(current), "minRows": 50},
            "columnMapping": {"categorical": ["plan"]},
            "policy": {"action": action, "consecutiveChecks": consecutive, "cooldown": "1h"},
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {"containers": [{"name": "train", "image": "trainer:1", "command": ["train.sh"]}]}
                    }
                }
            },
        },
    }


def wait(fn: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


def run_check(kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    """What the CronJob's pod runs, as a plain process: quick, for tests about the check itself
    (test_check_rbac.py also runs it as Job pods under the sandbox's workload runner)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "modelops.cli",
            "drift",
            "check",
            "--monitor",
            f"{NS}/churn-drift",
            "--kubeconfig",
            str(kubeconfig),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )


@pytest.fixture
def model_version(custom_objects, tmp_path) -> None:
    art = tmp_path / "m.joblib"
    art.write_bytes(b"m")
    custom_objects.create(
        MODEL_VERSION,
        NS,
        {
            "apiVersion": "modelops.dev/v1alpha1",
            "kind": "ModelVersion",
            "metadata": {"name": "churn-v1"},
            "spec": {
                "modelName": "churn",
                "version": "1",
                "artifact": {"uri": art.as_uri(), "digest": "sha256:" + hashlib.sha256(b"m").hexdigest()},
            },
        },
    )
