"""ModelPolicy validation gates end to end: operator in-process, fake API server with the real CRDs."""

from __future__ import annotations

import time
from typing import Any

import pytest

from modelops.cli import main
from modelops.k8s.resources import MODEL_POLICY, MODEL_VERSION, CustomObjects
from tests.integration.registry.conftest import cond, events, model_version, status, wait_event, wait_for

pytestmark = pytest.mark.usefixtures("operator")

Obj = dict[str, Any]


def model_policy(name: str, model: str = "churn", **spec: Any) -> Obj:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelPolicy",
        "metadata": {"name": name},
        "spec": {"modelName": model, **spec},
    }


AUC_GATE = [{"metric": "auc", "op": ">=", "value": 0.85}]


def wait_policy_ready(api: CustomObjects, name: str) -> Obj:
    deadline = time.monotonic() + 20
    obj: Obj = {}
    while time.monotonic() < deadline:
        obj = api.get(MODEL_POLICY, "default", name)
        ready = next((c for c in status(obj).get("conditions", []) if c["type"] == "Ready"), {})
        if status(obj).get("observedGeneration") == obj["metadata"]["generation"] and ready.get("status") == "True":
            return obj
        time.sleep(0.05)
    raise AssertionError(f"ModelPolicy {name} not Ready: {obj.get('status')}")


def refused(reason: str = "ValidationFailed"):
    return lambda o: cond(o, "StageSynced").get("reason") == reason


def test_a_failing_version_is_refused_and_a_passing_one_granted(custom_objects, core_api, artifact):
    policy = custom_objects.create(MODEL_POLICY, "default", model_policy("churn", gates=AUC_GATE))
    assert policy["spec"]["productionApproval"] == "Required"  # defaulted from the CRD schema
    ready = wait_policy_ready(custom_objects, "churn")
    assert status(ready)["message"] == "model churn: auc >= 0.85; Production needs spec.approval"
    kstatus = {c["type"]: (c["status"], c["reason"]) for c in status(ready)["conditions"]}
    assert kstatus == {"Ready": ("True", "Active"), "Reconciling": ("False", "Active"), "Stalled": ("False", "Active")}
    uri3, d3 = artifact(b"v3", "v3.joblib")
    uri4, d4 = artifact(b"v4", "v4.joblib")
    custom_objects.create(
        MODEL_VERSION,
        "default",
        model_version("churn-v3", uri3, d3, version="3", metrics={"auc": 0.81}, stage="Staging"),
    )
    custom_objects.create(
        MODEL_VERSION,
        "default",
        model_version("churn-v4", uri4, d4, version="4", metrics={"auc": 0.91}, stage="Staging"),
    )
    bad = wait_for(custom_objects, "churn-v3", refused())
    message = "transition None -> Staging refused: auc 0.81 < 0.85 (ModelPolicy churn)"
    assert cond(bad, "StageSynced")["status"] == "False"
    assert cond(bad, "StageSynced")["message"] == message
    assert status(bad).get("stage") in (None, "None")
    assert cond(bad, "Validated")["status"] == "False"
    ev = wait_event(core_api, "churn-v3", "ValidationFailed")
    assert (ev.type, ev.message) == ("Warning", message)
    good = wait_for(custom_objects, "churn-v4", lambda o: status(o).get("stage") == "Staging")
    assert cond(good, "Validated")["reason"] == "GatesPassed"
    assert status(good)["history"][-1]["message"] == (
        "stage None -> Staging; ModelPolicy churn: gates passed (auc 0.91 >= 0.85)"
    )
    # Loosening the policy re-evaluates the pending request without touching the version...
    custom_objects.patch(MODEL_POLICY, "default", "churn", {"spec": {"gates": [{"metric": "auc", "value": 0.8}]}})
    granted = wait_for(custom_objects, "churn-v3", lambda o: status(o).get("stage") == "Staging")
    # ... and the refusal was recorded once, however many reconciles happened before.
    history = status(granted)["history"]
    assert [h["event"] for h in history].count("TransitionRefused") == 1
    assert history[-1]["message"] == "stage None -> Staging; ModelPolicy churn: gates passed (auc 0.81 >= 0.8)"
    assert [e.reason for e in events(core_api, "churn-v3")].count("ValidationFailed") == 1


