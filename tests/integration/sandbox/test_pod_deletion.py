"""Graceful pod deletion, as kube-apiserver does it (pod strategy's CheckGracefulDelete).

A scheduled pod that has not finished is not removed by DELETE: it gets `deletionTimestamp` (now +
grace) and `deletionGracePeriodSeconds`, stays readable (a MODIFIED watch event), and goes only
when deleted again with `gracePeriodSeconds=0`, which is what the kubelet does once its containers
have stopped. Unscheduled and finished pods, and every other kind, are removed at once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from modelops.sandbox import ApiServer
from modelops.sandbox.cluster import kube as k
from tests.integration.sandbox.conftest import Client

NS = "/api/v1/namespaces/default"
PODS = f"{NS}/pods"
RS = "/apis/apps/v1/namespaces/default/replicasets"
CM = f"{NS}/configmaps"
MERGE = "application/merge-patch+json"


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "i"}], **spec}}


async def running_pod(http: Client, name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A pod as the kubelet leaves it once it runs: scheduled (PodScheduled=True) and Running."""
    await http.ok("POST", PODS, body or pod(name))
    status = {
        "phase": "Running",
        "podIP": "127.0.0.1",
        "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
    }
    out: dict[str, Any] = await http.ok("PATCH", f"{PODS}/{name}/status", {"status": status}, ctype=MERGE)
    return out


def when(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def about(ts: str, seconds_from_now: int) -> bool:
    """`ts` is now + `seconds_from_now`, to the second the API server's timestamps have."""
    delta = (when(ts) - datetime.now(UTC)).total_seconds()
    return seconds_from_now - 2 <= delta <= seconds_from_now + 1


async def events_since(api: ApiServer, rv: str, path: str = PODS) -> list[tuple[str, dict[str, Any]]]:
    """Every watch event after `rv` (a short watch that ends by its timeout)."""
    out = []
    async with (
        aiohttp.ClientSession() as session,
        session.get(api.url + path, params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "1"}) as resp,
    ):
        async for line in resp.content:
            if line.strip():
                event = json.loads(line)
                out.append((event["type"], event["object"]))
    return out


async def test_a_running_pod_is_marked_with_the_default_grace_and_removed_by_a_zero_grace_delete(
    api: ApiServer, http: Client
) -> None:
    await running_pod(http, "web")
    rv = (await http.ok("GET", PODS))["metadata"]["resourceVersion"]

    status, out = await http.delete(f"{PODS}/web")
    assert status == 200  # kube answers a graceful pod deletion with the pod, 200
    assert out["metadata"]["deletionGracePeriodSeconds"] == 30  # terminationGracePeriodSeconds' default
    assert about(out["metadata"]["deletionTimestamp"], 30)
    still = await http.ok("GET", f"{PODS}/web")
    assert still["metadata"]["deletionTimestamp"] == out["metadata"]["deletionTimestamp"]
    assert still["status"]["phase"] == "Running"
    events = await events_since(api, rv)
    assert [(t, o["metadata"]["name"], bool(o["metadata"].get("deletionTimestamp"))) for t, o in events] == [
        ("MODIFIED", "web", True)
    ]

    # the kubelet's status writes and a label change do not remove it
    await http.ok(
        "PATCH", f"{PODS}/web/status", {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}, ctype=MERGE
    )
    await http.ok("PATCH", f"{PODS}/web", {"metadata": {"labels": {"x": "y"}}}, ctype=MERGE)
    assert (await http.get(f"{PODS}/web"))[0] == 200

    rv = (await http.ok("GET", PODS))["metadata"]["resourceVersion"]
    status, _ = await http.delete(f"{PODS}/web", {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0})
    assert status == 200
    assert (await http.get(f"{PODS}/web"))[0] == 404
    assert [t for t, _ in await events_since(api, rv)] == ["DELETED"]


