"""RBAC over HTTP: ServiceAccount tokens from TokenRequest, authorized by the stored Roles and bindings
exactly as kube-apiserver's RBAC authorizer would (verbs, subresources, resourceNames, namespaces),
with kube's 403 bodies; impersonation, access reviews, and `kubectl auth can-i` with the real kubectl."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelops.sandbox import ServerThread
from tests.integration.sandbox.test_token_request import bearer, create_service_account, request_token

NS = "default"
DM = "/apis/modelops.dev/v1alpha1/namespaces/default/driftmonitors"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
USER = "system:serviceaccount:default:check"
MERGE = {"Content-Type": "application/merge-patch+json"}


def forbidden(message: str, kind: str, name: str = "", group: str = "") -> dict[str, Any]:
    details = {k: v for k, v in (("name", name), ("group", group), ("kind", kind)) if v}
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Forbidden",
        "details": details,
        "code": 403,
    }


def drift_monitor(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": name},
        "spec": {
            "target": {"modelVersion": "churn-v1"},
            "schedule": "*/30 * * * *",
            "reference": {"uri": "file:///data/ref.csv"},
            "current": {"source": "uri", "uri": "file:///data/cur.csv"},
        },
    }


def role(name: str, rules: list[dict[str, Any]], ns: str = NS) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name, "namespace": ns},
            "rules": rules}  # fmt: skip


def binding(name: str, role_kind: str, role_name: str, sa: str = "check", ns: str = NS) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": NS}],
    }


CHECK_RULES = [
    {"apiGroups": ["modelops.dev"], "resources": ["driftmonitors/status"], "resourceNames": ["m"], "verbs": ["get", "patch"]}
]  # fmt: skip


@pytest.fixture
def http(apiserver: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=apiserver.url, timeout=10) as c:
        yield c


@pytest.fixture
def token(http: httpx.Client) -> str:
    """A token of ServiceAccount default/check, with the drift check's Role on monitor `m` bound to it."""
    create_service_account(http, "check")
    for path, body in (
        (DM, drift_monitor("m")),
        (DM, drift_monitor("other")),
        (f"{RBAC}/namespaces/{NS}/roles", role("check", CHECK_RULES)),
        (f"{RBAC}/namespaces/{NS}/rolebindings", binding("check", "Role", "check")),
    ):
        r = http.post(path, json=body)
        assert r.status_code == 201, r.text
    return request_token(http, "check")


def test_least_privilege_role_allows_exactly_its_rules(http: httpx.Client, token: str) -> None:
    as_sa = bearer(token)
    got = http.get(f"{DM}/m/status", headers=as_sa)
    assert got.status_code == 200
    assert got.json()["metadata"]["name"] == "m"
    patched = http.patch(f"{DM}/m/status", json={"status": {"phase": "Healthy"}}, headers={**as_sa, **MERGE})
    assert patched.status_code == 200, patched.text
    assert patched.json()["status"]["phase"] == "Healthy"

    r = http.patch(f"{DM}/other/status", json={"status": {"phase": "Healthy"}}, headers={**as_sa, **MERGE})
    assert (r.status_code, r.json()) == (403, forbidden(
        f'driftmonitors.modelops.dev "other" is forbidden: User "{USER}" cannot patch resource "driftmonitors/status" '
        'in API group "modelops.dev" in the namespace "default"', "driftmonitors", "other", "modelops.dev"))  # fmt: skip
    r = http.get(f"{DM}/m", headers=as_sa)
    assert r.json()["message"] == (
        f'driftmonitors.modelops.dev "m" is forbidden: User "{USER}" cannot get resource "driftmonitors" in API group '
        '"modelops.dev" in the namespace "default"'
    )
    r = http.put(f"{DM}/m/status", json=got.json(), headers=as_sa)
    assert r.status_code == 403  # update is not patch
    r = http.get(DM, headers=as_sa)
    assert (r.status_code, r.json()) == (403, forbidden(
        f'driftmonitors.modelops.dev is forbidden: User "{USER}" cannot list resource "driftmonitors" in API group '
        '"modelops.dev" in the namespace "default"', "driftmonitors", group="modelops.dev"))  # fmt: skip
    r = http.get("/api/v1/nodes", headers=as_sa)
    assert r.json()["message"] == (
        f'nodes is forbidden: User "{USER}" cannot list resource "nodes" in API group "" at the cluster scope'
    )
    r = http.get("/apis/modelops.dev/v1alpha1/namespaces/kube-system/driftmonitors/m/status", headers=as_sa)
    assert r.status_code == 403  # a Role grants in its own namespace only
    # a resource that does not exist is still forbidden, not 404: authorization comes first
    assert http.get("/apis/nope.dev/v1/namespaces/default/things", headers=as_sa).status_code == 403
    assert http.get("/apis/nope.dev/v1/namespaces/default/things").status_code == 404


