"""The sandbox's networking in one piece: endpoints controllers, service proxy and gateway, sharing caches.

One informer per kind (pods, services, EndpointSlices, Endpoints, Gateway API kinds, namespaces)
feeds all of them, so the sandbox keeps one watch per kind however many parts read it.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from modelops.sandbox.cluster import kube as k
from modelops.sandbox.cluster.endpoints import EndpointIndex, EndpointsController
from modelops.sandbox.cluster.gateway import GATEWAYCLASSES, GATEWAYS, HTTPROUTES, NAMESPACES, GatewayController
from modelops.sandbox.cluster.kube import Informer, Kube
from modelops.sandbox.cluster.proxy import ServiceProxy


class ClusterNetwork:
    """EndpointSlices/Endpoints, a local port per Service port and per Gateway listener, for `api_url`.

    `pods` is the shared pod informer (the Prometheus target writer hooks into it too).
    """

    def __init__(self, api_url: str, *, host: str = "127.0.0.1", gateway: bool = True) -> None:
        self.kube = Kube(api_url)
        self.pods = Informer(self.kube, k.PODS)
        self.services = Informer(self.kube, k.SERVICES)
        self.slices = Informer(self.kube, k.ENDPOINTSLICES)
        self.endpoints = Informer(self.kube, k.ENDPOINTS)
        self.index = EndpointIndex(self.slices)
        self.controller = EndpointsController(self.kube, self.services, self.pods, self.slices, self.endpoints)
        self.proxy = ServiceProxy(self.kube, self.services, self.index, host)
        self.gateway: GatewayController | None = None
        self._informers = [self.pods, self.services, self.slices, self.endpoints]
        if gateway:
            namespaces = Informer(self.kube, NAMESPACES)
            classes = Informer(self.kube, GATEWAYCLASSES)
            gateways = Informer(self.kube, GATEWAYS)
            routes = Informer(self.kube, HTTPROUTES)
            self._informers += [namespaces, classes, gateways, routes]
            self.gateway = GatewayController(
                self.kube, classes=classes, gateways=gateways, routes=routes, services=self.services,
                namespaces=namespaces, index=self.index, host=host,
            )  # fmt: skip

    async def start(self) -> None:
        """Returns once every cache is synced and every controller runs.

        Needs the Gateway API CRDs installed when `gateway` is on (their informers list them).
        """
        await asyncio.gather(*(inf.start() for inf in self._informers))
        self.controller.start()
        if self.gateway is not None:
            self.gateway.start()

    async def stop(self) -> None:
        await self.controller.stop()
        if self.gateway is not None:
            await self.gateway.stop()
        await self.proxy.stop()
        for informer in self._informers:
            await informer.stop()
        await self.kube.close()

    async def __aenter__(self) -> ClusterNetwork:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
