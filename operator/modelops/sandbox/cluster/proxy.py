"""The sandbox's kube-proxy: one local TCP port per Service port, round-robin over ready endpoints.

Like kube-proxy in IPVS mode with the `rr` scheduler, each new connection goes to the next ready
endpoint (from the Service's EndpointSlices, so endpoint changes apply to the next connection);
with no ready endpoint the connection is closed at once, as a real ClusterIP with no endpoints
rejects it. The local port of each Service port is published in the Service annotation
`sandbox.modelops.dev/local-ports` (`{"<port>": <localPort>}`), since there is no cluster IP to
reach. ClusterIP, NodePort and LoadBalancer Services are proxied; headless and ExternalName are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from modelops.sandbox.cluster.endpoints import Backend, EndpointIndex
from modelops.sandbox.cluster.kube import SERVICES, ApiStatusError, Informer, Kube, key_of

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

LOCAL_PORTS = "sandbox.modelops.dev/local-ports"


def proxied_ports(svc: Obj) -> list[tuple[int, str]]:
    """(port, port name) of each TCP Service port the proxy serves; [] for headless / ExternalName."""
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
        return []
    out = []
    for p in spec.get("ports") or []:
        if isinstance(p.get("port"), int) and (p.get("protocol") or "TCP") == "TCP":
            out.append((int(p["port"]), str(p.get("name") or "")))
    return out


def local_ports(svc: Obj) -> dict[int, int]:
    """The Service's {port: localPort} annotation as the proxy wrote it ({} if absent or unreadable)."""
    raw = ((svc.get("metadata") or {}).get("annotations") or {}).get(LOCAL_PORTS)
    try:
        return {int(k): int(v) for k, v in json.loads(raw or "{}").items()}
    except (ValueError, TypeError, AttributeError):
        return {}


@dataclass
class _Listener:
    namespace: str
    service: str
    port: int
    port_name: str
    server: asyncio.Server | None = None
    local_port: int = 0
    turn: int = 0
    connections: set[asyncio.Task[None]] = field(default_factory=set)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


class ServiceProxy:
    """Listeners for every Service in the `services` informer, routing to `index`'s ready backends."""

    def __init__(self, kube: Kube, services: Informer, index: EndpointIndex, host: str = "127.0.0.1") -> None:
        self.kube = kube
        self.services = services
        self.index = index
        self.host = host
        self._listeners: dict[tuple[str, str, int], _Listener] = {}
        self._lock = asyncio.Lock()
        services.add_handler(self._on_service)

    def listeners(self) -> dict[tuple[str, str, int], int]:
        """{(namespace, service, port): localPort} currently listening."""
        return {k: v.local_port for k, v in self._listeners.items()}

    async def _on_service(self, etype: str, svc: Obj, _old: Obj | None) -> None:
        async with self._lock:
            await self._sync(key_of(svc), None if etype == "DELETED" else svc)

    async def _sync(self, key: tuple[str, str], svc: Obj | None) -> None:
        ns, name = key
        wanted = dict(proxied_ports(svc)) if svc is not None else {}
        for lkey in [k for k in self._listeners if k[:2] == key and k[2] not in wanted]:
            await self._close(self._listeners.pop(lkey))
        for port, port_name in wanted.items():
            listener = self._listeners.get((ns, name, port))
            if listener is not None and listener.port_name != port_name:
                listener.port_name = port_name  # a renamed port keeps its local port
            if listener is None:
                listener = _Listener(ns, name, port, port_name)
                await self._open(listener, local_ports(svc or {}).get(port, 0))
                self._listeners[(ns, name, port)] = listener
        if svc is not None:
            await self._publish(svc)

    async def _open(self, listener: _Listener, preferred: int) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            listener.connections.add(task)
            try:
                await self._connect(listener, reader, writer)
            finally:
                listener.connections.discard(task)

        for port in (preferred, 0) if preferred else (0,):
            try:
                listener.server = await asyncio.start_server(handle, self.host, port)
                break
            except OSError:
                continue
        assert listener.server is not None
        listener.local_port = int(listener.server.sockets[0].getsockname()[1])
        logger.info("service %s/%s:%d on %s:%d", listener.namespace, listener.service, listener.port, self.host,
                    listener.local_port)  # fmt: skip

    async def _close(self, listener: _Listener) -> None:
        if listener.server is not None:
            listener.server.close()
            for task in list(listener.connections):
                task.cancel()
            with contextlib.suppress(Exception):
                await listener.server.wait_closed()
            listener.server = None

    async def _publish(self, svc: Obj) -> None:
        ns, name = key_of(svc)
        mine = {
            str(p): lst.local_port for (lns, lname, p), lst in self._listeners.items() if (lns, lname) == (ns, name)
        }
        if {str(k): v for k, v in local_ports(svc).items()} == mine:
            return
        patch = {"metadata": {"annotations": {LOCAL_PORTS: json.dumps(mine, sort_keys=True) if mine else None}}}
        try:
            self.services.upsert(await self.kube.patch(SERVICES, ns, name, patch))
        except ApiStatusError as exc:
            if exc.code != 404:
                logger.warning("cannot annotate service %s/%s: %s", ns, name, exc)

    def pick(self, listener: _Listener) -> list[Backend]:
        """The ready backends in the order to try: round-robin start, the others as fallbacks."""
        backends = self.index.ready(listener.namespace, listener.service, listener.port_name)
        if not backends:
            return []
        start = listener.turn % len(backends)
        listener.turn += 1
        return backends[start:] + backends[:start]

    async def _connect(self, listener: _Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        for host, port in self.pick(listener):
            try:
                upstream = await asyncio.open_connection(host, port)
                break
            except OSError:
                continue  # a process that just died: its endpoint leaves the slice shortly
        if upstream is None:
            writer.close()
            return
        up_reader, up_writer = upstream
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()
            writer.close()

    async def stop(self) -> None:
        async with self._lock:
            for listener in self._listeners.values():
                await self._close(listener)
            self._listeners.clear()
