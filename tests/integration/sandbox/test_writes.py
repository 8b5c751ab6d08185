"""Updates as kube-apiserver does them: PUT, the three patch types, apply, status isolation, dry-run."""

from __future__ import annotations

from tests.integration.sandbox.conftest import MV, Client, model_version

DEP = "/apis/apps/v1/namespaces/default/deployments"
MERGE = "application/merge-patch+json"
JSONP = "application/json-patch+json"
SMP = "application/strategic-merge-patch+json"


def deployment() -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "app:1",
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        },
                        {"name": "sidecar", "image": "side:1"},
                    ],
                    "volumes": [{"name": "v1", "emptyDir": {}}],
                },
            },
        },
    }


async def test_put_replaces_and_stale_resource_version_conflicts(http: Client) -> None:
    obj = await http.ok("POST", MV, model_version())
    obj["metadata"]["labels"] = {"a": "b"}
    new = await http.ok("PUT", f"{MV}/iris-v1", obj)
    assert new["metadata"]["labels"] == {"a": "b"}
    status, out = await http.put(f"{MV}/iris-v1", obj)  # obj still carries the old resourceVersion
    assert status == 409
    assert out["reason"] == "Conflict"
    assert "the object has been modified" in out["message"]
    status, out = await http.put(f"{MV}/iris-v1", {**obj, "metadata": {**new["metadata"], "uid": "other"}})
    assert status == 409
    assert "Precondition failed: UID in precondition: other" in out["message"]
    del obj["metadata"]["resourceVersion"]
    status, out = await http.put(f"{MV}/iris-v1", obj)  # custom resources need it on PUT
    assert status == 422


async def test_patch_with_stale_resource_version_conflicts(http: Client) -> None:
    obj = await http.ok("POST", MV, model_version())
    rv = obj["metadata"]["resourceVersion"]
    await http.ok("PATCH", f"{MV}/iris-v1", {"metadata": {"resourceVersion": rv, "labels": {"a": "1"}}}, ctype=MERGE)
    status, _out = await http.patch(f"{MV}/iris-v1", {"metadata": {"resourceVersion": rv, "labels": {"a": "2"}}})
    assert status == 409


async def test_json_patch_and_failed_test_is_422(http: Client) -> None:
    obj = await http.ok("POST", MV, model_version())
    rv = obj["metadata"]["resourceVersion"]
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x.dev/f"]},
        {"op": "replace", "path": "/spec/stage", "value": "Staging"},
    ]
    new = await http.ok("PATCH", f"{MV}/iris-v1", ops, ctype=JSONP)
    assert new["metadata"]["finalizers"] == ["x.dev/f"]
    assert new["spec"]["stage"] == "Staging"
    status, out = await http.patch(f"{MV}/iris-v1", ops, ctype=JSONP)  # the test op now fails
    assert status == 422
    assert out["kind"] == "Status"
    status, _ = await http.patch(f"{MV}/iris-v1", [{"op": "remove", "path": "/spec/nope"}], ctype=JSONP)
    assert status == 422
    status, _ = await http.patch(f"{MV}/iris-v1", [{"op": "frobnicate", "path": "/spec"}], ctype=JSONP)
    assert status == 400


async def test_strategic_merge_patch_merges_lists_by_name(http: Client) -> None:
    await http.ok("POST", DEP, deployment())
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "app:2",
                            "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}],
                        }
                    ],
                    "volumes": [{"name": "v2", "emptyDir": {}}],
                }
            }
        }
    }
    obj = await http.ok("PATCH", f"{DEP}/web", patch, ctype=SMP)
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app", "sidecar"]
    assert containers[0]["image"] == "app:2"
    assert containers[0]["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "20"},
        {"name": "C", "value": "3"},
    ]
    assert [v["name"] for v in obj["spec"]["template"]["spec"]["volumes"]] == ["v1", "v2"]
    delete = {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}
    obj = await http.ok("PATCH", f"{DEP}/web", delete, ctype=SMP)
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["app"]
    # a JSON merge patch replaces lists whole
    obj = await http.ok(
        "PATCH",
        f"{DEP}/web",
        {"spec": {"template": {"spec": {"containers": [{"name": "x", "image": "x"}]}}}},
        ctype=MERGE,
    )
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["x"]


