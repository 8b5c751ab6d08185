"""A watch from a compacted resourceVersion is 410 Expired, by time as well as by log length; kopf recovers."""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from modelops.k8s.resources import MODEL_VERSION, CustomObjects
from modelops.sandbox import ApiServer, ServerThread
from tests.integration.registry.conftest import model_version, status, wait_for
from tests.support.apiserver import CRDS

CM = "/api/v1/namespaces/default/configmaps"


class Clock:
    """The server's clock, moved by the test: compaction by age without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _watch(session: aiohttp.ClientSession, url: str, rv: str) -> list[dict[str, Any]]:
    params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "1"}
    async with session.get(url + CM, params=params) as resp:
        assert resp.status == 200
        return [json.loads(line) for line in (await resp.text()).splitlines() if line.strip()]


async def _write(session: aiohttp.ClientSession, url: str, name: str) -> str:
    async with session.post(url + CM, json={"metadata": {"name": name}}) as resp:
        assert resp.status == 201
        return str((await resp.json())["metadata"]["resourceVersion"])


async def test_events_older_than_the_window_are_compacted() -> None:
    clock = Clock()
    async with ApiServer(port=0, watch_cache_seconds=60, clock=clock) as api, aiohttp.ClientSession() as s:
        first = await _write(s, api.url, "a")
        clock.now += 30
        second = await _write(s, api.url, "b")
        clock.now += 45
        third = await _write(s, api.url, "c")  # `a` is out of the window, but resuming from it needs only b, c
        assert [e["object"]["metadata"]["name"] for e in await _watch(s, api.url, first)] == ["b", "c"]
        clock.now += 30
        fourth = await _write(s, api.url, "d")  # now `b` is out too
        [err] = await _watch(s, api.url, first)
        assert err["type"] == "ERROR"
        assert err["object"]["code"] == 410
        assert err["object"]["reason"] == "Expired"
        assert err["object"]["message"] == f"too old resource version: {first} ({third})"
        assert [e["object"]["metadata"]["name"] for e in await _watch(s, api.url, second)] == ["c", "d"]
        clock.now += 3600  # nothing written since `d`: resuming from it misses nothing, so it is no error
        assert await _watch(s, api.url, fourth) == []
        assert (await _watch(s, api.url, third))[0]["object"]["code"] == 410


async def test_the_log_length_bound_still_holds() -> None:
    async with ApiServer(port=0, event_log_size=2) as api, aiohttp.ClientSession() as s:
        first = await _write(s, api.url, "a")
        for name in ("b", "c", "d"):  # the log keeps c and d: b, which follows `first`, is gone
            await _write(s, api.url, name)
        assert (await _watch(s, api.url, first))[0]["object"]["code"] == 410


CLOCK = Clock()


@pytest.fixture
def apiserver() -> Iterator[ServerThread]:
    """The operator's API server: a 30 s watch window on a test-driven clock, and no bookmarks (which would
    keep the operator's resourceVersion fresh)."""
    CLOCK.now = 1000.0
    with ServerThread(port=0, crds=[CRDS], bookmark_interval=3600, watch_cache_seconds=30, clock=CLOCK) as srv:
        yield srv


@pytest.mark.timeout(60)
def test_kopf_relists_after_410_and_keeps_reconciling(
    apiserver: ServerThread,
    operator: Any,
    custom_objects: CustomObjects,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="kopf._cogs.clients.watching")
    uri, digest = _artifact(tmp_path / "v1.joblib", b"model v1")
    custom_objects.create(MODEL_VERSION, "default", model_version("churn-v1", uri, digest))
    wait_for(custom_objects, "churn-v1", _handled)  # the operator's last write to it is behind us
    # a write the operator does not watch (a ConfigMap) follows its last resourceVersions; once it is out
    # of the window, resuming from them would miss it: 410
    _create_config_map(apiserver.url, "first")
    CLOCK.now += 31
    _create_config_map(apiserver.url, "second")  # a write compacts what the window has left behind
    apiserver.end_watches()  # as an API server restart does: every client resumes from where it was
    wait_for(custom_objects, "churn-v1", lambda o: _restarted(caplog), timeout=10)
    uri2, digest2 = _artifact(tmp_path / "v2.joblib", b"model v2")
    custom_objects.create(MODEL_VERSION, "default", model_version("churn-v2", uri2, digest2, version="2"))
    obj = wait_for(custom_objects, "churn-v2", lambda o: status(o).get("phase") == "Verified")
    assert status(obj)["verifiedDigest"] == digest2


def _handled(obj: dict[str, Any]) -> bool:
    """Verified, and kopf has recorded the handled spec (its last write after a successful create)."""
    annotations = obj["metadata"].get("annotations") or {}
    return status(obj).get("phase") == "Verified" and "modelops.dev/last-handled-configuration" in annotations


def _create_config_map(url: str, name: str) -> None:
    body = json.dumps({"metadata": {"name": name}}).encode()
    request = urllib.request.Request(url + CM, body, {"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert resp.status == 201


def _artifact(path: Path, data: bytes) -> tuple[str, str]:
    path.write_bytes(data)
    return path.as_uri(), "sha256:" + hashlib.sha256(data).hexdigest()


def _restarted(caplog: pytest.LogCaptureFixture) -> bool:
    """kopf's own account of a 410: it leaves the stream and lists again."""
    return any("Restarting the watch-stream for modelversions" in r.getMessage() for r in caplog.records)
