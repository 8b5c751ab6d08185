"""Server-side apply with field ownership over HTTP, as kube-apiserver answers it: managedFields on
every write, conflicts between managers (409 naming field and manager), force, removal of fields an
applier stops sending, list merge by key, status ownership; the Python client, the real operator
archiving a version a GitOps tool applied, and the real kubectl."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from modelops.k8s.resources import MODEL_VERSION, CustomObjects
from modelops.sandbox import ServerThread
from tests.integration.registry.conftest import wait_for
from tests.integration.sandbox.conftest import MV, Client, model_version
from tests.support.apiserver import CRDS

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
CM = "/api/v1/namespaces/default/configmaps"
DEP = "/apis/apps/v1/namespaces/default/deployments"
GROUP_VERSION = "modelops.dev/v1alpha1"
Obj = dict[str, Any]


def fields(obj: Obj, manager: str, operation: str = "Apply", subresource: str | None = None) -> Obj:
    """The fieldsV1 of one managedFields entry (KeyError when the manager owns nothing)."""
    for entry in obj["metadata"].get("managedFields") or []:
        if (entry.get("manager"), entry["operation"], entry.get("subresource")) == (manager, operation, subresource):
            return dict(entry["fieldsV1"])
    raise KeyError(f"{manager}/{operation}: {[e.get('manager') for e in obj['metadata'].get('managedFields', [])]}")


def managers(obj: Obj) -> list[tuple[str, str]]:
    return [(e.get("manager", ""), e["operation"]) for e in obj["metadata"].get("managedFields") or []]


def main_managers(obj: Obj) -> list[tuple[str, str]]:
    """Managers of the resource itself (not of its status subresource)."""
    entries = obj["metadata"].get("managedFields") or []
    return [(e.get("manager", ""), e["operation"]) for e in entries if not e.get("subresource")]


def configmap(**data: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": data}


def deployment(*containers: str) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": n, "image": f"{n}:1"} for n in containers]},
            },
        },
    }


async def test_every_write_records_its_manager_from_field_manager_or_user_agent(http: Client) -> None:
    created = await http.ok("POST", CM, configmap(a="1"), fieldManager="creator")
    assert created["metadata"]["managedFields"] == [
        {
            "manager": "creator",
            "operation": "Update",
            "apiVersion": "v1",
            "time": created["metadata"]["creationTimestamp"],
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}, "f:a": {}}},
        }
    ]
    headers = {"Content-Type": MERGE, "User-Agent": "kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd"}
    async with http.session.patch(f"{http.base}{CM}/settings", data='{"data":{"a":"2","b":"3"}}', headers=headers) as r:
        patched = await r.json()
    assert managers(patched) == [("creator", "Update"), ("kubectl", "Update")]
    assert fields(patched, "creator", "Update") == {"f:data": {}}  # it lost "a" to kubectl, keeps the map itself
    assert fields(patched, "kubectl", "Update") == {"f:data": {"f:a": {}, "f:b": {}}}

    replaced = await http.ok("PUT", f"{CM}/settings", {**patched, "data": {"a": "2", "b": "3", "c": "4"}})
    assert fields(replaced, "Python", "Update") == {"f:data": {"f:c": {}}}  # aiohttp's "Python/3.x aiohttp/..."
    again = await http.ok("PUT", f"{CM}/settings", replaced)
    assert again["metadata"]["resourceVersion"] == replaced["metadata"]["resourceVersion"]  # no change, no write


async def test_an_apply_changing_another_managers_field_is_a_409_naming_field_and_manager(http: Client) -> None:
    status, created = await http.patch(f"{CM}/settings", configmap(a="1", b="1"), APPLY, fieldManager="gitops")
    assert status == 201
    assert fields(created, "gitops") == {"f:data": {"f:a": {}, "f:b": {}}}
    await http.ok("PATCH", f"{CM}/settings", {"data": {"a": "edited"}}, ctype=MERGE, fieldManager="kubectl-edit")

    status, out = await http.patch(f"{CM}/settings", configmap(a="1", b="1"), APPLY, fieldManager="gitops")
    assert status == 409
    assert out == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .data.a',
        "reason": "Conflict",
        "details": {
            "causes": [
                {
                    "reason": "FieldManagerConflict",
                    "message": 'conflict with "kubectl-edit" using v1',
                    "field": ".data.a",
                }
            ]
        },
        "code": 409,
    }

    status, out = await http.patch(f"{CM}/settings", configmap(a="2", b="2"), APPLY, fieldManager="other")
    assert status == 409
    assert out["message"] == (
        'Apply failed with 2 conflicts: conflicts with "gitops":\n- .data.b\nconflicts with "kubectl-edit" using v1:\n- .data.a'
    )
    assert [c["field"] for c in out["details"]["causes"]] == [".data.b", ".data.a"]


async def test_the_same_value_is_co_owned_and_force_takes_ownership(http: Client) -> None:
    first = (await http.patch(f"{CM}/settings", configmap(a="1"), APPLY, fieldManager="first"))[1]
    shared = await http.ok("PATCH", f"{CM}/settings", configmap(a="1"), ctype=APPLY, fieldManager="second")
    assert managers(shared) == [("second", "Apply"), ("first", "Apply")]  # no time (nothing changed) sorts first
    assert fields(shared, "first") == fields(shared, "second") == {"f:data": {"f:a": {}}}
    assert int(shared["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])  # ownership changed

    status, _ = await http.patch(f"{CM}/settings", configmap(a="2"), APPLY, fieldManager="second")
    assert status == 409
    forced = await http.ok(
        "PATCH", f"{CM}/settings", configmap(a="2"), ctype=APPLY, fieldManager="second", force="true"
    )
    assert forced["data"] == {"a": "2"}
    assert managers(forced) == [("second", "Apply")]  # "first" owned nothing else: its entry is gone


async def test_a_field_the_applier_stops_sending_is_removed_unless_co_owned(http: Client) -> None:
    await http.patch(f"{CM}/settings", configmap(a="1", b="1", c="1"), APPLY, fieldManager="gitops")
    await http.ok("PATCH", f"{CM}/settings", configmap(c="1"), ctype=APPLY, fieldManager="other")
    await http.ok("PATCH", f"{CM}/settings", {"data": {"d": "1"}}, ctype=MERGE, fieldManager="editor")
    out = await http.ok("PATCH", f"{CM}/settings", configmap(a="1"), ctype=APPLY, fieldManager="gitops")
    assert out["data"] == {"a": "1", "c": "1", "d": "1"}  # b went; c is co-owned; d was never gitops'

    noop = await http.ok("PATCH", f"{CM}/settings", configmap(a="1"), ctype=APPLY, fieldManager="gitops")
    assert noop["metadata"]["resourceVersion"] == out["metadata"]["resourceVersion"]  # nothing new: no write
    assert noop["metadata"]["managedFields"] == out["metadata"]["managedFields"]


async def test_containers_merge_by_name_between_managers(http: Client) -> None:
    await http.patch(f"{DEP}/web", deployment("app"), APPLY, fieldManager="gitops")
    sidecar: Obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                    "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "side:1"}]}}}}  # fmt: skip
    both = await http.ok("PATCH", f"{DEP}/web", sidecar, ctype=APPLY, fieldManager="injector")
    assert [c["name"] for c in both["spec"]["template"]["spec"]["containers"]] == ["app", "sidecar"]
    assert fields(both, "injector")["f:spec"]["f:template"]["f:spec"] == {
        "f:containers": {'k:{"name":"sidecar"}': {".": {}, "f:image": {}, "f:name": {}}}
    }

    sidecar["spec"]["template"]["spec"]["containers"].append({"name": "app", "image": "app:2"})
    status, out = await http.patch(f"{DEP}/web", sidecar, APPLY, fieldManager="injector")
    assert status == 409
    assert out["message"] == (
        'Apply failed with 1 conflict: conflict with "gitops": .spec.template.spec.containers[name="app"].image'
    )

    out = await http.ok("PATCH", f"{DEP}/web", deployment("web"), ctype=APPLY, fieldManager="gitops")
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["sidecar", "web"]


async def test_status_is_owned_through_the_status_subresource(http: Client) -> None:
    await http.ok("POST", MV, model_version(), fieldManager="registrar")
    status_patch = {"status": {"phase": "Verified"}}
    patched = await http.ok("PATCH", f"{MV}/iris-v1/status", status_patch, ctype=MERGE, fieldManager="modelops")
    assert fields(patched, "modelops", "Update", "status") == {"f:status": {".": {}, "f:phase": {}}}
    assert "f:status" not in fields(patched, "registrar", "Update")

    config = {"apiVersion": GROUP_VERSION, "kind": "ModelVersion", "metadata": {"name": "iris-v1"},
              "status": {"phase": "Failed"}}  # fmt: skip
    status, out = await http.patch(f"{MV}/iris-v1/status", config, APPLY, fieldManager="tester")
    assert status == 409
    assert out["message"] == (
        'Apply failed with 1 conflict: conflict with "modelops" with subresource "status" '
        "using modelops.dev/v1alpha1: .status.phase"
    )
    # through the main resource, status is not the applier's: no conflict, nothing owned, nothing changed
    main = await http.ok("PATCH", f"{MV}/iris-v1", config, ctype=APPLY, fieldManager="tester")
    assert main["status"]["phase"] == "Verified"
    assert ("tester", "Apply") not in managers(main)


async def test_apply_is_validated_and_defaulted_like_every_write(http: Client) -> None:
    body = model_version(params={"lr": "0.1"})
    status, created = await http.patch(f"{MV}/iris-v1", body, APPLY, fieldManager="gitops")
    assert status == 201
    assert created["spec"]["artifact"]["format"] == "joblib"  # defaulted, and owned by nobody:
    assert fields(created, "gitops")["f:spec"]["f:artifact"] == {"f:digest": {}, "f:uri": {}}

    bad = model_version(params={"lr": "0.1"})
    bad["spec"]["artifact"]["digest"] = "md5:x"
    status, out = await http.patch(f"{MV}/iris-v1", bad, APPLY, fieldManager="gitops")
    assert status == 422
    assert out["message"].startswith('ModelVersion.modelops.dev "iris-v1" is invalid: ')
    assert "spec.artifact.digest in body should match '^sha256:[a-f0-9]{64}$'" in out["message"]

    dropped = model_version()  # without params: apply removes them, and CEL says params are immutable
    status, out = await http.patch(f"{MV}/iris-v1", dropped, APPLY, fieldManager="gitops")
    assert status == 422
    assert 'spec.params: Invalid value: "object": params is immutable' in out["message"]

    staged = model_version(params={"lr": "0.1"}, stage="Staging")
    dry = await http.ok("PATCH", f"{MV}/iris-v1", staged, ctype=APPLY, fieldManager="gitops", dryRun="All")
    assert dry["spec"]["stage"] == "Staging"
    assert "f:stage" in fields(dry, "gitops")["f:spec"]
    got = await http.ok("GET", f"{MV}/iris-v1")
    assert got["spec"]["stage"] == "None"
    assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


@pytest.mark.parametrize(
    ("ctype", "body", "params", "code", "message"),
    [
        (APPLY, configmap(a="1"), {}, 422,
         'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'),
        (APPLY, {**configmap(a="1"), "metadata": {"name": "settings", "managedFields": []}}, {"fieldManager": "x"},
         400, "metadata.managedFields must be nil"),
        (APPLY, {**configmap(a="1"), "apiVersion": "v2"}, {"fieldManager": "x"}, 400,
         "Incorrect version specified in apply patch. Specified patch version: v2, expected: v1"),
        (MERGE, {"data": {"a": "1"}}, {"force": "true"}, 422,
         'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch'),
        (MERGE, {"data": {"a": "1"}}, {"fieldManager": "m" * 129}, 422,
         'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Too long: may not be more than 128 bytes'),
    ],
)  # fmt: skip
async def test_apply_requests_are_checked_as_kube_apiserver_checks_them(
    http: Client, ctype: str, body: Obj, params: dict[str, str], code: int, message: str
) -> None:
    await http.ok("POST", CM, configmap(a="0"))
    status, out = await http.patch(f"{CM}/settings", body, ctype, **params)
    assert (status, out["message"]) == (code, message)


async def test_an_apply_with_duplicate_list_keys_fails_as_kube_apiserver_does(http: Client) -> None:
    await http.patch(f"{DEP}/web", deployment("app"), APPLY, fieldManager="gitops")
    dup = deployment("app")
    dup["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}, {"name": "A"}]
    status, out = await http.patch(f"{DEP}/web", dup, APPLY, fieldManager="gitops")
    assert (status, out["message"]) == (
        500,
        "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
        '.spec.template.spec.containers[name="app"].env: duplicate entries for key [name="A"]',
    )


async def test_managed_fields_can_be_rewritten_and_reset_by_a_patch(http: Client) -> None:
    await http.patch(f"{CM}/settings", configmap(a="1"), APPLY, fieldManager="gitops")
    rename = [{"op": "replace", "path": "/metadata/managedFields/0/manager", "value": "flux"}]
    out = await http.ok("PATCH", f"{CM}/settings", rename, ctype="application/json-patch+json")
    assert managers(out) == [("flux", "Apply")]
    out = await http.ok("PATCH", f"{CM}/settings", {"metadata": {"managedFields": [{}]}}, ctype=MERGE)
    assert "managedFields" not in out["metadata"]


def test_the_python_client_is_recorded_as_openapi_generator(k8s_api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s_api_client)
    core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"), data={"a": "1"})
    )
    read = core.patch_namespaced_config_map("c", "default", {"data": {"b": "2"}})
    entries = read.metadata.managed_fields if read.metadata else None
    assert [(m.manager, m.operation) for m in entries or []] == [("OpenAPI-Generator", "Update")]
    assert entries[0].fields_v1 == {"f:data": {".": {}, "f:a": {}, "f:b": {}}}  # type: ignore[index]


# -- the case that matters to users: GitOps applies what the operator changed -------------------


def gitops_apply(url: str, body: Obj, force: bool = False) -> tuple[int, Obj]:
    """A server-side apply as a GitOps tool sends it (Argo CD: fieldManager=argocd-controller)."""
    query = "fieldManager=argocd-controller" + ("&force=true" if force else "")
    name = body["metadata"]["name"]
    req = urllib.request.Request(
        f"{url}/apis/modelops.dev/v1alpha1/namespaces/default/modelversions/{name}?{query}",
        data=json.dumps(body).encode(),
        method="PATCH",
        headers={"Content-Type": APPLY, "User-Agent": "argocd-application-controller/v2.13"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def registered(name: str, version: str, tmp: Path) -> Obj:
    data = f"model {name}".encode()
    path = tmp / f"{name}.joblib"
    path.write_bytes(data)
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {
            "modelName": "churn",
            "version": version,
            "artifact": {"uri": path.as_uri(), "digest": "sha256:" + hashlib.sha256(data).hexdigest()},
            "stage": "Production",
            "approval": {"approvedBy": "alice", "approvedAt": "2024-01-01T00:00:00Z", "reason": "offline eval"},
        },
    }


@pytest.mark.usefixtures("operator")
def test_gitops_reapplying_a_version_the_operator_archived_conflicts_until_forced(
    apiserver: ServerThread, custom_objects: CustomObjects, tmp_path: Path
) -> None:
    v1, v2 = registered("churn-v1", "1", tmp_path), registered("churn-v2", "2", tmp_path)
    assert gitops_apply(apiserver.url, v1)[0] == 201
    wait_for(custom_objects, "churn-v1", lambda o: (o.get("status") or {}).get("stage") == "Production")
    assert gitops_apply(apiserver.url, v2)[0] == 201  # the operator archives v1: spec.stage = Archived
    archived = wait_for(custom_objects, "churn-v1", lambda o: o["spec"]["stage"] == "Archived")
    assert fields(archived, "modelops-operator", "Update") == {"f:spec": {"f:stage": {}}}
    assert "f:stage" not in fields(archived, "argocd-controller")["f:spec"]

    status, out = gitops_apply(apiserver.url, v1)  # the unchanged manifest from git
    assert status == 409
    assert out["message"] == (
        'Apply failed with 1 conflict: conflict with "modelops-operator" using modelops.dev/v1alpha1: .spec.stage'
    )
    assert out["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "modelops-operator" using modelops.dev/v1alpha1',
         "field": ".spec.stage"}
    ]  # fmt: skip
    assert custom_objects.get(MODEL_VERSION, "default", "churn-v1")["spec"]["stage"] == "Archived"

    status, forced = gitops_apply(apiserver.url, v1, force=True)
    assert status == 200
    assert forced["spec"]["stage"] == "Production"
    assert "f:stage" in fields(forced, "argocd-controller")["f:spec"]
    assert ("modelops-operator", "Update") not in main_managers(forced)  # it owned nothing else but status


# -- the real kubectl ----------------------------------------------------------------------------

MANIFEST = """
apiVersion: modelops.dev/v1alpha1
kind: ModelVersion
metadata:
  name: iris-v1
