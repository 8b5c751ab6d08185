"""Drift to a registered version, all real processes: the DriftMonitor's CronJob runs the check as a pod,
two drifted checks create the retraining Job, whose pod runs `python -m modelops.examples.retrain` on
the prediction log under the retraining ServiceAccount (through the sandbox's RBAC), registers the next
ModelVersion with lineage to the parent, and the monitor's history links check, Job and version.

The manifest is examples/retrain/churn-drift-retrain.yaml itself, only the target pinned to a
ModelVersion (no ModelDeployment here), the schedule every (1-second) cron minute, one drifted
check enough and a window that holds the log written at the start."""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

from modelops import cli
from modelops.k8s.resources import DRIFT_MONITOR, MODEL_VERSION
from modelops.sandbox import ServerThread
from modelops.sandbox.cluster import RunnerThread
from tests.integration.drift.conftest import NS, wait

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
IMAGE = "registry.test/modelops:retrain-test"
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "contract_length"]
BATCH = f"/apis/batch/v1/namespaces/{NS}"
ROWS = 1000  # logged over the 50 s before the test starts


def prediction_log(directory: Path, now: datetime) -> Path:
    """The model server's prediction log (JSONL, its row schema) after the clients shifted: shorter
    tenure, more support calls, in the standardised units of examples/retrain/reference.csv."""
    directory.mkdir()
    rng = np.random.default_rng(5)
    x = rng.normal(size=(ROWS, len(FEATURES))) + np.array([-1.0, 0.0, 1.0, 0.0])
    lines = [
        json.dumps(
            {
                "timestamp": (now - timedelta(seconds=(ROWS - i) / 20)).isoformat().replace("+00:00", "Z"),
                "model": "churn",
                "version": "2",
                "track": "stable",
                "replica": "churn-0-w0",
                "request_id": f"r{i}",
                "inputs": dict(zip(FEATURES, map(float, row), strict=True)),
                "outputs": {"predict": 0},
            }
        )
        for i, row in enumerate(x)
    ]
    (directory / "predictions-0001.jsonl").write_text("\n".join(lines) + "\n")
    return directory


def manifest(log: Path, models: Path) -> dict[str, Any]:
    text = (EXAMPLES / "retrain" / "churn-drift-retrain.yaml").read_text()
    filled = string.Template(text).safe_substitute(
        MODELOPS_EXAMPLES=str(EXAMPLES),
        MODELOPS_IMAGE=IMAGE,
        MODELOPS_PREDICTION_LOG=log.as_uri(),
        MODELOPS_MODELS_DIR=str(models),
    )
    obj: dict[str, Any] = yaml.safe_load(filled)
    assert "${" not in json.dumps(obj)  # every variable the manifest uses is filled
    obj["spec"]["target"] = {"modelVersion": "churn-v2"}
    obj["spec"]["schedule"] = "* * * * *"
    obj["spec"]["policy"]["consecutiveChecks"] = 1  # the debounce has its own tests; a check costs seconds
    obj["spec"]["current"]["window"] = "10m"  # the log is written once, before the first check
    obj["spec"]["image"] = IMAGE  # the check's image: the one the sandbox runs
    return obj


@pytest.fixture
def runner(apiserver: ServerThread, tmp_path: Path) -> Iterator[RunnerThread]:
    """The workload runner: pods of IMAGE as processes; a cron minute lasts one second."""
    thread = RunnerThread(
        apiserver.url, tmp_path / "state", IMAGE, restart_backoff=0.3, cron_minute_seconds=1.0, probe_period=0.2
    ).start()
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture
def http(apiserver: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=apiserver.url, timeout=10) as c:
        yield c


def pod_logs(state: Path) -> str:
    """The end of every pod's output, for a failure message."""
    logs = sorted((state / "pods").glob("*/*/*.log"))
    return "\n".join(f"--- {p.parent.name}/{p.name}:\n" + "\n".join(p.read_text().splitlines()[-15:]) for p in logs)