async def test_the_grace_period_comes_from_the_request_else_the_pod_spec(http: Client) -> None:
    await running_pod(http, "spec7", pod("spec7", terminationGracePeriodSeconds=7))
    await running_pod(http, "body3", pod("body3", terminationGracePeriodSeconds=7))
    await running_pod(http, "query2")
    await running_pod(http, "negative")
    await running_pod(http, "node", pod("node", nodeName="sandbox"))

    assert (await http.ok("DELETE", f"{PODS}/spec7"))["metadata"]["deletionGracePeriodSeconds"] == 7
    out = await http.ok("DELETE", f"{PODS}/body3", {"gracePeriodSeconds": 3})
    assert out["metadata"]["deletionGracePeriodSeconds"] == 3
    assert about(out["metadata"]["deletionTimestamp"], 3)
    out = await http.ok("DELETE", f"{PODS}/query2", gracePeriodSeconds="2")
    assert out["metadata"]["deletionGracePeriodSeconds"] == 2
    out = await http.ok("DELETE", f"{PODS}/negative", {"gracePeriodSeconds": -5})
    assert out["metadata"]["deletionGracePeriodSeconds"] == 1  # kube turns a negative period into 1
    out = await http.ok("DELETE", f"{PODS}/node")
    assert out["metadata"]["deletionGracePeriodSeconds"] == 30
    for name in ("spec7", "body3", "query2", "negative", "node"):
        assert (await http.get(f"{PODS}/{name}"))[0] == 200, name

    status, out = await http.delete(f"{PODS}/spec7", gracePeriodSeconds="soon")
    assert status == 400
    assert "gracePeriodSeconds" in out["message"]


async def test_unscheduled_and_finished_pods_go_at_once(http: Client) -> None:
    await http.ok("POST", PODS, pod("pending"))  # never taken by a kubelet: no node, no PodScheduled
    await running_pod(http, "done")
    await http.ok("PATCH", f"{PODS}/done/status", {"status": {"phase": "Succeeded"}}, ctype=MERGE)
    await running_pod(http, "failed")
    await http.ok("PATCH", f"{PODS}/failed/status", {"status": {"phase": "Failed"}}, ctype=MERGE)
    await http.ok("POST", PODS, pod("unsupported"))  # the sandbox kubelet refuses other images so
    await http.ok("PATCH", f"{PODS}/unsupported/status", {"status": {
        "phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False"}]}}, ctype=MERGE)  # fmt: skip
    for name in ("pending", "done", "failed", "unsupported"):
        status, _ = await http.delete(f"{PODS}/{name}", gracePeriodSeconds="30")
        assert status == 200, name
        assert (await http.get(f"{PODS}/{name}"))[0] == 404, name


async def test_a_second_delete_may_only_shorten_the_grace_period(http: Client) -> None:
    await running_pod(http, "web")
    first = await http.ok("DELETE", f"{PODS}/web", {"gracePeriodSeconds": 20})
    again = await http.ok("DELETE", f"{PODS}/web")  # no period: the pending deletion, unchanged
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    longer = await http.ok("DELETE", f"{PODS}/web", {"gracePeriodSeconds": 60})
    assert longer["metadata"]["deletionGracePeriodSeconds"] == 20
    assert longer["metadata"]["deletionTimestamp"] == first["metadata"]["deletionTimestamp"]
    shorter = await http.ok("DELETE", f"{PODS}/web", {"gracePeriodSeconds": 5})
    assert shorter["metadata"]["deletionGracePeriodSeconds"] == 5
    moved = when(first["metadata"]["deletionTimestamp"]) - when(shorter["metadata"]["deletionTimestamp"])
    assert moved == timedelta(seconds=15)
    await http.ok("DELETE", f"{PODS}/web", {"gracePeriodSeconds": 0})
    assert (await http.get(f"{PODS}/web"))[0] == 404


