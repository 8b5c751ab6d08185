"""Object metadata kept as kube-apiserver keeps it: uid, timestamps, resourceVersion, generation, names."""

from __future__ import annotations

import re

import pytest
from kubernetes import client

from tests.integration.sandbox.conftest import MV, Client, model_version, widget

W = "/apis/test.modelops.dev/v1/namespaces/default/widgets"


async def test_create_sets_uid_timestamp_resource_version_generation(http: Client) -> None:
    status, obj = await http.post(MV, model_version())
    assert status == 201
    meta = obj["metadata"]
    assert re.fullmatch(r"[0-9a-f-]{36}", meta["uid"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert isinstance(meta["resourceVersion"], str)
    assert int(meta["resourceVersion"]) > 0
    assert meta["generation"] == 1
    assert meta["namespace"] == "default"  # taken from the URL


async def test_resource_version_is_global_monotonic_and_changes_on_every_write(http: Client) -> None:
    a = await http.ok("POST", MV, model_version("a"))
    b = await http.ok("POST", MV, model_version("b"))
    assert int(b["metadata"]["resourceVersion"]) > int(a["metadata"]["resourceVersion"])
    c = await http.ok("PATCH", f"{MV}/a", {"metadata": {"labels": {"x": "1"}}}, ctype="application/merge-patch+json")
    assert int(c["metadata"]["resourceVersion"]) > int(b["metadata"]["resourceVersion"])
    # a no-op write is not a write: kube-apiserver does not bump resourceVersion or notify watchers
    d = await http.ok("PATCH", f"{MV}/a", {"metadata": {"labels": {"x": "1"}}}, ctype="application/merge-patch+json")
    assert d["metadata"]["resourceVersion"] == c["metadata"]["resourceVersion"]


async def test_generation_bumps_on_spec_changes_only(http: Client) -> None:
    await http.post(MV, model_version())
    obj = await http.ok(
        "PATCH", f"{MV}/iris-v1", {"metadata": {"labels": {"a": "b"}}}, ctype="application/merge-patch+json"
    )
    assert obj["metadata"]["generation"] == 1
    obj = await http.ok(
        "PATCH", f"{MV}/iris-v1/status", {"status": {"phase": "Verified"}}, ctype="application/merge-patch+json"
    )
    assert obj["metadata"]["generation"] == 1
    obj = await http.ok("PATCH", f"{MV}/iris-v1", {"spec": {"stage": "Staging"}}, ctype="application/merge-patch+json")
    assert obj["metadata"]["generation"] == 2


async def test_generation_for_builtins(http: Client) -> None:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "c", "image": "a"}]}}}}  # fmt: skip
    path = "/apis/apps/v1/namespaces/default/deployments"
    obj = await http.ok("POST", path, deploy)
    assert obj["metadata"]["generation"] == 1
    obj = await http.ok("PATCH", f"{path}/web", {"spec": {"replicas": 3}}, ctype="application/merge-patch+json")
    assert obj["metadata"]["generation"] == 2
    obj = await http.ok(
        "PATCH", f"{path}/web/status", {"status": {"readyReplicas": 3}}, ctype="application/merge-patch+json"
    )
    assert obj["metadata"]["generation"] == 2
    cm = await http.ok("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    assert "generation" not in cm["metadata"]


async def test_generate_name(http: Client) -> None:
    body = model_version()
    body["metadata"] = {"generateName": "iris-"}
    names = {(await http.ok("POST", MV, body))["metadata"]["name"] for _ in range(5)}
    assert len(names) == 5
    assert all(re.fullmatch(r"iris-[a-z0-9]{5}", n) for n in names)
    status, out = await http.post(MV, {**body, "metadata": {}})
    assert status == 422
    assert out["details"]["causes"][0]["field"] == "metadata.name"


async def test_namespace_mismatch_and_missing_namespace(http: Client) -> None:
    body = model_version()
    body["metadata"]["namespace"] = "other"
    status, out = await http.post(MV, body)
    assert status == 400
    assert "does not match the namespace" in out["message"]
    status, out = await http.post(MV.replace("/default/", "/nope/"), model_version())
    assert status == 404
    assert out["message"] == 'namespaces "nope" not found'


async def test_already_exists_and_invalid_name(http: Client) -> None:
    await http.post(MV, model_version())
    status, out = await http.post(MV, model_version())
    assert status == 409
    assert out["reason"] == "AlreadyExists"
    assert out["message"] == 'modelversions.modelops.dev "iris-v1" already exists'
    status, out = await http.post(MV, model_version("Not_Valid"))
    assert status == 422
    assert out["details"]["causes"][0]["field"] == "metadata.name"


async def test_namespaces(http: Client) -> None:
    names = {n["metadata"]["name"] for n in (await http.ok("GET", "/api/v1/namespaces"))["items"]}
    assert {"default", "kube-system"} <= names
    ns = await http.ok(
        "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    )
    assert ns["status"]["phase"] == "Active"
    assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == "team-a"
    got = await http.ok("GET", "/api/v1/namespaces/team-a")
    assert got["metadata"]["uid"] == ns["metadata"]["uid"]
    await http.ok("POST", "/apis/test.modelops.dev/v1/namespaces/team-a/widgets", widget())


def test_python_client_crud(k8s_api_client: client.ApiClient) -> None:
    """The sync kubernetes client (what scripts and the demo use) against the threaded server."""
    core = client.CoreV1Api(k8s_api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py")))
    cm = core.create_namespaced_config_map(
        "py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"), data={"a": "1"})
    )
    assert cm.metadata.uid
    assert cm.metadata.resource_version
    cm.data["a"] = "2"
    replaced = core.replace_namespaced_config_map("c", "py", cm)
    assert replaced.data == {"a": "2"}
    assert int(replaced.metadata.resource_version) > int(cm.metadata.resource_version)
    with pytest.raises(client.ApiException) as exc:
        core.replace_namespaced_config_map("c", "py", cm)  # stale resourceVersion
    assert exc.value.status == 409
    custom = client.CustomObjectsApi(k8s_api_client)
    body = model_version()
    created = custom.create_namespaced_custom_object("modelops.dev", "v1alpha1", "py", "modelversions", body)
    assert created["spec"]["artifact"]["format"] == "joblib"  # defaulted from the CRD schema
    listed = custom.list_cluster_custom_object("modelops.dev", "v1alpha1", "modelversions")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["iris-v1"]
    apps = client.AppsV1Api(k8s_api_client)
    dep = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="img:1")]),
            ),
        ),
    )
    apps.create_namespaced_deployment("py", dep)
    patched = apps.patch_namespaced_deployment(
        "web", "py", {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "img:2"}]}}}}
    )
    assert patched.spec.template.spec.containers[0].image == "img:2"
    assert patched.metadata.generation == 2


