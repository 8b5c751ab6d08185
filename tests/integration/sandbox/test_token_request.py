"""TokenRequest over HTTP: the credentials a kubelet gives a pod, and kube-apiserver's 401s for bad ones."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from modelops.sandbox import ServerThread

NS = "default"
UNAUTHORIZED = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Unauthorized",
    "reason": "Unauthorized",
    "code": 401,
}


def create_service_account(http: httpx.Client, name: str, ns: str = NS) -> dict[str, Any]:
    body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
    r = http.post(f"/api/v1/namespaces/{ns}/serviceaccounts", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def request_token(http: httpx.Client, name: str, ns: str = NS, spec: dict[str, Any] | None = None) -> str:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec or {}}
    r = http.post(f"/api/v1/namespaces/{ns}/serviceaccounts/{name}/token", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["status"]["token"])


@pytest.fixture
def http(apiserver: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=apiserver.url, timeout=10) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_token_request_returns_a_token_for_the_service_account(http: httpx.Client, k8s_api_client: Any) -> None:
    sa = create_service_account(http, "runner")
    before = datetime.now(UTC).timestamp()
    out = client.CoreV1Api(k8s_api_client).create_namespaced_service_account_token(
        "runner", NS, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    )
    assert out.spec.audiences == ["https://kubernetes.default.svc.cluster.local"]
    assert out.spec.expiration_seconds == 3600
    assert (out.metadata.name, out.metadata.namespace) == ("runner", NS)
    expiry = out.status.expiration_timestamp.timestamp()
    assert before + 3600 - 2 <= expiry <= time.time() + 3600 + 1

    r = http.post(
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        headers=bearer(out.status.token),
    )
    assert r.status_code == 201, r.text
    info = r.json()["status"]["userInfo"]
    assert info["username"] == "system:serviceaccount:default:runner"
    assert info["uid"] == sa["metadata"]["uid"]
    assert info["groups"] == ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"]
    # the token authenticates; it does not authorize: nothing is bound to the account
    assert http.get(f"/api/v1/namespaces/{NS}/configmaps", headers=bearer(out.status.token)).status_code == 403
    # discovery and health are every authenticated user's (system:discovery, system:public-info-viewer)
    for path in ("/api", "/apis", "/api/v1", "/apis/modelops.dev/v1alpha1", "/version", "/healthz", "/openapi/v3"):
        assert http.get(path, headers=bearer(out.status.token)).status_code == 200, path


def test_token_bound_to_a_pod_lasts_as_long_as_the_pod(http: httpx.Client) -> None:
    create_service_account(http, "runner")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"serviceAccountName": "runner", "containers": [{"name": "c", "image": "i"}]}}  # fmt: skip
    uid = http.post(f"/api/v1/namespaces/{NS}/pods", json=pod).json()["metadata"]["uid"]
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": uid}
    token = request_token(http, "runner", spec={"boundObjectRef": ref, "expirationSeconds": 3607})
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    r = http.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", json=review, headers=bearer(token))
    assert r.json()["status"]["userInfo"]["extra"]["authentication.kubernetes.io/pod-uid"] == [uid]
    assert http.delete(f"/api/v1/namespaces/{NS}/pods/p").status_code == 200
    r = http.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", json=review, headers=bearer(token))
    assert (r.status_code, r.json()) == (401, UNAUTHORIZED)

    stale = {**ref, "uid": "00000000-0000-0000-0000-000000000000"}
    http.post(f"/api/v1/namespaces/{NS}/pods", json=pod)
    r = http.post(f"/api/v1/namespaces/{NS}/serviceaccounts/runner/token", json={"spec": {"boundObjectRef": stale}})
    assert r.status_code == 409
    assert r.json()["message"] == (
        'Operation cannot be fulfilled on Pod "p": the UID in the bound object reference '
        "(00000000-0000-0000-0000-000000000000) does not match the UID in record. The object might have been "
        "deleted and then recreated"
    )


def test_every_namespace_has_a_default_service_account(http: httpx.Client) -> None:
    """What a pod without serviceAccountName runs as: a token with no permissions, not the admin."""
    http.post("/api/v1/namespaces", json={"metadata": {"name": "team-a"}})
    for ns in ("default", "kube-system", "team-a"):
        assert http.get(f"/api/v1/namespaces/{ns}/serviceaccounts/default").status_code == 200, ns
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    uid = http.post("/api/v1/namespaces/team-a/pods", json=pod).json()["metadata"]["uid"]
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": uid}
    token = request_token(http, "default", "team-a", {"boundObjectRef": ref})
    r = http.get("/api/v1/namespaces/team-a/pods", headers=bearer(token))
    assert r.json()["message"] == (
        'pods is forbidden: User "system:serviceaccount:team-a:default" cannot list resource "pods" in API group "" '
        'in the namespace "team-a"'
    )
    r = http.post("/api/v1/namespaces/team-a/serviceaccounts/other/token", json={"spec": {"boundObjectRef": ref}})
    assert r.status_code == 404  # no such account
    http.post("/api/v1/namespaces/team-a/serviceaccounts", json={"metadata": {"name": "other"}})
    r = http.post("/api/v1/namespaces/team-a/serviceaccounts/other/token", json={"spec": {"boundObjectRef": ref}})
    assert (r.status_code, r.json()["message"]) == (
        400,
        'cannot bind token for serviceaccount "other" to pod running with different serviceaccount name.',
    )


def test_token_request_for_a_missing_service_account_is_404(http: httpx.Client) -> None:
    r = http.post(f"/api/v1/namespaces/{NS}/serviceaccounts/ghost/token", json={"spec": {}})
    assert r.status_code == 404
    assert r.json()["message"] == 'serviceaccounts "ghost" not found'
    assert r.json()["details"] == {"name": "ghost", "group": "", "kind": "serviceaccounts"}


def test_too_short_expiry_is_422(http: httpx.Client) -> None:
    create_service_account(http, "runner")
    r = http.post(f"/api/v1/namespaces/{NS}/serviceaccounts/runner/token", json={"spec": {"expirationSeconds": 60}})
    assert r.status_code == 422
    assert r.json()["message"] == (
        'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 60: '
        "may not specify a duration less than 10 minutes"
    )


def test_token_of_a_deleted_or_recreated_service_account_is_401(http: httpx.Client) -> None:
    create_service_account(http, "runner")
    token = request_token(http, "runner")
    assert http.get("/api", headers=bearer(token)).status_code == 200
    assert http.delete(f"/api/v1/namespaces/{NS}/serviceaccounts/runner").status_code == 200
    r = http.get("/api", headers=bearer(token))
    assert (r.status_code, r.json()) == (401, UNAUTHORIZED)
    create_service_account(http, "runner")  # same name, another uid: another account
    r = http.get("/api", headers=bearer(token))
    assert (r.status_code, r.json()) == (401, UNAUTHORIZED)


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-token", "Bearer", "Basic dXNlcjpwYXNz", "Bearer a.b.c"],
)
def test_bad_credentials_are_401_not_anonymous_admin(http: httpx.Client, authorization: str) -> None:
    r = http.get(f"/api/v1/namespaces/{NS}/configmaps", headers={"Authorization": authorization})
    assert (r.status_code, r.json()) == (401, UNAUTHORIZED)


def test_a_token_from_another_server_is_401(apiserver: ServerThread, http: httpx.Client) -> None:
    with ServerThread(port=0) as other, httpx.Client(base_url=other.url, timeout=10) as other_http:
        create_service_account(other_http, "runner")
        foreign = request_token(other_http, "runner")
    create_service_account(http, "runner")
    r = http.get("/api", headers=bearer(foreign))
    assert (r.status_code, r.json()) == (401, UNAUTHORIZED)


def test_discovery_lists_the_token_subresource_and_the_review_apis(http: httpx.Client) -> None:
    core = {r["name"]: r for r in http.get("/api/v1").json()["resources"]}
    assert core["serviceaccounts/token"] == {
        "name": "serviceaccounts/token",
        "singularName": "",
        "namespaced": True,
        "group": "authentication.k8s.io",
        "version": "v1",
        "kind": "TokenRequest",
        "verbs": ["create"],
    }
    authz = {r["name"]: r for r in http.get("/apis/authorization.k8s.io/v1").json()["resources"]}
    assert set(authz) == {
        "selfsubjectaccessreviews",
        "selfsubjectrulesreviews",
        "subjectaccessreviews",
        "localsubjectaccessreviews",
    }
    assert all(r["verbs"] == ["create"] for r in authz.values())
    authn = {r["name"] for r in http.get("/apis/authentication.k8s.io/v1").json()["resources"]}
    assert authn == {"selfsubjectreviews", "tokenreviews"}


def test_token_review(http: httpx.Client) -> None:
    create_service_account(http, "runner")
    token = request_token(http, "runner")
    url = "/apis/authentication.k8s.io/v1/tokenreviews"
    ok = http.post(url, json={"kind": "TokenReview", "spec": {"token": token}}).json()["status"]
    assert ok["authenticated"] is True
    assert ok["user"]["username"] == "system:serviceaccount:default:runner"
    bad = http.post(url, json={"kind": "TokenReview", "spec": {"token": token + "x"}}).json()["status"]
    assert bad["authenticated"] is False


@pytest.mark.kubectl
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_create_token_and_whoami(apiserver: ServerThread, http: httpx.Client, tmp_path: Path) -> None:
    """kubectl posts TokenRequest and SelfSubjectReview in protobuf. It sends a kubeconfig's token only
    over TLS (client-go reads user credentials for TLS transports only), so against the plain-http
    sandbox kubectl acts as a ServiceAccount through impersonation (`--as`), as `auth can-i` does."""
    create_service_account(http, "runner")
    env = {**os.environ, "KUBECONFIG": str(apiserver.write_kubeconfig(tmp_path / "admin")),
           "KUBECACHEDIR": str(tmp_path / "cache")}  # fmt: skip

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["kubectl", *args], env=env, text=True, capture_output=True, timeout=30)

    made = kubectl("create", "token", "runner", "--duration=20m")
    assert made.returncode == 0, made.stderr
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    r = http.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", json=review, headers=bearer(made.stdout.strip()))
    assert r.json()["status"]["userInfo"]["username"] == "system:serviceaccount:default:runner"

    jsonpath = "jsonpath={.status.userInfo.username} {.status.userInfo.groups}"
    who = kubectl("auth", "whoami", "-o", jsonpath, "--as=system:serviceaccount:default:runner")
    assert who.returncode == 0, who.stderr
    assert who.stdout == (
        'system:serviceaccount:default:runner ["system:serviceaccounts","system:serviceaccounts:default",'
        '"system:authenticated"]'
    )
    admin = kubectl("auth", "whoami", "-o", jsonpath)
    assert (admin.returncode, admin.stdout) == (0, 'system:admin ["system:masters","system:authenticated"]')
    denied = kubectl("get", "configmaps", "--as=system:serviceaccount:default:runner")
    assert denied.returncode == 1
    assert denied.stderr.strip() == (
        'Error from server (Forbidden): configmaps is forbidden: User "system:serviceaccount:default:runner" '
        'cannot list resource "configmaps" in API group "" in the namespace "default"'
    )
    missing = kubectl("create", "token", "ghost")
    assert missing.returncode == 1
    assert 'serviceaccounts "ghost" not found' in missing.stderr
