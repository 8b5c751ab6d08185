"""DriftMonitor end to end: the operator owns the CronJob and its RBAC; the check command (what the
CronJob's pod runs) writes the result; the operator debounces and creates the retraining Job."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kubernetes import client

from modelops.k8s.client import load_api_client
from modelops.k8s.resources import DRIFT_MONITOR, MODEL_VERSION, CustomObjects
from modelops.runner import OperatorConfig, OperatorThread
from modelops.telemetry import DRIFT_DETECTED, DRIFT_SCORE

NS = "default"
Obj = dict[str, Any]


@pytest.fixture
def api(kubeconfig) -> CustomObjects:
    return CustomObjects(load_api_client(str(kubeconfig)))


@pytest.fixture
def operator(kubeconfig) -> Iterator[OperatorThread]:
    cfg = OperatorConfig(namespaces=[NS], kubeconfig=str(kubeconfig), health_port=None, metrics_port=None)
    with OperatorThread(cfg) as op:
        yield op


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
    """What the CronJob's pod runs (there is no kubelet here to run it)."""
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
def model_version(api, tmp_path) -> None:
    import hashlib

    art = tmp_path / "m.joblib"
    art.write_bytes(b"m")
    api.create(
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


@pytest.mark.usefixtures("operator", "model_version")
def test_children_are_created_with_least_privilege(api, kubeconfig, tmp_path):
    ref = write_csv(tmp_path / "ref.csv", 0)
    api.create(DRIFT_MONITOR, NS, monitor(ref, ref))
    ac = load_api_client(str(kubeconfig))
    batch, rbac = client.BatchV1Api(ac), client.RbacAuthorizationV1Api(ac)
    cj = wait(lambda: [c for c in batch.list_namespaced_cron_job(NS).items], "the CronJob")[0]
    assert cj.spec.schedule == "*/30 * * * *"
    assert cj.spec.concurrency_policy == "Forbid"
    assert cj.spec.starting_deadline_seconds > 0
    container = cj.spec.job_template.spec.template.spec.containers[0]
    assert container.command[-2:] == ["--monitor", f"{NS}/churn-drift"]
    assert container.security_context.read_only_root_filesystem is True
    assert cj.metadata.owner_references[0].kind == "DriftMonitor"
    role = rbac.list_namespaced_role(NS).items[0]
    status_rule = next(r for r in role.rules if r.resources == ["driftmonitors/status"])
    assert status_rule.verbs == ["get", "patch"]
    assert status_rule.resource_names == ["churn-drift"]
    assert all("*" not in r.verbs and "*" not in r.resources for r in role.rules)
    obj = wait(
        lambda: (
            (api.get(DRIFT_MONITOR, NS, "churn-drift").get("status") or {}).get("resolvedReference")
            and api.get(DRIFT_MONITOR, NS, "churn-drift")
        ),
        "status",
    )
    assert obj["status"]["phase"] == "Pending"

    # A spec change updates the CronJob.
    api.patch(DRIFT_MONITOR, NS, "churn-drift", {"spec": {"schedule": "0 * * * *"}})
    wait(lambda: batch.read_namespaced_cron_job(cj.metadata.name, NS).spec.schedule == "0 * * * *", "CronJob update")


@pytest.mark.usefixtures("operator", "model_version")
def test_shifted_data_detects_drift_and_creates_one_retraining_job(api, kubeconfig, tmp_path):
    ref = write_csv(tmp_path / "ref.csv", 0, seed=1)
    cur = write_csv(tmp_path / "cur.csv", 1.0, seed=2)
    api.create(DRIFT_MONITOR, NS, monitor(ref, cur))
    wait(lambda: (api.get(DRIFT_MONITOR, NS, "churn-drift").get("status") or {}).get("resolvedReference"), "ready")

    done = run_check(kubeconfig)
    assert done.returncode == 0, done.stderr
    obj = wait(lambda: (o := api.get(DRIFT_MONITOR, NS, "churn-drift"))["status"].get("activeJob") and o, "retrain")
    st = obj["status"]
    assert st["lastResult"]["datasetDrift"] is True
    drifted = {f["name"] for f in st["lastResult"]["features"] if f["drifted"]}
    assert {"tenure", "calls", "plan"} <= drifted
    assert "charges" not in drifted
    assert st["phase"] == "Drifted"
    ac = load_api_client(str(kubeconfig))
    jobs = client.BatchV1Api(ac).list_namespaced_job(NS).items
    assert [j.metadata.name for j in jobs] == [st["activeJob"]["name"]]
    env = {e.name: e.value for e in jobs[0].spec.template.spec.containers[0].env}
    assert env["MODEL_NAME"] == "churn"
    assert env["MODEL_VERSION"] == "1"
    assert env["REFERENCE_URI"] == str(ref)
    assert '"datasetDrift":true' in env["DRIFT_REPORT"]
    assert any(h["event"] == "RetrainTriggered" for h in st["history"])
    reasons = {
        e.reason
        for e in client.CoreV1Api(ac).list_namespaced_event(NS, field_selector="involvedObject.name=churn-drift").items
    }
    assert {"DriftDetected", "RetrainTriggered"} <= reasons

    # Metrics from status.
    wait(
        lambda: any(
            s.labels.get("monitor") == "churn-drift" and s.value == 1
            for m in DRIFT_DETECTED.collect()
            for s in m.samples
        ),
        "drift metric",
    )
    scored = {
        s.labels["feature"] for m in DRIFT_SCORE.collect() for s in m.samples if s.labels["monitor"] == "churn-drift"
    }
    assert {"tenure", "charges", "calls", "plan"} <= scored

    # A second drifted check inside the cooldown: no second Job.
    assert run_check(kubeconfig).returncode == 0
    wait(lambda: api.get(DRIFT_MONITOR, NS, "churn-drift")["status"].get("consecutiveDrifted") == 2, "2nd check")
    assert len(client.BatchV1Api(ac).list_namespaced_job(NS).items) == 1


@pytest.mark.usefixtures("operator", "model_version")
def test_missing_column_is_an_error_status_not_no_drift(api, kubeconfig, tmp_path):
    ref = write_csv(tmp_path / "ref.csv", 0)
    cur = tmp_path / "cur.csv"
    cur.write_text("tenure,charges\n1,2\n" * 1)
    api.create(DRIFT_MONITOR, NS, monitor(ref, cur))
    wait(lambda: (api.get(DRIFT_MONITOR, NS, "churn-drift").get("status") or {}).get("resolvedReference"), "ready")
    done = run_check(kubeconfig)
    assert done.returncode == 0, done.stderr
    st = api.get(DRIFT_MONITOR, NS, "churn-drift")["status"]
    assert st["phase"] == "Error"
    cond = next(c for c in st["conditions"] if c["type"] == "CheckSucceeded")
    assert cond["status"] == "False"
    assert cond["reason"] in ("MissingColumns", "EmptyData")
    assert "lastResult" not in st
    ac = load_api_client(str(kubeconfig))
    events = client.CoreV1Api(ac).list_namespaced_event(NS, field_selector="involvedObject.name=churn-drift").items
    failed = [e for e in events if e.reason == "DriftCheckFailed"]
    assert failed
    assert failed[0].type == "Warning"


def test_check_exits_non_zero_when_the_api_is_unreachable(tmp_path):
    import socket

    from tests.support.faultproxy import kubeconfig_for

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = run_check(Path(kubeconfig_for(f"http://127.0.0.1:{port}", str(tmp_path / "kc"))))
    assert done.returncode != 0
    assert "cannot reach the Kubernetes API" in done.stderr
    assert "Traceback" not in done.stderr