spec:
  modelName: iris
  version: "1"
  stage: Staging
  artifact:
    uri: file:///tmp/model.joblib
    digest: sha256:{digest}
""".format(digest="a" * 64)


@pytest.fixture
def kubectl(tmp_path: Path) -> Iterator[Any]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    with ServerThread(port=0, crds=[CRDS]) as server:
        env = {**os.environ, "KUBECONFIG": str(server.write_kubeconfig(tmp_path / "kubeconfig")),
               "KUBECACHEDIR": str(tmp_path / "cache")}  # fmt: skip

        def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
            return subprocess.run(["kubectl", *args], env=env, input=stdin, text=True, capture_output=True, timeout=30)

        yield run


@pytest.mark.kubectl
@pytest.mark.timeout(60)
def test_kubectl_apply_server_side_shows_owners_and_conflicts(kubectl: Any) -> None:
    out = kubectl("apply", "--server-side", "-f", "-", stdin=MANIFEST)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "modelversion.modelops.dev/iris-v1 serverside-applied"
    live = yaml.safe_load(kubectl("get", "mv", "iris-v1", "-o", "yaml", "--show-managed-fields").stdout)
    assert managers(live) == [("kubectl", "Apply")]
    assert fields(live, "kubectl")["f:spec"]["f:stage"] == {}

    assert kubectl("patch", "mv", "iris-v1", "--type=merge", "-p", '{"spec":{"stage":"Production"}}').returncode == 0
    out = kubectl("apply", "--server-side", "-f", "-", stdin=MANIFEST)
    assert out.returncode == 1
    assert out.stderr.startswith(
        'error: Apply failed with 1 conflict: conflict with "kubectl-patch" using modelops.dev/v1alpha1: .spec.stage\n'
        "Please review the fields above--they currently have other managers."
    )

    out = kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=MANIFEST)
    assert out.returncode == 0, out.stderr
    live = yaml.safe_load(kubectl("get", "mv", "iris-v1", "-o", "yaml", "--show-managed-fields").stdout)
    assert live["spec"]["stage"] == "Staging"
    assert managers(live) == [("kubectl", "Apply")]  # kubectl-patch owned only spec.stage
