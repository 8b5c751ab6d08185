"""The runner's HTTP client: verbs, errors, watches that survive 410 Expired, and the informer cache."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from modelops.sandbox import ApiServer
from modelops.sandbox.cluster.kube import CONFIGMAPS, ApiStatusError, Informer, Kube

Obj = dict[str, object]


@pytest.fixture
async def small_log() -> AsyncIterator[ApiServer]:
    async with ApiServer(port=0, event_log_size=5, bookmark_interval=60) as api:
        yield api


def cm(name: str, **labels: str) -> dict[str, object]:
    return {"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}


async def test_verbs_and_api_errors(small_log: ApiServer) -> None:
    async with Kube(small_log.url) as kube:
        created = await kube.create(CONFIGMAPS, "default", cm("a"))
        assert created["kind"] == "ConfigMap"
        patched = await kube.patch(CONFIGMAPS, "default", "a", {"data": {"k": "w"}})
        assert patched["data"] == {"k": "w"}
        strategic = await kube.patch(CONFIGMAPS, "default", "a", {"data": {"x": "1"}}, patch_type="strategic")
        assert strategic["data"] == {"k": "w", "x": "1"}
        json_patch = [{"op": "remove", "path": "/data/x"}]
        assert (await kube.patch(CONFIGMAPS, "default", "a", json_patch, patch_type="json"))["data"] == {"k": "w"}
        stale = {**created, "data": {"k": "old"}}
        with pytest.raises(ApiStatusError) as conflict:
            await kube.replace(CONFIGMAPS, "default", "a", stale)
        assert (conflict.value.code, conflict.value.reason) == (409, "Conflict")
        listed = await kube.list(CONFIGMAPS, "default", label_selector="missing=label")
        assert listed.items == []
        assert int(listed.resource_version) >= int(patched["metadata"]["resourceVersion"])
        await kube.delete(CONFIGMAPS, "default", "a")
        with pytest.raises(ApiStatusError) as missing:
            await kube.get(CONFIGMAPS, "default", "a")
        assert (missing.value.code, missing.value.reason) == (404, "NotFound")
        assert missing.value.message == 'configmaps "a" not found'


async def test_watch_from_an_expired_resource_version_relists_then_follows(small_log: ApiServer) -> None:
    async with Kube(small_log.url) as kube:
        first = await kube.create(CONFIGMAPS, "default", cm("first"))
        old_rv = str(first["metadata"]["resourceVersion"])
        for n in range(8):  # more writes than the server's event log keeps: old_rv is now 410 Expired
            await kube.create(CONFIGMAPS, "default", cm(f"c{n}"))
        seen: list[tuple[str, str]] = []
        relisted = asyncio.Event()

        async def consume() -> None:
            async for etype, obj in kube.watch(CONFIGMAPS, "default", resource_version=old_rv):
                seen.append((etype, obj["metadata"]["name"]))
                if len(seen) == 9:
                    relisted.set()
                if etype == "MODIFIED":
                    return

        task = asyncio.create_task(consume())
        await asyncio.wait_for(relisted.wait(), 10)
        assert sorted(seen) == sorted([("ADDED", "first")] + [("ADDED", f"c{n}") for n in range(8)])
        await kube.patch(CONFIGMAPS, "default", "c3", {"data": {"k": "changed"}})
        await asyncio.wait_for(task, 10)
        assert seen[-1] == ("MODIFIED", "c3")


async def test_informer_cache_and_handlers(small_log: ApiServer) -> None:
    async with Kube(small_log.url) as kube:
        await kube.create(CONFIGMAPS, "default", cm("before", app="x"))
        informer = Informer(kube, CONFIGMAPS, "default", label_selector="app=x")
        events: list[tuple[str, str, bool]] = []
        three = asyncio.Event()

        def record(etype: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
            events.append((etype, obj["metadata"]["name"], old is not None))
            if len(events) == 3:
                three.set()

        informer.add_handler(record)
        await informer.start()
        try:
            assert informer.get("default", "before") is not None
            await kube.create(CONFIGMAPS, "default", cm("after", app="x"))
            await kube.create(CONFIGMAPS, "default", cm("other", app="y"))
            await kube.delete(CONFIGMAPS, "default", "before")
            await asyncio.wait_for(three.wait(), 10)
            assert events == [("ADDED", "before", False), ("ADDED", "after", False), ("DELETED", "before", True)]
            assert sorted(o["metadata"]["name"] for o in informer.items()) == ["after"]
        finally:
            await informer.stop()