def within(state: Path, fn: Any, what: str, timeout: float) -> Any:
    """``wait`` with the pods' output in the failure: the steps here are processes importing
    scikit-learn and SciPy, seconds each on a loaded machine (timeouts bound liveness only)."""
    try:
        return wait(fn, what, timeout=timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{pod_logs(state)}") from None


def parent(custom_objects: Any) -> None:
    text = (EXAMPLES / "registry" / "churn-v2.yaml").read_text()
    obj = yaml.safe_load(string.Template(text).substitute(MODELOPS_EXAMPLES=str(EXAMPLES)))
    custom_objects.create(MODEL_VERSION, NS, obj)


def history(custom_objects: Any) -> list[dict[str, Any]]:
    return list((custom_objects.get(DRIFT_MONITOR, NS, "churn-drift").get("status") or {}).get("history") or [])


@pytest.mark.usefixtures("operator")
def test_drift_retrains_and_registers_the_next_version_with_lineage(
    custom_objects, runner, http, tmp_path, kubeconfig, capsys
):
    models = tmp_path / "models"
    parent(custom_objects)
    custom_objects.create(DRIFT_MONITOR, NS, manifest(prediction_log(tmp_path / "log", datetime.now(UTC)), models))

    # A drifted check (a CronJob pod), then the retraining Job; no more checks after that.
    state = tmp_path / "state"
    status = within(
        state,
        lambda: (s := custom_objects.get(DRIFT_MONITOR, NS, "churn-drift").get("status") or {}).get("activeJob") and s,
        "the retraining Job",
        timeout=120,
    )
    custom_objects.patch(DRIFT_MONITOR, NS, "churn-drift", {"spec": {"suspend": True}})
    job_name = status["activeJob"]["name"]
    assert status["activeJob"]["parentVersion"] == "churn-v2"
    assert status["activeJob"]["nextVersion"] == "3"
    check_time = status["activeJob"]["checkTime"]

    # The Job runs the example script as the retraining ServiceAccount and registers churn-v3.
    mv = within(
        state,
        lambda: custom_objects.list(MODEL_VERSION, NS, label_selector="modelops.dev/retrained-by"),
        "churn-v3",
        timeout=120,
    )[0]
    assert mv["metadata"]["name"] == "churn-v3"
    assert mv["metadata"]["labels"] == {
        "modelops.dev/model": "churn",
        "modelops.dev/retrained-by": "churn-drift",
        "modelops.dev/retrain-job": job_name,
    }
    spec = mv["spec"]
    assert (spec["modelName"], spec["version"]) == ("churn", "3")
    out = models / "churn-v3"
    assert spec["artifact"] == {
        "uri": (out / "model.joblib").as_uri(),
        "digest": "sha256:" + hashlib.sha256((out / "model.joblib").read_bytes()).hexdigest(),
        "format": "joblib",
    }
    lineage = spec["lineage"]
    assert lineage["parentVersion"] == "churn-v2"
    assert lineage["dataset"] == {
        "uri": (out / "dataset.csv").as_uri(),
        "digest": "sha256:" + hashlib.sha256((out / "dataset.csv").read_bytes()).hexdigest(),
    }
    assert lineage["driftReport"] == {
        "monitor": "churn-drift",
        "checkTime": check_time,
        "uri": (out / "drift-report.json").as_uri(),
    }
    assert json.loads((out / "drift-report.json").read_text())["datasetDrift"] is True
    assert lineage["codeCommit"] == "example"
    assert lineage["trainingRun"] == f"job/{job_name}"
    assert set(spec["metrics"]) == {"auc", "accuracy"}
    assert spec["metrics"]["auc"] > 0.85  # the simulated rule is learnable: a broken fit scores ~0.5
    assert spec["params"]["labels"] == "simulated"
    assert spec["referenceProfile"] == (out / "reference.csv").as_uri()

    # The monitor links check, Job and version, and records the Job's success.
    final = within(
        state,
        lambda: (s := custom_objects.get(DRIFT_MONITOR, NS, "churn-drift")["status"]).get("lastRetrain") and s,
        "the Job's outcome",
        timeout=60,
    )
    assert final["lastRetrain"]["outcome"] == "Succeeded"
    assert final["lastRetrain"]["registeredVersion"] == "churn-v3"
    assert "activeJob" not in final
    entries = [h for h in final["history"] if h.get("job") == job_name or h.get("checkTime") == check_time]
    assert [h["event"] for h in entries] == [
        "DriftDetected",
        "RetrainTriggered",
        "RetrainedVersionRegistered",
        "RetrainSucceeded",
    ]
    assert (entries[2]["from"], entries[2]["to"]) == ("churn-v2", "churn-v3")
    assert entries[1]["to"] == "churn-v3"  # planned when the Job was created

    # The pod ran as the retraining ServiceAccount: it may create ModelVersions but not change one.
    job = http.get(f"{BATCH}/jobs/{job_name}").json()
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "churn-drift-retrain"
    r = http.post(f"/api/v1/namespaces/{NS}/serviceaccounts/churn-drift-retrain/token", json={"spec": {}})
    as_job = {"Authorization": f"Bearer {r.json()['status']['token']}"}
    mv_url = f"/apis/modelops.dev/v1alpha1/namespaces/{NS}/modelversions/churn-v3"
    assert http.get(mv_url, headers=as_job).status_code == 200
    patched = http.patch(
        mv_url,
        json={"spec": {"stage": "Production"}},
        headers={**as_job, "Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 403
    assert http.get(f"/apis/modelops.dev/v1alpha1/namespaces/{NS}/driftmonitors", headers=as_job).status_code == 403

    # The operator verifies the retrained artifact like any other.
    wait(
        lambda: (custom_objects.get(MODEL_VERSION, NS, "churn-v3").get("status") or {}).get("phase") == "Verified",
        "churn-v3 verified",
        timeout=60,
    )

    # `modelops registry lineage` walks it back to the parent, naming the run and the drift check.
    capsys.readouterr()
    assert cli.main(["registry", "lineage", "churn-v3", "--kubeconfig", str(kubeconfig)]) == 0
    first, second, *_ = capsys.readouterr().out.splitlines()
    assert first.startswith("churn-v3: churn 3 [")
    assert f"run=job/{job_name}" in first
    assert f"drift=churn-drift@{check_time}" in first
    assert second.startswith("  churn-v2: churn 2 [")