def test_resource_names_match_get_and_name_selected_lists_and_watches(http: httpx.Client, token: str) -> None:
    for name in ("a", "b"):
        http.post(f"/api/v1/namespaces/{NS}/configmaps", json={"metadata": {"name": name}, "data": {"k": name}})
    rules = [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["get", "list", "watch"]}
    ]
    http.post(f"{RBAC}/namespaces/{NS}/roles", json=role("cm", rules))
    http.post(f"{RBAC}/namespaces/{NS}/rolebindings", json=binding("cm", "Role", "cm"))
    as_sa = bearer(token)
    cms = f"/api/v1/namespaces/{NS}/configmaps"
    assert http.get(f"{cms}/a", headers=as_sa).status_code == 200
    assert http.get(f"{cms}/b", headers=as_sa).status_code == 403
    assert http.get(cms, headers=as_sa).status_code == 403
    one = http.get(cms, params={"fieldSelector": "metadata.name=a"}, headers=as_sa)
    assert one.status_code == 200
    assert [i["metadata"]["name"] for i in one.json()["items"]] == ["a"]
    watch = http.get(
        cms, params={"watch": "1", "fieldSelector": "metadata.name=a", "timeoutSeconds": "1"}, headers=as_sa
    )
    assert watch.status_code == 200
    assert '"name":"a"' in watch.text
    r = http.get(cms, params={"watch": "true", "timeoutSeconds": "1"}, headers=as_sa)
    assert r.json()["message"] == (
        f'configmaps is forbidden: User "{USER}" cannot watch resource "configmaps" in API group "" in the namespace '
        '"default"'
    )
    r = http.post(cms, json={"metadata": {"name": "a2"}}, headers=as_sa)
    assert r.json()["message"] == (
        f'configmaps is forbidden: User "{USER}" cannot create resource "configmaps" in API group "" in the namespace '
        '"default"'
    )


def test_cluster_roles_through_role_bindings_and_cluster_role_bindings(http: httpx.Client, token: str) -> None:
    as_sa = bearer(token)
    reader = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "pod-reader"},
              "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}  # fmt: skip
    http.post(f"{RBAC}/clusterroles", json=reader)
    http.post(f"{RBAC}/namespaces/{NS}/rolebindings", json=binding("pods", "ClusterRole", "pod-reader"))
    assert http.get(f"/api/v1/namespaces/{NS}/pods", headers=as_sa).status_code == 200
    assert http.get("/api/v1/namespaces/kube-system/pods", headers=as_sa).status_code == 403
    r = http.get("/api/v1/pods", headers=as_sa)
    assert r.json()["message"] == (
        f'pods is forbidden: User "{USER}" cannot list resource "pods" in API group "" at the cluster scope'
    )
    crb = {**binding("pods-everywhere", "ClusterRole", "pod-reader"), "kind": "ClusterRoleBinding",
           "metadata": {"name": "pods-everywhere"}}  # fmt: skip
    assert http.post(f"{RBAC}/clusterrolebindings", json=crb).status_code == 201
    assert http.get("/api/v1/pods", headers=as_sa).status_code == 200
    assert http.get("/api/v1/namespaces/kube-system/pods", headers=as_sa).status_code == 200


