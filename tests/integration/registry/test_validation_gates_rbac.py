"""The install manifest's RBAC is enough for validation gates: the operator runs under the
`modelops` ServiceAccount's ClusterRoles (from examples/install/modelops-operator.yaml, the
rendered chart) against the sandbox API server, which authorizes every request as RBAC would."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from modelops.core.artifact_policy import ArtifactPolicy
from modelops.k8s.resources import MODEL_POLICY, MODEL_VERSION
from modelops.runner import OperatorConfig, OperatorThread
from modelops.sandbox import ServerThread
from tests.integration.registry.conftest import cond, model_version, status, wait_for

ROOT = Path(__file__).resolve().parents[3]
INSTALL = ROOT / "examples" / "install" / "modelops-operator.yaml"
RBAC_KINDS = {"ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings"}


def _post(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = http.post(path, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.fixture
def operator_as_service_account(apiserver: ServerThread, tmp_path: Path) -> Iterator[OperatorThread]:
    """The operator, authenticated as ServiceAccount modelops/modelops with the install manifest's roles."""
    with httpx.Client(base_url=apiserver.url, timeout=10) as http:
        _post(http, "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "modelops"}})
        sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "modelops"}}
        _post(http, "/api/v1/namespaces/modelops/serviceaccounts", sa)
        for doc in yaml.safe_load_all(INSTALL.read_text()):
            if doc and doc["kind"] in RBAC_KINDS:
                _post(http, f"/apis/rbac.authorization.k8s.io/v1/{RBAC_KINDS[doc['kind']]}", doc)
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
        token = _post(http, "/api/v1/namespaces/modelops/serviceaccounts/modelops/token", request)["status"]["token"]
    assert apiserver.api is not None
    config = apiserver.api.kubeconfig()
    config["users"] = [{"name": "sandbox", "user": {"token": token}}]
    path = tmp_path / "operator-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    cfg = OperatorConfig(
        namespaces=["default"],
        kubeconfig=str(path),
        health_port=None,
        metrics_port=None,
        artifact_policy=ArtifactPolicy.build(allow_file=True),
    )
    with OperatorThread(cfg) as op:
        yield op


@pytest.mark.usefixtures("operator_as_service_account")
def test_gates_and_auto_promotion_work_under_the_install_manifest_rbac(custom_objects, artifact):
    policy = {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelPolicy",
        "metadata": {"name": "churn"},
        "spec": {"modelName": "churn", "gates": [{"metric": "auc", "value": 0.85}], "autoPromoteToStaging": True},
    }
    custom_objects.create(MODEL_POLICY, "default", policy)
    good_uri, good_digest = artifact(b"good", "good.joblib")
    bad_uri, bad_digest = artifact(b"bad", "bad.joblib")
    custom_objects.create(
        MODEL_VERSION, "default", model_version("churn-v1", good_uri, good_digest, metrics={"auc": 0.9})
    )
    custom_objects.create(
        MODEL_VERSION,
        "default",
        model_version("churn-v2", bad_uri, bad_digest, version="2", metrics={"auc": 0.7}, stage="Staging"),
    )
    # Read the policy, write the version's status and then its spec.stage: all allowed.
    promoted = wait_for(custom_objects, "churn-v1", lambda o: o["spec"]["stage"] == "Staging")
    assert status(promoted)["stage"] == "Staging"
    refused = wait_for(custom_objects, "churn-v2", lambda o: cond(o, "StageSynced").get("reason") == "ValidationFailed")
    assert cond(refused, "StageSynced")["message"].endswith("auc 0.7 < 0.85 (ModelPolicy churn)")
    # The policy's own status subresource.
    ready = wait_for_policy(custom_objects)
    assert ready["status"]["observedGeneration"] == ready["metadata"]["generation"]


def wait_for_policy(api: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    obj: dict[str, Any] = {}
    while time.monotonic() < deadline:
        obj = api.get(MODEL_POLICY, "default", "churn")
        if any(c["type"] == "Ready" and c["status"] == "True" for c in status(obj).get("conditions", [])):
            return obj
        time.sleep(0.05)
    raise AssertionError(f"ModelPolicy churn never Ready: {obj.get('status')}")
