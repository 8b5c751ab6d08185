"""A DriftMonitor reading the model server's prediction log counts only rows inside its window."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from modelops.k8s.resources import DRIFT_MONITOR
from tests.integration.drift.conftest import NS, run_check


@pytest.mark.usefixtures("operator", "model_version")
def test_only_rows_in_the_window_are_checked(custom_objects, kubeconfig, tmp_path):
    rng = np.random.default_rng(7)
    ref = tmp_path / "ref.csv"
    ref.write_text("tenure,calls\n" + "\n".join(f"{rng.normal(24, 6):.3f},{rng.poisson(2)}" for _ in range(600)))
    logdir = tmp_path / "predlog"
    logdir.mkdir()
    now = dt.datetime.now(dt.UTC)

    def rows(when: dt.datetime, shift: float, n: int) -> str:
        return (
            "\n".join(
                json.dumps(
                    {
                        "timestamp": (when - dt.timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
                        "model": "churn",
                        "version": "1",
                        "track": "stable",
                        "request_id": str(i),
                        "inputs": {"tenure": float(rng.normal(24 + shift, 6)), "calls": float(rng.poisson(2 + shift))},
                        "outputs": {"predict": 1},
                    }
                )
                for i in range(n)
            )
            + "\n"
        )

    (logdir / "w0-old.jsonl").write_text(rows(now - dt.timedelta(days=3), shift=20, n=400))  # outside 24h
    (logdir / "w0-new.jsonl").write_text(rows(now - dt.timedelta(minutes=5), shift=0, n=300))
    custom_objects.create(
        DRIFT_MONITOR,
        NS,
        {
            "apiVersion": "modelops.dev/v1alpha1",
            "kind": "DriftMonitor",
            "metadata": {"name": "churn-drift"},
            "spec": {
                "target": {"modelVersion": "churn-v1"},
                "schedule": "@hourly",
                "reference": {"uri": str(ref)},
                "current": {"source": "predictionLog", "uri": str(logdir), "window": "24h", "minRows": 100},
                "policy": {"action": "alert"},
            },
        },
    )
    done = run_check(kubeconfig)
    assert done.returncode == 0, done.stderr
    st = custom_objects.get(DRIFT_MONITOR, NS, "churn-drift")["status"]
    features = {f["name"]: f for f in st["lastResult"]["features"]}
    assert set(features) == {"tenure", "calls"}
    assert {f["nCurrent"] for f in features.values()} == {300}
    assert st["lastResult"]["datasetDrift"] is False

    # A window with too few rows is bad data, not "no drift".
    custom_objects.patch(DRIFT_MONITOR, NS, "churn-drift", {"spec": {"current": {"window": "1m"}}})
    assert run_check(kubeconfig).returncode == 0
    st = custom_objects.get(DRIFT_MONITOR, NS, "churn-drift")["status"]
    cond = next(c for c in st["conditions"] if c["type"] == "CheckSucceeded")
    assert (cond["status"], st["phase"]) == ("False", "Error")
    assert cond["reason"] == "EmptyData"
