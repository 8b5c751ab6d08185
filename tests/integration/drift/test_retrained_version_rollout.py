"""A retraining Job's registered version rolls out with no human edit when the model's ModelPolicy allows
it, and waits for a person's approval when the policy requires one.

The operator runs in-process against the fake API server; the Deployment controller is played by
the rollout tests' FakeDeploymentController (pods "ready" at once). The drift check runs as the
CronJob's pod would (`run_monitor_check`), and the retraining Job's pod is played by what it ends
with: `modelops registry register` with exactly the environment the operator gave the Job (the
script that trains before it, and the Job as a real process, are covered by test_retrain_loop.py).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from modelops.cli import main
from modelops.demo.traffic import FEATURE_NAMES, SHIFT, customer_rows
from modelops.k8s.drift_check import run_monitor_check
from modelops.k8s.resources import DRIFT_MONITOR, MODEL_DEPLOYMENT, MODEL_POLICY, MODEL_VERSION, CustomObjects
from tests.integration.drift.conftest import NS, wait
from tests.integration.rollout.conftest import FakeDeploymentController

pytestmark = pytest.mark.usefixtures("operator")

Obj = dict[str, Any]
AUC_GATE = [{"metric": "auc", "op": ">=", "value": 0.85}]
ALLOWS = {"autoPromoteToProduction": True, "productionApproval": "Waived"}
REQUIRES_APPROVAL = {"autoPromoteToStaging": True, "productionApproval": "Required"}
APPROVAL = {"approvedBy": "alice@example.com", "approvedAt": "2026-11-01T00:00:00Z", "reason": "offline eval"}


@pytest.fixture
def controller(kubeconfig: Path) -> Iterator[FakeDeploymentController]:
    from modelops.k8s.client import load_api_client

    c = FakeDeploymentController(client.AppsV1Api(load_api_client(str(kubeconfig)))).start()
    yield c
    c.stop()


def csv(path: Path, seed: int, shift: dict[str, float] | None = None, rows: int = 400) -> Path:
    """Customers as the demo's clients send them (4 standardised features), optionally shifted."""
    values = customer_rows(random.Random(seed), rows, shift)
    lines = [",".join(FEATURE_NAMES)] + [",".join(map(str, values[i : i + 4])) for i in range(0, len(values), 4)]
    path.write_text("\n".join(lines) + "\n")
    return path


def artifact(tmp_path: Path, name: str) -> tuple[Path, str]:
    path = tmp_path / f"{name}.joblib"
    path.write_bytes(f"model {name}".encode())
    return path, "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def status(obj: Obj) -> Obj:
    out: Obj = obj.get("status") or {}
    return out


def get_status(api: CustomObjects, kind: Any, name: str) -> Obj:
    return status(api.get(kind, NS, name))


def serving(api: CustomObjects, version: str, timeout: float = 30) -> Obj:
    """The ModelDeployment once Healthy on ``version``."""

    def check() -> Obj | None:
        obj = api.get(MODEL_DEPLOYMENT, NS, "churn")
        st = status(obj)
        assert st.get("failedVersion") is None, st
        return obj if st.get("phase") == "Healthy" and st.get("stableVersion") == version else None

    found: Obj = wait(check, f"churn Healthy on {version}", timeout)
    return found


