"""The sandbox's kube-proxy and endpoints controllers: local Service ports, round robin, live endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest

from modelops.sandbox.cluster import kube as k
from modelops.sandbox.cluster.kube import ApiStatusError
from tests.integration.cluster.networking import Cluster, cluster, connect_many, eventually, load

__all__ = ["cluster"]


async def test_endpoints_carry_local_ports_and_readiness(cluster: Cluster) -> None:
    a = await cluster.backend("a")
    b = await cluster.backend("b")
    await cluster.pod("a", {"app": "web"})
    await cluster.pod("b", {"app": "web"}, ready=False)
    await cluster.pod("other", {"app": "db"})
    await cluster.service("web", {"app": "web"}, target="http")

    async def slices() -> list[dict[str, object]] | None:
        listed = await cluster.kube.list(k.ENDPOINTSLICES, "default", label_selector="kubernetes.io/service-name=web")
        eps = [ep for s in listed.items for ep in s["endpoints"]]
        return listed.items if len(eps) == 2 else None

    items = await eventually(slices, what="two endpoints in web's slices")
    by_pod = {}
    for s in items:
        assert s["addressType"] == "IPv4"
        assert s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
        assert s["metadata"]["ownerReferences"][0]["kind"] == "Service"
        for ep in s["endpoints"]:
            by_pod[ep["targetRef"]["name"]] = (ep, s["ports"])
    ep_a, ports_a = by_pod["a"]
    assert ep_a["addresses"] == ["127.0.0.1"]
    assert ep_a["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert ports_a == [{"name": "web", "port": a.port, "protocol": "TCP"}]  # the named targetPort, as a local port
    ep_b, ports_b = by_pod["b"]
    assert ep_b["conditions"]["ready"] is False
    assert ports_b[0]["port"] == b.port

    async def endpoints() -> tuple[list[str], list[str]] | None:
        try:
            ep = await cluster.kube.get(k.ENDPOINTS, "default", "web")
        except ApiStatusError:
            return None
        ready = [addr["targetRef"]["name"] for s in ep["subsets"] for addr in s.get("addresses", [])]
        not_ready = [addr["targetRef"]["name"] for s in ep["subsets"] for addr in s.get("notReadyAddresses", [])]
        return (ready, not_ready) if len(ready) + len(not_ready) == 2 else None

    # written after the slices: ready pods in addresses, the others in notReadyAddresses
    assert await eventually(endpoints, what="Endpoints lists both pods") == (["a"], ["b"])

    await cluster.kube.delete(k.SERVICES, "default", "web")

    async def gone() -> bool:
        listed = await cluster.kube.list(k.ENDPOINTSLICES, "default", label_selector="kubernetes.io/service-name=web")
        try:
            await cluster.kube.get(k.ENDPOINTS, "default", "web")
        except ApiStatusError as exc:
            return exc.code == 404 and not listed.items
        return False

    await eventually(gone, what="slices and Endpoints removed with the Service")


async def test_round_robin_per_connection_follows_the_replica_ratio(cluster: Cluster) -> None:
    """3 stable pods and 1 canary behind one Service: each pod a quarter of 2,000 connections, so the
    tracks split 75/25, the split a replica-ratio canary relies on."""
    for name in ("stable-1", "stable-2", "stable-3"):
        await cluster.pod(name, {"app": "model", "track": "stable"})
    await cluster.pod("canary-1", {"app": "model", "track": "canary"})
    await cluster.service("model", {"app": "model"})
    port = await cluster.local_port("model")
    await cluster.ready_endpoints("model", 4)

    codes = await load(f"http://127.0.0.1:{port}/", 2000, keepalive=False)  # a new connection per request

    assert codes == {"200": 2000}
    hits = {name: b.hits for name, b in cluster.backends.items()}
    for count in hits.values():
        assert abs(count / 2000 - 0.25) < 0.03, hits
    canary = hits["canary-1"] / 2000
    assert abs(canary - 0.25) < 0.03, hits
    assert abs(1 - canary - 0.75) < 0.03, hits


async def test_an_endpoint_that_stops_being_ready_leaves_the_rotation(cluster: Cluster) -> None:
    for name in ("x1", "x2"):
        await cluster.pod(name, {"app": "x"})
    await cluster.service("x", {"app": "x"})
    port = await cluster.local_port("x")
    await cluster.ready_endpoints("x", 2)
    assert set(await connect_many(port, 10)) == {"x1", "x2"}

    await cluster.backends["x2"].stop()  # the process dies ...
    await cluster.set_ready("x2", False)  # ... and its readiness probe fails
    await cluster.ready_endpoints("x", 1)

    assert set(await connect_many(port, 50)) == {"x1"}

    await cluster.set_ready("x1", False)
    await cluster.ready_endpoints("x", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    with contextlib.suppress(ConnectionResetError):  # closed at once, unanswered: no endpoint for it
        assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_listeners_follow_the_service(cluster: Cluster) -> None:
    await cluster.pod("s1", {"app": "s"})
    await cluster.service("s", {"app": "s"})
    port = await cluster.local_port("s")
    svc = await cluster.kube.get(k.SERVICES, "default", "s")
    assert json.loads(svc["metadata"]["annotations"]["sandbox.modelops.dev/local-ports"]) == {"80": port}

    await cluster.kube.patch(k.SERVICES, "default", "s", {"spec": {"ports": [
        {"name": "web", "port": 80, "targetPort": "http"}, {"name": "alt", "port": 8081, "targetPort": 8080}]}},
        patch_type="strategic")  # fmt: skip
    alt = await cluster.local_port("s", 8081)
    await cluster.ready_endpoints("s", 1, "alt")
    assert await connect_many(alt, 1) == ["s1"]

    await cluster.kube.delete(k.SERVICES, "default", "s")

    async def closed() -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return True
        writer.close()
        return False

    await eventually(closed, what="the Service's local port closed after its deletion")
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", alt)
