"""A retraining Job cannot approve its own version: the operator's retraining ServiceAccount (the Role
it renders for a DriftMonitor that retrains: `create` and `get` on ModelVersions) registers a version
that asks for Production and carries an approval; the sandbox API server authorizes the create as RBAC
would (`create` cannot be limited by name). Under the model's ModelPolicy (`selfApproval: Refused`,
the default) the operator refuses that approval (StageSynced=False, reason SelfApprovalRefused, a
Warning Event naming spec.approval), the Job cannot write another one (no `patch`), and a person's
approval written afterwards promotes the version, as does the policy changed to `selfApproval: Allowed`."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from modelops.cli import main
from modelops.k8s.resources import DRIFT_MONITOR, MODEL_POLICY, MODEL_VERSION, CustomObjects
from modelops.sandbox import ServerThread
from tests.integration.drift.conftest import NS, monitor, wait, write_csv

SA = "churn-drift-retrain"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
MV_PATH = f"/apis/modelops.dev/v1alpha1/namespaces/{NS}/modelversions"
APPROVAL = {"approvedBy": "alice@example.com", "approvedAt": "2026-11-01T00:00:00Z", "reason": "looks good to me"}

Obj = dict[str, Any]


@pytest.fixture
def http(apiserver: ServerThread) -> Any:
    with httpx.Client(base_url=apiserver.url, timeout=10) as c:
        yield c


def retrain_identity(custom_objects: CustomObjects, http: httpx.Client, tmp_path: Path, self_approval: str) -> str:
    """Policy, a retraining DriftMonitor, the operator's retrain Role: a bearer token of its ServiceAccount."""
    custom_objects.create(MODEL_POLICY, NS, {
        "apiVersion": "modelops.dev/v1alpha1", "kind": "ModelPolicy", "metadata": {"name": "churn"},
        "spec": {"modelName": "churn", "gates": [{"metric": "auc", "op": ">=", "value": 0.85}],
                 "autoPromoteToStaging": True, "selfApproval": self_approval},
    })  # fmt: skip
    ref, cur = write_csv(tmp_path / "ref.csv", 0, seed=1), write_csv(tmp_path / "cur.csv", 1.0, seed=2)
    custom_objects.create(DRIFT_MONITOR, NS, monitor(ref, cur))
    role = wait(lambda: (r := http.get(f"{RBAC}/namespaces/{NS}/roles/{SA}")).status_code == 200 and r.json(), "Role")
    assert role["rules"][0] == {
        "apiGroups": ["modelops.dev"],
        "resources": ["modelversions"],
        "verbs": ["create", "get"],
    }
    r = http.post(f"/api/v1/namespaces/{NS}/serviceaccounts/{SA}/token", json={"spec": {"expirationSeconds": 3600}})
    assert r.status_code == 201, r.text
    return str(r.json()["status"]["token"])


def self_approved_version(tmp_path: Path, name: str) -> Obj:
    art = tmp_path / f"{name}.joblib"
    art.write_bytes(name.encode())
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {
            "modelName": "churn",
            "version": name.rsplit("v", 1)[1],
            "artifact": {"uri": art.as_uri(), "digest": "sha256:" + hashlib.sha256(name.encode()).hexdigest()},
            "metrics": {"auc": 0.93},
            "stage": "Production",
            "approval": APPROVAL,
        },
    }


def get(custom_objects: CustomObjects, name: str) -> Obj:
    return custom_objects.get(MODEL_VERSION, NS, name)


def condition(obj: Obj, type_: str) -> Obj:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == type_), {})