def retrained_version(
    api: CustomObjects, tmp_path: Path, kubeconfig: Path, policy: Obj, require_approval: bool, monkeypatch: Any
) -> Obj:
    """Policy, churn-v1 serving, a drifted check, the Job's registration: the registered version (churn-v2)."""
    api.create(MODEL_POLICY, NS, {"apiVersion": "modelops.dev/v1alpha1", "kind": "ModelPolicy",
                                  "metadata": {"name": "churn"},
                                  "spec": {"modelName": "churn", "gates": AUC_GATE, **policy}})  # fmt: skip
    path, digest = artifact(tmp_path, "churn-v1")
    v1: Obj = {"modelName": "churn", "version": "1", "artifact": {"uri": path.as_uri(), "digest": digest},
               "metrics": {"auc": 0.9}, "stage": "Production"}  # fmt: skip
    api.create(MODEL_VERSION, NS, {"apiVersion": "modelops.dev/v1alpha1", "kind": "ModelVersion",
                                   "metadata": {"name": "churn-v1"}, "spec": v1})  # fmt: skip
    if policy.get("productionApproval") != "Waived":
        # A person approves it once it is registered: an approval written at creation would be its
        # registrant's own, which the policy (selfApproval: Refused) does not count.
        wait(lambda: get_status(api, MODEL_VERSION, "churn-v1").get("history"), "churn-v1 registered")
        api.patch(MODEL_VERSION, NS, "churn-v1", {"spec": {"approval": APPROVAL}})
    api.create(MODEL_DEPLOYMENT, NS, {
        "apiVersion": "modelops.dev/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": "churn"},
        "spec": {"model": {"modelName": "churn", "requireApproval": require_approval}, "replicas": 2,
                 "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "1s"}}]}}},
    })  # fmt: skip
    serving(api, "churn-v1")
    api.create(DRIFT_MONITOR, NS, {
        "apiVersion": "modelops.dev/v1alpha1", "kind": "DriftMonitor", "metadata": {"name": "churn-drift"},
        "spec": {
            "target": {"deployment": "churn"},
            "schedule": "0 * * * *",
            "reference": {"uri": csv(tmp_path / "reference.csv", 1).as_uri()},
            "current": {"source": "uri", "uri": csv(tmp_path / "current.csv", 2, dict(SHIFT)).as_uri(), "minRows": 100},
            "drift": {"method": "wasserstein", "threshold": 0.2},
            "policy": {"action": "retrain", "consecutiveChecks": 1, "cooldown": "1h"},
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [
                {"name": "retrain", "image": "trainer:1", "command": ["python", "-m", "modelops.examples.retrain"]},
            ]}}}},
        },
    })  # fmt: skip
    wait(lambda: get_status(api, DRIFT_MONITOR, "churn-drift").get("resolvedReference"), "the monitor's children")

    assert run_monitor_check(api, NS, "churn-drift") == 0  # what the CronJob's pod runs
    job_name = wait(lambda: (get_status(api, DRIFT_MONITOR, "churn-drift").get("activeJob") or {}).get("name"), "Job")
    job = api.api.sanitize_for_serialization(client.BatchV1Api(api.api).read_namespaced_job(job_name, NS))
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"] if "value" in e}
    assert (env["MODELOPS_PARENT_VERSION"], env["MODELOPS_NEXT_VERSION"]) == ("churn-v1", "2")

    # The Job's pod, at its end: register the trained model with the environment the operator gave it.
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    model, _ = artifact(tmp_path, "retrained")
    code = main(["registry", "register", str(model), "--metrics", "auc=0.93", "accuracy=0.9",
                 "--kubeconfig", str(kubeconfig)])  # fmt: skip
    assert code == 0
    mv = api.get(MODEL_VERSION, NS, "churn-v2")
    assert mv["metadata"]["labels"]["modelops.dev/retrain-job"] == job_name
    assert mv["spec"]["lineage"]["parentVersion"] == "churn-v1"
    assert "approval" not in mv["spec"]
    return mv


def stage_change(api: CustomObjects, name: str, to: str) -> Obj:
    history = get_status(api, MODEL_VERSION, name).get("history") or []
    return next(h for h in history if h.get("event") == "StageChanged" and h.get("to") == to)


def test_a_policy_that_allows_it_rolls_the_retrained_version_out_with_no_human_edit(
    custom_objects, controller, kubeconfig, tmp_path, monkeypatch
):
    retrained_version(custom_objects, tmp_path, kubeconfig, ALLOWS, False, monkeypatch)

    deployment = serving(custom_objects, "churn-v2")
    entry = stage_change(custom_objects, "churn-v2", "Production")
    assert (entry["reason"], entry["actor"]) == ("AutoPromoted", "modelops-operator")
    assert "approval" not in custom_objects.get(MODEL_VERSION, NS, "churn-v2")["spec"]  # nobody approved it
    assert deployment["metadata"]["generation"] == 1  # nobody edited the deployment either
    started = [h for h in status(deployment)["history"] if h.get("to") == "churn-v2" or "churn-v2" in h["message"]]
    assert started  # it went through the canary steps


def test_a_policy_that_requires_approval_holds_the_retrained_version_until_a_person_approves(
    custom_objects, controller, kubeconfig, tmp_path, monkeypatch
):
    retrained_version(custom_objects, tmp_path, kubeconfig, REQUIRES_APPROVAL, True, monkeypatch)

    wait(lambda: get_status(custom_objects, MODEL_VERSION, "churn-v2").get("stage") == "Staging", "churn-v2 Staging")
    assert stage_change(custom_objects, "churn-v2", "Staging")["reason"] == "AutoPromoted"
    held = get_status(custom_objects, MODEL_DEPLOYMENT, "churn")
    assert (held["stableVersion"], held.get("canaryVersion")) == ("churn-v1", None)

    asked = datetime.now(UTC)
    code = main(["registry", "promote", "churn-v2", "--to", "Production", "--approved-by", "dana@example.com",
                 "--reason", "retrained on the drifted window", "--kubeconfig", str(kubeconfig)])  # fmt: skip
    assert code == 0
    deployment = serving(custom_objects, "churn-v2")
    assert deployment["metadata"]["generation"] == 1  # the approval was the only edit
    first = next(h for h in status(deployment)["history"] if "churn-v2" in (h.get("to"), *h["message"].split()))
    assert datetime.fromisoformat(first["time"].replace("Z", "+00:00")) >= asked  # not before the approval
