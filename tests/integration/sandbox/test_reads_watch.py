"""Lists and watches: selectors, list metadata, pagination, resourceVersion semantics, bookmarks, 410."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from kubernetes import client, watch

from modelops.sandbox import ApiServer
from tests.integration.sandbox.conftest import MV, Client, model_version

CM = "/api/v1/namespaces/default/configmaps"


async def _configmaps(http: Client) -> None:
    for name, labels in {"a": {"app": "x", "tier": "web"}, "b": {"app": "y", "tier": "db"}, "c": {"app": "x"}}.items():
        await http.ok("POST", CM, {"metadata": {"name": name, "labels": labels}, "data": {"k": name}})


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=x", ["a", "c"]),
        ("app==x", ["a", "c"]),
        ("app!=x", ["b"]),
        ("tier in (web,db)", ["a", "b"]),
        ("tier notin (web)", ["b", "c"]),
        ("tier", ["a", "b"]),
        ("!tier", ["c"]),
        ("app=x,tier", ["a"]),
    ],
)
async def test_label_selectors(http: Client, selector: str, expected: list[str]) -> None:
    await _configmaps(http)
    out = await http.ok("GET", CM, labelSelector=selector)
    assert [i["metadata"]["name"] for i in out["items"]] == expected


async def test_field_selectors_and_list_metadata(http: Client) -> None:
    await _configmaps(http)
    out = await http.ok("GET", CM, fieldSelector="metadata.name=b")
    assert [i["metadata"]["name"] for i in out["items"]] == ["b"]
    out = await http.ok("GET", CM, fieldSelector="metadata.name!=b,metadata.name!=c")
    assert [i["metadata"]["name"] for i in out["items"]] == ["a"]
    assert out["kind"] == "ConfigMapList"
    assert out["apiVersion"] == "v1"
    assert int(out["metadata"]["resourceVersion"]) > 0
    status, err = await http.get(CM, labelSelector="a in (b")
    assert status == 400
    assert err["reason"] == "BadRequest"


async def test_cluster_wide_list_of_namespaced_resource_and_pagination(http: Client) -> None:
    await http.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "other"}})
    await http.ok("POST", MV, model_version("a"))
    await http.ok("POST", MV.replace("/default/", "/other/"), model_version("b"))
    out = await http.ok("GET", "/apis/modelops.dev/v1alpha1/modelversions")
    assert out["kind"] == "ModelVersionList"
    assert out["apiVersion"] == "modelops.dev/v1alpha1"
    assert sorted((i["metadata"]["namespace"], i["metadata"]["name"]) for i in out["items"]) == [
        ("default", "a"),
        ("other", "b"),
    ]
    page = await http.ok("GET", "/apis/modelops.dev/v1alpha1/modelversions", limit="1")
    assert len(page["items"]) == 1
    assert page["metadata"]["remainingItemCount"] == 1
    rest = await http.ok(
        "GET", "/apis/modelops.dev/v1alpha1/modelversions", limit="1", **{"continue": page["metadata"]["continue"]}
    )
    assert len(rest["items"]) == 1
    assert "continue" not in rest["metadata"]


async def _watch(http: Client, path: str, **params: Any) -> list[dict[str, Any]]:
    """Read a whole watch stream (it ends at timeoutSeconds)."""
    async with http.session.get(http.base + path, params={"watch": "true", **params}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/json"
        assert resp.headers.get("Transfer-Encoding") == "chunked"
        return [json.loads(line) async for line in resp.content if line.strip()]


async def test_watch_from_resource_version_sends_only_later_events(http: Client) -> None:
    await http.ok("POST", MV, model_version("a"))
    listed = await http.ok("GET", MV)
    rv = listed["metadata"]["resourceVersion"]
    await http.ok("POST", MV, model_version("b"))
    await http.ok("PATCH", f"{MV}/a", {"spec": {"stage": "Staging"}}, ctype="application/merge-patch+json")
    await http.ok("DELETE", f"{MV}/b")
    events = await _watch(http, MV, resourceVersion=rv, timeoutSeconds="1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "b"),
        ("MODIFIED", "a"),
        ("DELETED", "b"),
    ]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs)
    assert rvs[0] > int(rv)


async def test_watch_without_resource_version_starts_with_current_state(http: Client) -> None:
    await http.ok("POST", MV, model_version("a"))
    start = time.monotonic()
    events = await _watch(http, MV, timeoutSeconds="1")
    assert 0.9 < time.monotonic() - start < 3  # ends at timeoutSeconds
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a")]


async def test_watch_live_events_with_selectors(http: Client) -> None:
    await http.ok("POST", CM, {"metadata": {"name": "a", "labels": {"app": "x"}}})

    async def change() -> None:
        await asyncio.sleep(0.2)
        await http.ok("PATCH", f"{CM}/a", {"metadata": {"labels": {"app": "y"}}}, ctype="application/merge-patch+json")
        await http.ok("PATCH", f"{CM}/a", {"metadata": {"labels": {"app": "x"}}}, ctype="application/merge-patch+json")
        await http.ok("POST", CM, {"metadata": {"name": "b", "labels": {"app": "y"}}})

    task = asyncio.create_task(change())
    events = await _watch(http, CM, labelSelector="app=x", timeoutSeconds="1")
    await task
    # leaving the selector is a DELETED, re-entering it an ADDED, as the watch cache reports them
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"),
        ("DELETED", "a"),
        ("ADDED", "a"),
    ]


async def test_watch_bookmarks_and_initial_events_end(http: Client) -> None:
    await http.ok("POST", MV, model_version("a"))
    events = await _watch(http, MV, allowWatchBookmarks="true", sendInitialEvents="true",
                          resourceVersionMatch="NotOlderThan", timeoutSeconds="1")  # fmt: skip
    assert events[0]["type"] == "ADDED"
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert events[1]["object"]["kind"] == "ModelVersion"
    assert any(e["type"] == "BOOKMARK" and "annotations" not in e["object"]["metadata"] for e in events[2:])


async def test_watch_too_old_resource_version_is_410() -> None:
    import aiohttp

    async with ApiServer(port=0, event_log_size=5) as api, aiohttp.ClientSession() as session:
        http = Client(session, api.url)
        for n in range(10):
            await http.ok("POST", CM, {"metadata": {"name": f"c{n}"}})
        events = await _watch(http, CM, resourceVersion="1", timeoutSeconds="1")
        assert len(events) == 1
        assert events[0]["type"] == "ERROR"
        status = events[0]["object"]
        assert status["kind"] == "Status"
        assert status["code"] == 410
        assert status["reason"] == "Expired"


async def test_watch_a_single_object_url(http: Client) -> None:
    await http.ok("POST", MV, model_version("a"))
    await http.ok("POST", MV, model_version("b"))
    events = await _watch(
        http, "/apis/modelops.dev/v1alpha1/watch/namespaces/default/modelversions/b", timeoutSeconds="1"
    )
    assert [e["object"]["metadata"]["name"] for e in events] == ["b"]


def test_python_client_watch(k8s_api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s_api_client)
    listed = core.list_namespaced_config_map("default")
    core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w")))
    core.delete_namespaced_config_map("w", "default")
    stream = watch.Watch().stream(
        core.list_namespaced_config_map, "default", resource_version=listed.metadata.resource_version, timeout_seconds=1
    )
    assert [(e["type"], e["object"].metadata.name) for e in stream] == [("ADDED", "w"), ("DELETED", "w")]
