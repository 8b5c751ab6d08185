"""Fixtures for the performance-monitoring integration tests: the workload runner (CronJob pods as real
processes, one cron minute per second), a prediction log, labels and a ModelVersion with offline metrics."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelops.k8s.resources import MODEL_VERSION
from modelops.sandbox import ServerThread
from modelops.sandbox.cluster import RunnerThread

NS = "default"
IMAGE = "registry.test/modelops:performance-test"
ROWS = 600


@pytest.fixture
def runner(apiserver: ServerThread, tmp_path: Path) -> Iterator[RunnerThread]:
    """Pods of IMAGE run as local processes; a cron minute lasts one second."""
    thread = RunnerThread(
        apiserver.url, tmp_path / "state", IMAGE, restart_backoff=0.3, cron_minute_seconds=1.0, probe_period=0.2
    ).start()
    try:
        yield thread
    finally:
        thread.stop()


def prediction_log(directory: Path, now: datetime) -> tuple[Path, np.ndarray]:
    """The model server's prediction log (JSONL, its row schema): ROWS predictions over the last 10
    minutes, with probabilities; returns the directory and the predicted classes."""
    directory.mkdir()
    rng = np.random.default_rng(3)
    x = rng.normal(size=(ROWS, 2))
    p1 = 1 / (1 + np.exp(-2 * x[:, 0]))
    pred = (p1 > 0.5).astype(int)
    rows = [
        {
            "timestamp": (now - timedelta(seconds=(ROWS - i))).isoformat().replace("+00:00", "Z"),
            "model": "churn",
            "version": "1",
            "track": "stable",
            "replica": "churn-0-w0",
            "request_id": f"req-{i:05d}",
            "inputs": {"tenure": float(x[i, 0]), "charges": float(x[i, 1])},
            "outputs": {"predict": int(pred[i]), "predict_proba_0": float(1 - p1[i]), "predict_proba_1": float(p1[i])},
        }
        for i in range(ROWS)
    ]
    (directory / "predictions-0001.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return directory, pred


def reference_csv(path: Path) -> Path:
    """Training data of the same distribution as the log's inputs: no data drift."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(ROWS, 2))
    path.write_text("tenure,charges\n" + "".join(f"{a:.5f},{b:.5f}\n" for a, b in x))
    return path


def labels_csv(path: Path, pred: np.ndarray, wrong_share: float, seed: int) -> Path:
    """Ground truth for 90% of the predictions, wrong for `wrong_share` of them."""
    rng = np.random.default_rng(seed)
    wrong = rng.random(pred.size) < wrong_share
    truth = np.where(wrong, 1 - pred, pred)
    rows = [f"req-{i:05d},{truth[i]}\n" for i in range(pred.size) if i % 10]
    path.write_text("request_id,label\n" + "".join(rows))
    return path


def monitor(name: str, log: Path, reference: Path, labels: Path) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": name},
        "spec": {
            "target": {"modelVersion": "churn-v1"},
            "schedule": "* * * * *",
            "image": IMAGE,
            "reference": {"uri": str(reference)},
            "current": {"source": "predictionLog", "uri": str(log), "window": "1h", "minRows": 50},
            "performance": {
                "labels": {"uri": str(labels)},
                "task": "binary",
                "window": "1h",
                "minCoverage": 0.5,
                "minLabels": 100,
                "metrics": [{"name": "accuracy", "maxRelativeDrop": 0.1}, {"name": "auc"}],
            },
            "policy": {"action": "retrain", "consecutiveChecks": 2, "cooldown": "1h"},
            "jobTemplate": {
                "spec": {"template": {"spec": {"containers": [{"name": "train", "image": IMAGE, "command": ["true"]}]}}}
            },
        },
    }


@pytest.fixture
def model_version(custom_objects: Any, tmp_path: Path) -> None:
    """churn-v1, registered with an offline accuracy of 0.95 (the relative threshold's base)."""
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
                "metrics": {"accuracy": 0.95, "auc": 0.97},
            },
        },
    )