def test_policy_changes_apply_to_the_next_request(http: httpx.Client, token: str) -> None:
    as_sa = bearer(token)
    http.post(f"{RBAC}/namespaces/{NS}/rolebindings", json=binding("later", "Role", "later"))
    r = http.get(f"/api/v1/namespaces/{NS}/secrets", headers=as_sa)
    assert r.json()["message"] == (
        f'secrets is forbidden: User "{USER}" cannot list resource "secrets" in API group "" in the namespace '
        '"default": RBAC: role.rbac.authorization.k8s.io "later" not found'
    )
    http.post(f"{RBAC}/namespaces/{NS}/roles", json=role("later", [{"apiGroups": [""], "resources": ["secrets"],
                                                                    "verbs": ["list"]}]))  # fmt: skip
    assert http.get(f"/api/v1/namespaces/{NS}/secrets", headers=as_sa).status_code == 200
    assert http.delete(f"{RBAC}/namespaces/{NS}/rolebindings/later").status_code == 200
    assert http.get(f"/api/v1/namespaces/{NS}/secrets", headers=as_sa).status_code == 403
    assert http.delete(f"{RBAC}/namespaces/{NS}/rolebindings/check").status_code == 200
    assert http.get(f"{DM}/m/status", headers=as_sa).status_code == 403


def test_impersonation(http: httpx.Client, token: str) -> None:
    as_check = {"Impersonate-User": USER}
    assert http.get(f"{DM}/m/status", headers=as_check).status_code == 200
    r = http.get(f"{DM}/m", headers=as_check)
    assert r.status_code == 403
    assert f'User "{USER}" cannot get resource "driftmonitors"' in r.json()["message"]
    # groups given explicitly replace the ServiceAccount's own
    masters = http.get(f"{DM}/m", headers={**as_check, "Impersonate-Group": "system:masters"})
    assert masters.status_code == 200
    r = http.get("/api", headers={"Impersonate-Group": "system:masters"})
    assert r.status_code == 400

    # a ServiceAccount may impersonate only with the impersonate verb
    r = http.get("/api", headers={**bearer(token), "Impersonate-User": "bob"})
    assert (r.status_code, r.json()) == (403, forbidden(
        f'users "bob" is forbidden: User "{USER}" cannot impersonate resource "users" in API group "" at the '
        "cluster scope", "users", "bob"))  # fmt: skip
    imp = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "imp-bob"},
           "rules": [{"apiGroups": [""], "resources": ["users"], "resourceNames": ["bob"], "verbs": ["impersonate"]}]}  # fmt: skip
    http.post(f"{RBAC}/clusterroles", json=imp)
    crb = {
        **binding("imp-bob", "ClusterRole", "imp-bob"),
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "imp-bob"},
    }
    http.post(f"{RBAC}/clusterrolebindings", json=crb)
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    r = http.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", json=review,
                  headers={**bearer(token), "Impersonate-User": "bob"})  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["status"]["userInfo"] == {"username": "bob", "groups": ["system:authenticated"]}


def _ssar(http: httpx.Client, headers: dict[str, str], **attrs: str) -> dict[str, Any]:
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs}}  # fmt: skip
    r = http.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json()["status"])


def test_access_reviews(http: httpx.Client, token: str) -> None:
    patch_m = {"namespace": NS, "verb": "patch", "group": "modelops.dev", "resource": "driftmonitors",
               "subresource": "status", "name": "m"}  # fmt: skip
    assert _ssar(http, bearer(token), **patch_m) == {
        "allowed": True,
        "reason": 'RBAC: allowed by RoleBinding "check/default" of Role "check" to ServiceAccount "check/default"',
    }
    assert _ssar(http, bearer(token), **{**patch_m, "name": "other"}) == {"allowed": False}
    assert _ssar(http, {}, **{**patch_m, "name": "other"}) == {"allowed": True}  # the credential-less admin

    sar = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": USER, "groups": ["system:serviceaccounts"], "resourceAttributes": patch_m}}  # fmt: skip
    assert http.post(sar, json=body).json()["status"]["allowed"] is True
    r = http.post(sar, json={**body, "spec": {"resourceAttributes": patch_m}})
    assert r.status_code == 422
    assert r.json()["message"] == (
        'SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: Invalid value: "": at least one of user '
        "or group must be specified"
    )
    # the ServiceAccount may review itself (system:basic-user) but not others
    r = http.post(sar, json=body, headers=bearer(token))
    assert r.json()["message"] == (
        f'subjectaccessreviews.authorization.k8s.io is forbidden: User "{USER}" cannot create resource '
        '"subjectaccessreviews" in API group "authorization.k8s.io" at the cluster scope'
    )
    lsar = "/apis/authorization.k8s.io/v1/namespaces/kube-system/localsubjectaccessreviews"
    r = http.post(
        lsar, json={"kind": "LocalSubjectAccessReview", "spec": {"user": USER, "resourceAttributes": patch_m}}
    )
    assert (r.status_code, r.json()["message"]) == (
        400,
        "spec.resourceAttributes.namespace must match namespace: kube-system",
    )
    assert http.get("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews").status_code == 405


