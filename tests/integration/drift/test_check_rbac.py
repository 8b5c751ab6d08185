"""The drift check's least-privilege Role, proven by running: `modelops drift check` as a process with the
check ServiceAccount's token (what the CronJob's pod gets from the kubelet) writes its result through
the sandbox's RBAC, and the same Role without `patch` on `driftmonitors/status` fails it with the 403."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from modelops.k8s.resources import DRIFT_MONITOR
from modelops.sandbox import ServerThread
from tests.integration.drift.conftest import NS, monitor, run_check, wait, write_csv

SA = "churn-drift-drift-check"
RBAC = "/apis/rbac.authorization.k8s.io/v1"


def token_kubeconfig(server: ServerThread, http: httpx.Client, sa: str, path: Path) -> Path:
    """A kubeconfig carrying a TokenRequest token of `sa`, as the sandbox kubelet writes one for a pod."""
    r = http.post(f"/api/v1/namespaces/{NS}/serviceaccounts/{sa}/token", json={"spec": {"expirationSeconds": 3600}})
    assert r.status_code == 201, r.text
    assert server.api is not None
    cfg: dict[str, Any] = server.api.kubeconfig(NS)
    cfg["users"] = [{"name": "sandbox", "user": {"token": r.json()["status"]["token"]}}]
    path.write_text(yaml.safe_dump(cfg))
    return path


def operator_ready(custom_objects: Any, http: httpx.Client) -> dict[str, Any]:
    """Wait until the operator has resolved the reference and created the check's Role; return the Role."""
    wait(
        lambda: (custom_objects.get(DRIFT_MONITOR, NS, "churn-drift").get("status") or {}).get("resolvedReference"),
        "the operator to resolve the reference",
    )
    got = wait(
        lambda: (r := http.get(f"{RBAC}/namespaces/{NS}/roles/{SA}")).status_code == 200 and r.json(),
        "the check Role",
    )
    assert http.get(f"{RBAC}/namespaces/{NS}/rolebindings/{SA}").status_code == 200
    return dict(got)


@pytest.fixture
def http(apiserver: ServerThread) -> Any:
    with httpx.Client(base_url=apiserver.url, timeout=10) as c:
        yield c


@pytest.mark.usefixtures("operator", "model_version")
def test_check_runs_with_its_least_privilege_role(apiserver, custom_objects, http, tmp_path):
    ref = write_csv(tmp_path / "ref.csv", 0, seed=1)
    cur = write_csv(tmp_path / "cur.csv", 1.0, seed=2)
    custom_objects.create(DRIFT_MONITOR, NS, monitor(ref, cur, action="alert"))
    operator_ready(custom_objects, http)
    kubeconfig = token_kubeconfig(apiserver, http, SA, tmp_path / "pod-kubeconfig")

    done = run_check(kubeconfig)
    assert done.returncode == 0, done.stderr
    assert "could not record Event" not in done.stderr  # the Role's Event rule suffices too
    status = custom_objects.get(DRIFT_MONITOR, NS, "churn-drift")["status"]
    assert status["lastResult"]["datasetDrift"] is True
    assert status["lastCheckTime"]
    events = http.get(f"/api/v1/namespaces/{NS}/events", params={"fieldSelector": "involvedObject.name=churn-drift"})
    by_check = [e for e in events.json()["items"] if e.get("source", {}).get("component") == "modelops-drift-check"]
    assert [e["reason"] for e in by_check] == ["DriftDetected"]

    # ... and nothing more: the same credentials read neither the monitor itself nor other objects
    token = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"]
    as_check = {"Authorization": f"Bearer {token}"}
    user = f"system:serviceaccount:{NS}:{SA}"
    r = http.get(f"/apis/modelops.dev/v1alpha1/namespaces/{NS}/driftmonitors/churn-drift", headers=as_check)
    assert r.json()["message"] == (
        f'driftmonitors.modelops.dev "churn-drift" is forbidden: User "{user}" cannot get resource "driftmonitors" '
        f'in API group "modelops.dev" in the namespace "{NS}"'
    )
    for path in (
        f"/api/v1/namespaces/{NS}/secrets",
        f"/apis/batch/v1/namespaces/{NS}/jobs",
        f"{RBAC}/namespaces/{NS}/roles",
    ):
        assert http.get(path, headers=as_check).status_code == 403, path


@pytest.mark.usefixtures("operator", "model_version")
def test_check_without_patch_on_status_fails_with_the_403(apiserver, custom_objects, http, tmp_path):
    ref = write_csv(tmp_path / "ref.csv", 0, seed=1)
    custom_objects.create(DRIFT_MONITOR, NS, monitor(ref, ref, action="alert"))
    role = operator_ready(custom_objects, http)

    # The operator's own Role, minus `patch`, for another ServiceAccount (the operator would restore its own).
    narrow = copy.deepcopy(role["rules"])
    status_rule = next(r for r in narrow if r["resources"] == ["driftmonitors/status"])
    status_rule["verbs"] = [v for v in status_rule["verbs"] if v != "patch"]
    assert status_rule["verbs"] == ["get"]
    http.post(f"/api/v1/namespaces/{NS}/serviceaccounts", json={"metadata": {"name": "narrow"}})
    http.post(f"{RBAC}/namespaces/{NS}/roles", json={"metadata": {"name": "narrow"}, "rules": narrow})
    http.post(
        f"{RBAC}/namespaces/{NS}/rolebindings",
        json={
            "metadata": {"name": "narrow"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "narrow"},
            "subjects": [{"kind": "ServiceAccount", "name": "narrow", "namespace": NS}],
        },
    )
    before = custom_objects.get(DRIFT_MONITOR, NS, "churn-drift")["status"]

    done = run_check(token_kubeconfig(apiserver, http, "narrow", tmp_path / "narrow-kubeconfig"))
    assert done.returncode != 0
    assert (
        'driftmonitors.modelops.dev "churn-drift" is forbidden: User "system:serviceaccount:default:narrow" cannot '
        'patch resource "driftmonitors/status" in API group "modelops.dev" in the namespace "default"'
    ) in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    after = custom_objects.get(DRIFT_MONITOR, NS, "churn-drift")["status"]
    assert "lastResult" not in after
    assert after.get("lastCheckTime") == before.get("lastCheckTime")