@pytest.mark.usefixtures("operator", "model_version")
def test_the_retraining_identity_cannot_approve_its_version_and_a_persons_approval_promotes_it(
    custom_objects: CustomObjects, http: httpx.Client, kubeconfig: Path, tmp_path: Path
) -> None:
    token = retrain_identity(custom_objects, http, tmp_path, "Refused")
    as_job = {"Authorization": f"Bearer {token}"}
    r = http.post(MV_PATH, json=self_approved_version(tmp_path, "churn-v9"), headers=as_job)
    assert r.status_code == 201, r.text  # `create` cannot be limited by name: RBAC lets it through

    refused = wait(
        lambda: (
            (o := get(custom_objects, "churn-v9"))
            and condition(o, "StageSynced").get("reason") == "SelfApprovalRefused"
            and o
        ),
        "the self-approval to be refused",
    )
    message = (
        "transition None -> Production refused: spec.approval (approvedBy alice@example.com) was already set when "
        "the version was registered, so it is its registrant's own and does not count (ModelPolicy churn: "
        "selfApproval Refused); an approver must write a new spec.approval "
        "(modelops registry promote --to Production --approved-by ... --reason ...)"
    )
    assert condition(refused, "StageSynced")["message"] == message
    assert condition(refused, "Stalled")["status"] == "True"
    assert refused["status"]["phase"] == "Verified"
    assert refused["status"].get("stage") in (None, "None")
    assert refused["status"]["registeredApproval"] == APPROVAL
    events = http.get(f"/api/v1/namespaces/{NS}/events", params={"fieldSelector": "involvedObject.name=churn-v9"})
    warnings = [(e["type"], e["message"]) for e in events.json()["items"] if e["reason"] == "SelfApprovalRefused"]
    assert warnings == [("Warning", message)]

    # The Job cannot write a fresh approval either: no patch (nor update) on ModelVersions.
    later = {"spec": {"approval": {**APPROVAL, "approvedAt": "2026-11-02T00:00:00Z"}}}
    headers = {**as_job, "Content-Type": "application/merge-patch+json"}
    denied = http.patch(f"{MV_PATH}/churn-v9", content=yaml.safe_dump(later), headers=headers)
    assert denied.status_code == 403, denied.text
    assert get(custom_objects, "churn-v9")["spec"]["approval"] == APPROVAL

    # A person (the admin kubeconfig: allowed to patch ModelVersions) approves it: Production.
    code = main(["registry", "promote", "churn-v9", "--to", "Production", "--approved-by", "dana@example.com",
                 "--reason", "reviewed the retrained model", "--kubeconfig", str(kubeconfig)])  # fmt: skip
    assert code == 0
    promoted = get(custom_objects, "churn-v9")
    assert promoted["status"]["stage"] == "Production"
    assert promoted["status"]["history"][-1]["actor"] == "dana@example.com"
    assert promoted["status"]["registeredApproval"] == APPROVAL  # kept: the record of what the registrant wrote


@pytest.mark.usefixtures("operator", "model_version")
def test_a_policy_changed_to_allow_self_approval_lets_the_registration_approval_count(
    custom_objects: CustomObjects, http: httpx.Client, tmp_path: Path
) -> None:
    token = retrain_identity(custom_objects, http, tmp_path, "Refused")
    r = http.post(
        MV_PATH, json=self_approved_version(tmp_path, "churn-v9"), headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 201, r.text
    wait(
        lambda: condition(get(custom_objects, "churn-v9"), "StageSynced").get("reason") == "SelfApprovalRefused",
        "the self-approval to be refused",
    )
    # The model's owners decide that a registration's approval counts: the pending request is re-evaluated.
    custom_objects.patch(MODEL_POLICY, NS, "churn", {"spec": {"selfApproval": "Allowed"}})
    promoted = wait(
        lambda: (o := get(custom_objects, "churn-v9")) and (o.get("status") or {}).get("stage") == "Production" and o,
        "Production",
    )
    assert promoted["status"]["history"][-1]["actor"] == "alice@example.com"
    described = (
        "model churn: auc >= 0.85; passing versions go to Staging automatically; Production needs spec.approval; "
        "an approval set at registration counts"
    )
    wait(
        lambda: (custom_objects.get(MODEL_POLICY, NS, "churn").get("status") or {}).get("message") == described,
        "the policy's description",
    )