KUBECTL = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


@pytest.mark.kubectl
@KUBECTL
def test_kubectl_auth_can_i(apiserver: ServerThread, token: str, tmp_path: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(apiserver.write_kubeconfig(tmp_path / "kubeconfig")),
           "KUBECACHEDIR": str(tmp_path / "cache")}  # fmt: skip

    def can_i(*args: str) -> tuple[int, str]:
        p = subprocess.run(["kubectl", "auth", "can-i", *args], env=env, text=True, capture_output=True, timeout=30)
        return p.returncode, p.stdout.strip()

    as_check = f"--as={USER}"
    assert can_i("patch", "driftmonitors/m", "--subresource=status", "-n", NS, as_check) == (0, "yes")
    assert can_i("get", "driftmonitors.modelops.dev/m", "--subresource=status", "-n", NS, as_check) == (0, "yes")
    assert can_i("patch", "driftmonitors/other", "--subresource=status", "-n", NS, as_check) == (1, "no")
    assert can_i("update", "driftmonitors/m", "--subresource=status", "-n", NS, as_check) == (1, "no")
    assert can_i("get", "driftmonitors/m", "-n", NS, as_check) == (1, "no")
    assert can_i("patch", "driftmonitors/m", "--subresource=status", "-n", "kube-system", as_check) == (1, "no")
    assert can_i("get", "/healthz", as_check) == (0, "yes")
    assert can_i("delete", "nodes") == (0, "yes")  # no --as: the credential-less admin
    code, listing = can_i("--list", "-n", NS, as_check)
    assert code == 0
    rows = [line.split() for line in listing.splitlines()]
    assert ["driftmonitors.modelops.dev/status", "[]", "[m]", "[get", "patch]"] in rows


@pytest.mark.kubectl
@KUBECTL
def test_kubectl_creates_rbac_objects_that_take_effect(
    apiserver: ServerThread, http: httpx.Client, tmp_path: Path
) -> None:
    env = {**os.environ, "KUBECONFIG": str(apiserver.write_kubeconfig(tmp_path / "kubeconfig")),
           "KUBECACHEDIR": str(tmp_path / "cache")}  # fmt: skip

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["kubectl", *args], env=env, text=True, capture_output=True, timeout=30)

    for args in (
        ("create", "serviceaccount", "viewer"),
        ("create", "role", "cm-reader", "--verb=get,list", "--resource=configmaps"),
        ("create", "rolebinding", "viewer", "--role=cm-reader", f"--serviceaccount={NS}:viewer"),
        ("create", "clusterrole", "node-lister", "--verb=list", "--resource=nodes"),
        ("create", "clusterrolebinding", "viewer-nodes", "--clusterrole=node-lister", f"--serviceaccount={NS}:viewer"),
    ):
        done = kubectl(*args)
        assert done.returncode == 0, done.stderr
    stored = http.get(f"{RBAC}/namespaces/{NS}/roles/cm-reader").json()
    assert stored["rules"] == [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps"]}]
    viewer = bearer(request_token(http, "viewer"))
    assert http.get(f"/api/v1/namespaces/{NS}/configmaps", headers=viewer).status_code == 200
    assert http.get("/api/v1/nodes", headers=viewer).status_code == 200
    assert http.get(f"/api/v1/namespaces/{NS}/secrets", headers=viewer).status_code == 403