async def test_strategic_merge_patch_is_415_for_custom_resources(http: Client) -> None:
    await http.ok("POST", MV, model_version())
    status, out = await http.patch(f"{MV}/iris-v1", {"spec": {"stage": "Staging"}}, ctype=SMP)
    assert status == 415
    assert out["reason"] == "UnsupportedMediaType"


async def test_status_subresource_is_isolated_both_ways(http: Client) -> None:
    body = model_version()
    body["status"] = {"phase": "Verified"}
    obj = await http.ok("POST", MV, body)
    assert "status" not in obj  # create cannot set status
    obj = await http.ok(
        "PATCH", f"{MV}/iris-v1/status", {"spec": {"stage": "Production"}, "status": {"phase": "Verified"}}, ctype=MERGE
    )
    assert obj["status"]["phase"] == "Verified"
    assert obj["spec"]["stage"] == "None"
    obj = await http.ok(
        "PATCH", f"{MV}/iris-v1", {"spec": {"stage": "Staging"}, "status": {"phase": "Failed"}}, ctype=MERGE
    )
    assert obj["status"]["phase"] == "Verified"
    assert obj["spec"]["stage"] == "Staging"
    obj["status"]["phase"] = "Failed"
    obj = await http.ok("PUT", f"{MV}/iris-v1/status", obj)
    assert obj["status"]["phase"] == "Failed"
    got = await http.ok("GET", f"{MV}/iris-v1/status")
    assert got["status"]["phase"] == "Failed"
    # built-ins with a status subresource too
    await http.ok("POST", DEP, deployment())
    dep = await http.ok("PATCH", f"{DEP}/web", {"status": {"replicas": 5}}, ctype=MERGE)
    assert "status" not in dep
    dep = await http.ok("PATCH", f"{DEP}/web/status", {"status": {"replicas": 5}}, ctype=MERGE)
    assert dep["status"] == {"replicas": 5}
    status, _ = await http.get("/api/v1/namespaces/default/configmaps/x/status")
    assert status == 404


async def test_dry_run_persists_nothing(http: Client) -> None:
    obj = await http.ok("POST", MV, model_version(), dryRun="All")
    assert obj["metadata"]["name"] == "iris-v1"
    assert obj["spec"]["artifact"]["format"] == "joblib"
    status, _ = await http.get(f"{MV}/iris-v1")
    assert status == 404
    created = await http.ok("POST", MV, model_version())
    patched = await http.ok("PATCH", f"{MV}/iris-v1", {"spec": {"stage": "Staging"}}, ctype=MERGE, dryRun="All")
    assert patched["spec"]["stage"] == "Staging"
    got = await http.ok("GET", f"{MV}/iris-v1")
    assert got["spec"]["stage"] == "None"
    assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    await http.ok("DELETE", f"{MV}/iris-v1", dryRun="All")
    assert (await http.get(f"{MV}/iris-v1"))[0] == 200


async def test_server_side_apply_creates_then_merges(http: Client) -> None:
    body = model_version()
    status, obj = await http.patch(f"{MV}/iris-v1", body, ctype="application/apply-patch+yaml", fieldManager="t")
    assert status == 201
    assert obj["metadata"]["uid"]
    body["spec"]["stage"] = "Staging"
    obj = await http.ok("PATCH", f"{MV}/iris-v1", body, ctype="application/apply-patch+yaml", fieldManager="t")
    assert obj["spec"]["stage"] == "Staging"
    assert obj["metadata"]["generation"] == 2
    status, _ = await http.patch(f"{MV}/iris-v1", body, ctype="application/apply-patch+yaml")
    assert status == 422  # fieldManager is required (PatchOptions invalid, as kube-apiserver answers)


async def test_unknown_fields_are_pruned_with_a_warning_or_rejected_when_strict(http: Client) -> None:
    body = model_version()
    body["spec"]["bogus"] = 1
    async with http.session.post(http.base + MV, json=body) as resp:
        assert resp.status == 201
        assert resp.headers["Warning"] == '299 - "unknown field \\"spec.bogus\\""'
        assert "bogus" not in (await resp.json())["spec"]
    body["metadata"]["name"] = "strict"
    status, out = await http.post(MV, body, fieldValidation="Strict")
    assert status == 400
    assert 'unknown field "spec.bogus"' in out["message"]