async def test_finalizers_still_hold_a_pod_whose_grace_period_is_over(http: Client) -> None:
    body = pod("held")
    body["metadata"]["finalizers"] = ["test.modelops.dev/hold"]
    await running_pod(http, "held", body)
    out = await http.ok("DELETE", f"{PODS}/held")
    assert out["metadata"]["deletionGracePeriodSeconds"] == 30
    status, out = await http.delete(f"{PODS}/held", {"gracePeriodSeconds": 0})
    assert status == 202
    assert out["metadata"]["deletionGracePeriodSeconds"] == 0
    assert (await http.get(f"{PODS}/held"))[0] == 200
    await http.ok("PATCH", f"{PODS}/held", {"metadata": {"finalizers": None}}, ctype=MERGE)
    assert (await http.get(f"{PODS}/held"))[0] == 404


async def test_dry_run_marks_nothing(http: Client) -> None:
    await running_pod(http, "web")
    out = await http.ok("DELETE", f"{PODS}/web", dryRun="All")
    assert out["metadata"]["deletionGracePeriodSeconds"] == 30
    assert "deletionTimestamp" not in (await http.ok("GET", f"{PODS}/web"))["metadata"]


async def test_garbage_collection_deletes_owned_pods_gracefully(http: Client) -> None:
    rs = await http.ok("POST", RS, {
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "i"}]}}},
    })  # fmt: skip
    ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": rs["metadata"]["uid"],
           "controller": True, "blockOwnerDeletion": True}  # fmt: skip
    for name in ("running", "pending"):
        body = pod(name)
        body["metadata"].update(labels={"app": "web"}, ownerReferences=[ref])
        await (running_pod(http, name, body) if name == "running" else http.ok("POST", PODS, body))
    await http.ok("DELETE", f"{RS}/web")

    async def settled() -> bool:
        return (await http.get(f"{PODS}/pending"))[0] == 404

    for _ in range(100):
        if await settled():
            break
        await http.get(PODS)
    assert await settled()
    running = await http.ok("GET", f"{PODS}/running")
    assert running["metadata"]["deletionGracePeriodSeconds"] == 30
    await http.ok("DELETE", f"{PODS}/running", {"gracePeriodSeconds": 0})
    assert (await http.get(f"{PODS}/running"))[0] == 404


async def test_a_namespace_waits_for_its_terminating_pods(http: Client) -> None:
    await http.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "team"}})
    await http.ok("POST", "/api/v1/namespaces/team/pods", pod("web"))
    status = {"phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True"}]}
    await http.ok("PATCH", "/api/v1/namespaces/team/pods/web/status", {"status": status}, ctype=MERGE)
    await http.ok("DELETE", "/api/v1/namespaces/team")
    for _ in range(20):
        await http.get("/api/v1/namespaces/team")  # let the namespace controller run
    web = await http.ok("GET", "/api/v1/namespaces/team/pods/web")
    assert web["metadata"]["deletionGracePeriodSeconds"] == 30
    assert (await http.ok("GET", "/api/v1/namespaces/team"))["status"]["phase"] == "Terminating"
    await http.ok("DELETE", "/api/v1/namespaces/team/pods/web", {"gracePeriodSeconds": 0})
    for _ in range(50):
        if (await http.get("/api/v1/namespaces/team"))[0] == 404:
            break
    assert (await http.get("/api/v1/namespaces/team"))[0] == 404


async def test_other_kinds_ignore_a_grace_period(http: Client) -> None:
    await http.ok("POST", CM, {"metadata": {"name": "c"}})
    assert (await http.delete(f"{CM}/c", {"gracePeriodSeconds": 30}))[0] == 200
    assert (await http.get(f"{CM}/c"))[0] == 404


async def test_the_python_client_deleting_with_zero_grace_removes_a_running_pod_at_once(
    api: ApiServer, http: Client
) -> None:
    await running_pod(http, "web")
    async with k.Kube(api.url) as kube:
        await kube.delete(k.PODS, "default", "web", grace_period_seconds=0)
    assert (await http.get(f"{PODS}/web"))[0] == 404
