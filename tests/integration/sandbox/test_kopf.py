"""A tiny kopf operator runs cleanly against the sandbox: the proof that its semantics are enough."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import kopf
import pytest

from modelops.sandbox import ApiServer
from tests.integration.sandbox.conftest import MV, Client, model_version

CM = "/api/v1/namespaces/default/configmaps"
FINALIZER = "modelops.dev/test-finalizer"


async def _until(check: Callable[[], Any]) -> Any:
    async with asyncio.timeout(10):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.05)


def _registry(url: str, calls: list[tuple[str, str]]) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = FINALIZER
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="test.modelops.dev")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="test.modelops.dev")
        settings.posting.level = logging.INFO
        settings.watching.server_timeout = 30
        settings.networking.request_timeout = 10

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=url, default_namespace="default")

    @kopf.on.create("modelops.dev", "v1alpha1", "modelversions", registry=registry)
    async def created(body: kopf.Body, name: str, patch: kopf.Patch, **_: Any) -> None:
        calls.append(("create", name))
        child: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-info"},
            "data": {},
        }
        kopf.adopt(child, owner=body)
        async with aiohttp.ClientSession() as session, session.post(f"{url}{CM}", json=child) as resp:
            assert resp.status == 201, await resp.text()
        patch.status["phase"] = "Verified"
        kopf.info(body, reason="Verified", message="artifact digest verified")

    @kopf.on.update("modelops.dev", "v1alpha1", "modelversions", field="spec.stage", registry=registry)
    def staged(name: str, new: str, patch: kopf.Patch, **_: Any) -> None:
        calls.append(("update", name))
        patch.status["stage"] = new

    @kopf.on.delete("modelops.dev", "v1alpha1", "modelversions", registry=registry)
    def deleted(name: str, **_: Any) -> None:
        calls.append(("delete", name))

    return registry


@pytest.mark.timeout(60)
async def test_kopf_operator_runs_cleanly(api: ApiServer, http: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    calls: list[tuple[str, str]] = []
    stop = asyncio.Event()
    task = asyncio.create_task(
        kopf.operator(registry=_registry(api.url, calls), standalone=True, namespaces=["default"], stop_flag=stop)
    )
    try:
        await asyncio.sleep(0.5)
        await http.ok("POST", MV, model_version())

        async def verified() -> Any:
            obj = await http.ok("GET", f"{MV}/iris-v1")
            return obj if (obj.get("status") or {}).get("phase") == "Verified" else None

        obj = await _until(verified)
        assert FINALIZER in obj["metadata"]["finalizers"]
        child = await http.ok("GET", f"{CM}/iris-v1-info")
        assert child["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]

        async def event() -> Any:
            events = await http.ok(
                "GET", "/api/v1/namespaces/default/events", fieldSelector="involvedObject.name=iris-v1"
            )
            return [e for e in events["items"] if e["reason"] == "Verified"]

        [ev] = await _until(event)
        assert ev["involvedObject"]["uid"] == obj["metadata"]["uid"]
        assert ev["type"] == "Normal"

        await http.ok("PATCH", f"{MV}/iris-v1", {"spec": {"stage": "Staging"}}, ctype="application/merge-patch+json")

        async def staged() -> Any:
            got = await http.ok("GET", f"{MV}/iris-v1")
            return (got.get("status") or {}).get("stage") == "Staging"

        await _until(staged)
        await http.ok("DELETE", f"{MV}/iris-v1")

        async def gone() -> bool:
            return (await http.get(f"{MV}/iris-v1"))[0] == 404 and (await http.get(f"{CM}/iris-v1-info"))[0] == 404

        await _until(gone)
        await asyncio.sleep(1.0)  # any duplicate handler call would show up by now
        assert calls == [("create", "iris-v1"), ("update", "iris-v1"), ("delete", "iris-v1")]
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("kopf")]
    assert not problems, [r.getMessage() for r in problems]
