"""Deletion: finalizers, ownerReference garbage collection, collections, preconditions, namespaces."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.integration.sandbox.conftest import MV, Client, model_version

CM = "/api/v1/namespaces/default/configmaps"
MERGE = "application/merge-patch+json"


def owned_by(owner: dict[str, Any], name: str, **meta: Any) -> dict[str, Any]:
    ref = {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
           "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}  # fmt: skip
    return {"metadata": {"name": name, "ownerReferences": [ref], **meta}}


async def _gone(http: Client, path: str) -> bool:
    for _ in range(50):
        if (await http.get(path))[0] == 404:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_finalizers_hold_the_delete_until_emptied(http: Client) -> None:
    body = model_version()
    body["metadata"]["finalizers"] = ["modelops.dev/a", "modelops.dev/b"]
    await http.ok("POST", MV, body)
    status, obj = await http.delete(f"{MV}/iris-v1")
    assert status == 202
    assert obj["metadata"]["generation"] == 2  # marking for deletion bumps generation, as kube-apiserver does
    assert obj["metadata"]["deletionTimestamp"]
    assert obj["metadata"]["deletionGracePeriodSeconds"] == 0
    status, out = await http.patch(
        f"{MV}/iris-v1", {"metadata": {"finalizers": ["modelops.dev/a", "modelops.dev/b", "new"]}}
    )
    assert status == 422
    assert "no new finalizers" in out["message"]
    await http.ok("PATCH", f"{MV}/iris-v1", {"metadata": {"finalizers": ["modelops.dev/b"]}}, ctype=MERGE)
    assert (await http.get(f"{MV}/iris-v1"))[0] == 200
    await http.ok("PATCH", f"{MV}/iris-v1", {"metadata": {"finalizers": None}}, ctype=MERGE)
    assert (await http.get(f"{MV}/iris-v1"))[0] == 404


async def test_owner_references_are_garbage_collected_in_cascade(http: Client) -> None:
    owner = await http.ok("POST", MV, model_version())
    child = await http.ok("POST", CM, owned_by(owner, "child"))
    await http.ok("POST", CM, owned_by(child, "grandchild"))
    await http.ok("POST", CM, {"metadata": {"name": "bystander"}})
    await http.ok("DELETE", f"{MV}/iris-v1")
    assert await _gone(http, f"{CM}/child")
    assert await _gone(http, f"{CM}/grandchild")
    assert (await http.get(f"{CM}/bystander"))[0] == 200


async def test_gc_keeps_dependents_with_a_remaining_owner_and_drops_the_dangling_ref(http: Client) -> None:
    a = await http.ok("POST", MV, model_version("a"))
    b = await http.ok("POST", MV, model_version("b"))
    body = owned_by(a, "shared")
    body["metadata"]["ownerReferences"].append(
        owned_by(b, "x")["metadata"]["ownerReferences"][0] | {"controller": False}
    )
    await http.ok("POST", CM, body)
    await http.ok("DELETE", f"{MV}/a")
    for _ in range(50):
        obj = await http.ok("GET", f"{CM}/shared")
        if len(obj["metadata"]["ownerReferences"]) == 1:
            break
        await asyncio.sleep(0.02)
    assert [r["name"] for r in obj["metadata"]["ownerReferences"]] == ["b"]


async def test_dependent_of_a_missing_owner_is_collected(http: Client) -> None:
    ghost = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ghost", "uid": "00000000-0000-0000-0000-000000000000"},
    }
    await http.ok("POST", CM, owned_by(ghost, "orphan"))
    assert await _gone(http, f"{CM}/orphan")


async def _owner_ref_warnings(http: Client, namespace: str, name: str) -> list[dict[str, Any]]:
    path = f"/api/v1/namespaces/{namespace}/events"
    for _ in range(50):
        events = (await http.ok("GET", path, fieldSelector="reason=OwnerRefInvalidNamespace"))["items"]
        found = [e for e in events if e["involvedObject"]["name"] == name]
        if found:
            return found
        await asyncio.sleep(0.02)
    return []


async def test_a_namespaced_owner_in_another_namespace_counts_as_absent(http: Client) -> None:
    """kube's rule: an owner reference names no namespace, so a namespaced owner must be in the
    dependent's namespace; one elsewhere is absent, the dependent is collected (and warned about)."""
    await http.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "other"}})
    other = "/api/v1/namespaces/other/configmaps"
    owner = await http.ok("POST", other, {"metadata": {"name": "owner"}})
    owner |= {"apiVersion": "v1", "kind": "ConfigMap"}
    await http.ok("POST", other, owned_by(owner, "same-namespace"))
    await http.ok("POST", CM, owned_by(owner, "cross-namespace"))
    assert await _gone(http, f"{CM}/cross-namespace")
    (warning,) = await _owner_ref_warnings(http, "default", "cross-namespace")
    assert warning["type"] == "Warning"
    assert warning["involvedObject"]["namespace"] == "default"
    assert (await http.get(f"{other}/same-namespace"))[0] == 200  # its collection pass ran first
    assert (await http.get(f"{other}/owner"))[0] == 200