def test_production_keeps_its_approval_unless_waived_and_a_deleted_policy_releases(custom_objects, artifact):
    custom_objects.create(MODEL_POLICY, "default", model_policy("churn", gates=AUC_GATE))
    wait_policy_ready(custom_objects, "churn")
    uri, digest = artifact(b"v5", "v5.joblib")
    custom_objects.create(
        MODEL_VERSION,
        "default",
        model_version("churn-v5", uri, digest, version="5", metrics={"auc": 0.9}, stage="Production"),
    )
    wait_for(custom_objects, "churn-v5", refused("ApprovalRequired"))
    custom_objects.patch(MODEL_POLICY, "default", "churn", {"spec": {"productionApproval": "Waived"}})
    prod = wait_for(custom_objects, "churn-v5", lambda o: status(o).get("stage") == "Production")
    assert status(prod)["history"][-1]["message"].startswith(
        "stage None -> Production, approval waived by ModelPolicy churn"
    )
    # A request refused by the gates is released when the policy goes away.
    uri6, d6 = artifact(b"v6", "v6.joblib")
    custom_objects.create(
        MODEL_VERSION,
        "default",
        model_version("churn-v6", uri6, d6, version="6", metrics={"auc": 0.5}, stage="Staging"),
    )
    wait_for(custom_objects, "churn-v6", refused())
    custom_objects.delete(MODEL_POLICY, "default", "churn")
    released = wait_for(custom_objects, "churn-v6", lambda o: status(o).get("stage") == "Staging")
    assert "Validated" not in {c["type"] for c in status(released)["conditions"]}


def test_auto_promotion_to_staging_only_where_the_policy_allows(custom_objects, core_api, artifact):
    custom_objects.create(MODEL_POLICY, "default", model_policy("churn", gates=AUC_GATE, autoPromoteToStaging=True))
    custom_objects.create(MODEL_POLICY, "default", model_policy("fraud", model="fraud", gates=AUC_GATE))
    wait_policy_ready(custom_objects, "churn")
    wait_policy_ready(custom_objects, "fraud")
    blobs = {name: artifact(name.encode(), f"{name}.joblib") for name in ("churn-v7", "churn-v8", "fraud-v1")}
    for name, auc in (("churn-v7", 0.9), ("churn-v8", 0.8), ("fraud-v1", 0.95)):
        model, _, version = name.partition("-v")
        uri, digest = blobs[name]
        custom_objects.create(
            MODEL_VERSION,
            "default",
            model_version(name, uri, digest, model=model, version=version, metrics={"auc": auc}),
        )
    promoted = wait_for(custom_objects, "churn-v7", lambda o: o["spec"]["stage"] == "Staging")
    assert status(promoted)["stage"] == "Staging"
    entry = status(promoted)["history"][-1]
    assert (entry["event"], entry["reason"], entry["actor"]) == ("StageChanged", "AutoPromoted", "modelops-operator")
    assert entry["message"] == "stage None -> Staging: ModelPolicy churn: gates passed (auc 0.9 >= 0.85)"
    assert wait_event(core_api, "churn-v7", "AutoPromoted").type == "Normal"
    # The spec write's own reconcile leaves it in sync, with no second history entry.
    settled = wait_for(
        custom_objects,
        "churn-v7",
        lambda o: cond(o, "StageSynced").get("observedGeneration") == o["metadata"]["generation"],
    )
    assert cond(settled, "StageSynced")["status"] == "True"
    assert [h["reason"] for h in status(settled)["history"]].count("AutoPromoted") == 1

    low = wait_for(custom_objects, "churn-v8", lambda o: cond(o, "Validated").get("status") == "False")
    assert status(low)["phase"] == "Verified"
    assert low["spec"]["stage"] == "None"
    assert status(low)["stage"] == "None"
    assert status(low)["history"][-1]["message"] == (
        "automatic promotion to Staging refused: auc 0.8 < 0.85 (ModelPolicy churn)"
    )
    assert wait_event(core_api, "churn-v8", "ValidationFailed").type == "Warning"

    fraud = wait_for(custom_objects, "fraud-v1", lambda o: status(o).get("phase") == "Verified")
    assert fraud["spec"]["stage"] == "None"
    assert status(fraud)["stage"] == "None"
    assert "Validated" not in {c["type"] for c in status(fraud)["conditions"]}


def test_registry_promote_prints_the_refusal_and_exits_non_zero(capsys, kubeconfig, custom_objects, artifact):
    custom_objects.create(MODEL_POLICY, "default", model_policy("churn", gates=AUC_GATE))
    wait_policy_ready(custom_objects, "churn")
    uri, digest = artifact(b"v9", "v9.joblib")
    custom_objects.create(
        MODEL_VERSION, "default", model_version("churn-v9", uri, digest, version="9", metrics={"auc": 0.84})
    )
    wait_for(custom_objects, "churn-v9", lambda o: status(o).get("phase") == "Verified")
    code = main(["registry", "promote", "churn-v9", "--to", "Staging", "--kubeconfig", str(kubeconfig)])
    out = capsys.readouterr().out
    assert code == 1
    assert out.strip() == "churn-v9: transition None -> Staging refused: auc 0.84 < 0.85 (ModelPolicy churn)"
