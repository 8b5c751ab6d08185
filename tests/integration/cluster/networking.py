"""Helpers for the sandbox networking tests: an API server with the network parts, and tiny backends.

Backends are small aiohttp servers answering their own name; their "pods" are created through the
API with the kubelet's `sandbox.modelops.dev/host-ports` annotation and a status the test sets, so
these tests exercise the endpoints controller, proxy and gateway without the workload runner.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import pytest

from modelops.sandbox import ApiServer
from modelops.sandbox.cluster import kube as k
from modelops.sandbox.cluster.gateway import GATEWAY_API_CRDS, GATEWAYCLASSES, gateway_class
from modelops.sandbox.cluster.network import ClusterNetwork

T = TypeVar("T")
Obj = dict[str, Any]


async def eventually(check: Callable[[], Awaitable[T | None]], within: float = 10.0, what: str = "") -> T:
    """Poll `check` until it returns something truthy (returned) or fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"not true within {within}s: {what}")
        await asyncio.sleep(0.02)


@dataclass
class Backend:
    name: str
    server: asyncio.Server
    port: int
    hits: int = 0

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()


@dataclass
class Cluster:
    api: ApiServer
    kube: k.Kube
    net: ClusterNetwork
    backends: dict[str, Backend] = field(default_factory=dict)

    async def backend(self, name: str) -> Backend:
        """A minimal HTTP server on a free port answering its name to every (bodiless) request.

        Keeps HTTP/1.1 connections open (the gateway reuses them); closes after an HTTP/1.0 one.
        """
        body = name.encode()
        response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    backend.hits += 1
                    writer.write(response)
                    if b"HTTP/1.0" in head.split(b"\r\n", 1)[0]:
                        break
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        backend = Backend(name, server, int(server.sockets[0].getsockname()[1]))
        self.backends[name] = backend
        return backend

    async def pod(self, name: str, labels: dict[str, str], *, ready: bool = True, namespace: str = "default") -> Obj:
        """A Running pod whose container port 8080 (named `http`) is the backend `name`'s local port."""
        backend = self.backends.get(name) or await self.backend(name)
        body = {
            "metadata": {
                "name": name,
                "labels": labels,
                "annotations": {"sandbox.modelops.dev/host-ports": json.dumps({"8080": backend.port})},
            },
            "spec": {"containers": [{"name": "server", "image": "test",
                                     "ports": [{"name": "http", "containerPort": 8080}]}]},
        }  # fmt: skip
        await self.kube.create(k.PODS, namespace, body)
        return await self.set_ready(name, ready, namespace=namespace)

    async def set_ready(self, name: str, ready: bool, *, namespace: str = "default") -> Obj:
        status = {
            "phase": "Running",
            "podIP": "127.0.0.1",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        }
        return await self.kube.patch(k.PODS, namespace, name, {"status": status}, subresource="status")

    async def service(self, name: str, selector: dict[str, str], *, port: int = 80, target: int | str = "http") -> Obj:
        body = {"metadata": {"name": name},
                "spec": {"selector": selector, "ports": [{"name": "web", "port": port, "targetPort": target}]}}  # fmt: skip
        return await self.kube.create(k.SERVICES, "default", body)

    async def local_port(self, service: str, port: int = 80, namespace: str = "default") -> int:
        async def annotated() -> int | None:
            svc = await self.kube.get(k.SERVICES, namespace, service)
            raw = ((svc["metadata"].get("annotations") or {}).get("sandbox.modelops.dev/local-ports")) or "{}"
            return json.loads(raw).get(str(port))

        return await eventually(annotated, what=f"service {service} gets a local port")

    async def ready_endpoints(self, service: str, count: int, port_name: str = "web") -> None:
        """Wait until the proxy sees exactly `count` ready endpoints for `service`'s port `port_name`."""

        async def check() -> bool:
            return len(self.net.index.ready("default", service, port_name)) == count

        await eventually(check, what=f"{service}:{port_name} has {count} ready endpoints")


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with ApiServer(port=0, crds=[GATEWAY_API_CRDS], bookmark_interval=1.0) as api:
        api.store.create(api.store.lookup("gateway.networking.k8s.io", "v1", "gatewayclasses"), None, gateway_class())
        async with k.Kube(api.url) as kube, ClusterNetwork(api.url) as net:
            c = Cluster(api, kube, net)
            try:
                yield c
            finally:
                for backend in c.backends.values():
                    await backend.stop()


async def fetch_many(
    url: str, n: int, *, new_connection: bool, headers: dict[str, str] | None = None, clients: int = 4
) -> list[str]:
    """`n` GETs of `url` by `clients` concurrent aiohttp clients; each on a new TCP connection when
    `new_connection`. Answers are the bodies, or the status when not 200."""
    out: list[str] = []

    async def client(count: int) -> None:
        connector = aiohttp.TCPConnector(force_close=new_connection, limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(count):
                async with session.get(url, headers=headers) as resp:
                    out.append(await resp.text() if resp.status == 200 else str(resp.status))

    shares = [n // clients + (1 if i < n % clients else 0) for i in range(clients)]
    await asyncio.gather(*(client(s) for s in shares if s))
    return out


async def load(url: str, n: int, *, concurrency: int = 4, keepalive: bool = True) -> Counter[str]:
    """`n` GETs of `url`, the status codes counted. With `hey` when installed: the load then runs in
    its own process and the event loop under test keeps the CPU; else with aiohttp in this loop."""
    if shutil.which("hey") is None:
        answers = await fetch_many(url, n, new_connection=not keepalive, clients=concurrency)
        return Counter("200" if not a.isdigit() else a for a in answers)
    args = ["hey", "-n", str(n), "-c", str(concurrency), *([] if keepalive else ["-disable-keepalive"]), url]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    codes = Counter({m[0]: int(m[1]) for m in re.findall(r"\[(\d{3})\]\s+(\d+) responses", text)})
    assert sum(codes.values()) == n, text  # every request answered (hey lists errors separately)
    return codes


async def connect_many(port: int, n: int, clients: int = 4) -> list[str]:
    """`n` connections to 127.0.0.1:`port`, one HTTP/1.0 request each (what an L4 balancer sees):
    the response bodies, "" for a connection closed unanswered."""
    out: list[str] = []

    async def client(count: int) -> None:
        for _ in range(count):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
            try:
                data = await reader.read()
            except ConnectionResetError:
                data = b""
            writer.close()
            out.append(data.partition(b"\r\n\r\n")[2].decode())

    shares = [n // clients + (1 if i < n % clients else 0) for i in range(clients)]
    await asyncio.gather(*(client(s) for s in shares if s))
    return out


__all__ = ["GATEWAYCLASSES", "Backend", "Cluster", "cluster", "connect_many", "eventually", "fetch_many", "load"]