async def test_a_cluster_scoped_dependent_of_a_namespaced_owner_is_never_collected(http: Client) -> None:
    """The reference cannot resolve (a cluster-scoped object has no namespace to look in): kube
    warns and leaves the dependent, whether the owner exists or not."""
    owner = await http.ok("POST", CM, {"metadata": {"name": "owner"}})
    owner |= {"apiVersion": "v1", "kind": "ConfigMap"}
    roles = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
    await http.ok("POST", roles, owned_by(owner, "unresolvable"))
    (warning,) = await _owner_ref_warnings(http, "default", "unresolvable")
    assert "cluster-scoped" in warning["message"]
    await http.ok("DELETE", f"{CM}/owner")
    assert not await _gone(http, f"{roles}/unresolvable")


async def test_orphan_and_foreground_propagation(http: Client) -> None:
    owner = await http.ok("POST", MV, model_version("a"))
    await http.ok("POST", CM, owned_by(owner, "kept"))
    await http.ok("DELETE", f"{MV}/a", {"propagationPolicy": "Orphan"})
    await asyncio.sleep(0.05)
    kept = await http.ok("GET", f"{CM}/kept")
    assert "ownerReferences" not in kept["metadata"]
    owner = await http.ok("POST", MV, model_version("b"))
    await http.ok("POST", CM, owned_by(owner, "dep"))
    status, obj = await http.delete(f"{MV}/b", propagationPolicy="Foreground")
    assert status == 202
    assert "foregroundDeletion" in obj["metadata"]["finalizers"]
    assert await _gone(http, f"{CM}/dep")
    assert await _gone(http, f"{MV}/b")


async def test_delete_collection_with_selector(http: Client) -> None:
    for name, app in (("a", "x"), ("b", "x"), ("c", "y")):
        await http.ok("POST", CM, {"metadata": {"name": name, "labels": {"app": app}}})
    out = await http.ok("DELETE", CM, labelSelector="app=x")
    assert sorted(i["metadata"]["name"] for i in out["items"]) == ["a", "b"]
    left = await http.ok("GET", CM)
    assert [i["metadata"]["name"] for i in left["items"]] == ["c"]


async def test_delete_preconditions(http: Client) -> None:
    obj = await http.ok("POST", CM, {"metadata": {"name": "a"}})
    status, out = await http.delete(f"{CM}/a", {"preconditions": {"uid": "wrong"}})
    assert status == 409
    assert "Precondition failed: UID in precondition: wrong" in out["message"]
    status, out = await http.delete(f"{CM}/a", {"preconditions": {"resourceVersion": "1"}})
    assert status == 409
    await http.ok("DELETE", f"{CM}/a", {"preconditions": obj["metadata"] | {}})
    assert (await http.delete(f"{CM}/a"))[0] == 404


async def test_namespace_deletion_removes_its_contents(http: Client) -> None:
    await http.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "tmp"}})
    await http.ok("POST", "/api/v1/namespaces/tmp/configmaps", {"metadata": {"name": "a"}})
    body = model_version()
    body["metadata"]["finalizers"] = ["hold"]
    await http.ok("POST", "/apis/modelops.dev/v1alpha1/namespaces/tmp/modelversions", body)
    status, ns = await http.delete("/api/v1/namespaces/tmp")
    assert status == 202
    assert ns["status"]["phase"] == "Terminating"
    assert await _gone(http, "/api/v1/namespaces/tmp/configmaps/a")
    status, _out = await http.post("/api/v1/namespaces/tmp/configmaps", {"metadata": {"name": "b"}})
    assert status == 403
    assert (await http.get("/api/v1/namespaces/tmp"))[0] == 200  # held by the finalizer of its last object
    await http.ok(
        "PATCH",
        "/apis/modelops.dev/v1alpha1/namespaces/tmp/modelversions/iris-v1",
        {"metadata": {"finalizers": None}},
        ctype=MERGE,
    )
    assert await _gone(http, "/api/v1/namespaces/tmp")