@pytest.mark.parametrize(
    ("path", "body", "field", "fragment"),
    [
        (
            "/api/v1/namespaces/default/configmaps",
            {"metadata": {"name": "c", "labels": {"version": "1.0+build"}}},
            "metadata.labels",
            "a valid label must be an empty string",
        ),
        (
            "/api/v1/namespaces/default/configmaps",
            {"metadata": {"name": "c", "labels": {"v": "x" * 64}}},
            "metadata.labels",
            "must be no more than 63 characters",
        ),
        (
            "/api/v1/namespaces/default/configmaps",
            {"metadata": {"name": "c", "annotations": {"bad key": "v"}}},
            "metadata.annotations",
            "name part must consist of alphanumeric characters",
        ),
        (
            "/api/v1/namespaces/default/services",
            {"metadata": {"name": "1-model"}, "spec": {}},
            "metadata.name",
            "a DNS-1035 label must consist of lower case alphanumeric characters",
        ),
        (
            "/apis/batch/v1/namespaces/default/cronjobs",
            {"metadata": {"name": "d" * 53}, "spec": {}},
            "metadata.name",
            "must be no more than 52 characters",
        ),
        (
            "/api/v1/namespaces/default/configmaps",
            {"metadata": {"name": "c", "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "a", "uid": "1", "controller": True},
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "b", "uid": "2", "controller": True}]}},
            "metadata.ownerReferences",
            "Only one reference can have Controller set to true",
        ),
        (
            "/api/v1/namespaces/default/events",
            {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "other"}},
            "involvedObject.namespace",
            "does not match event.namespace",
        ),
    ],
)  # fmt: skip
async def test_object_meta_validation(http: Client, path: str, body: dict, field: str, fragment: str) -> None:
    status, out = await http.post(path, body)
    assert status == 422, out
    assert out["details"]["causes"][0]["field"] == field
    assert fragment in out["details"]["causes"][0]["message"]


async def test_label_validation_on_update(http: Client) -> None:
    await http.ok("POST", MV, model_version())
    status, out = await http.patch(f"{MV}/iris-v1", {"metadata": {"labels": {"modelops.dev/version": "v 2"}}})
    assert status == 422
    assert out["message"].startswith(
        'ModelVersion.modelops.dev "iris-v1" is invalid: metadata.labels: Invalid value: "v 2"'
    )
