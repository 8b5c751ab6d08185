"""The endpoints controllers: EndpointSlices (discovery.k8s.io/v1) and Endpoints (v1) for Services.

As kube-controller-manager's endpointslice and endpoints controllers do, for every Service with a
selector: the pods it selects in its namespace that have an IP and have not finished, each with
`ready` / `serving` / `terminating` from the pod's Ready condition and deletionTimestamp.

One sandbox difference, on purpose: every pod's IP is 127.0.0.1, so an endpoint's port is the
*local* port its container port was mapped to (pod annotation `sandbox.modelops.dev/host-ports`),
not the container port. Whatever reads these endpoints (the service proxy, the gateway, a test,
kubectl) can connect to 127.0.0.1:<port> directly. Since each pod has its own ports, each pod
gets its own slice (the real controller also groups endpoints by identical port sets).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from modelops.sandbox.cluster.kube import (
    ENDPOINTS,
    ENDPOINTSLICES,
    ApiStatusError,
    Controller,
    Informer,
    Kube,
    key_of,
)

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

HOST_PORTS = "sandbox.modelops.dev/host-ports"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
NODE_NAME = "sandbox"


def pod_ready(pod: Mapping[str, Any]) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def host_ports(pod: Mapping[str, Any]) -> dict[int, int]:
    """The pod's {containerPort: localPort} map; {} when the kubelet has not written it (or it is bad)."""
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(HOST_PORTS)
    if not raw:
        return {}
    try:
        return {int(k): int(v) for k, v in json.loads(raw).items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def container_port(pod: Mapping[str, Any], target: int | str) -> int | None:
    """A Service targetPort (number, or the name of a container port) as the pod's container port."""
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target and isinstance(p.get("containerPort"), int):
                return int(p["containerPort"])
    return None


def selects(selector: Mapping[str, str], pod: Mapping[str, Any]) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _service_ports(svc: Mapping[str, Any]) -> list[Obj]:
    return [p for p in (svc.get("spec") or {}).get("ports") or [] if isinstance(p.get("port"), int)]


def _is_endpoint(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    return bool(status.get("podIP")) and status.get("phase") not in ("Succeeded", "Failed")


def pod_endpoint(svc: Mapping[str, Any], pod: Mapping[str, Any]) -> tuple[tuple[tuple[str, int, str], ...], Obj]:
    """(the pod's resolved ports as (name, localPort, protocol), its EndpointSlice endpoint)."""
    local = host_ports(pod)
    ports = []
    for sp in _service_ports(svc):
        target = sp.get("targetPort")
        cport = container_port(pod, target if isinstance(target, int | str) else int(sp["port"]))
        if cport is not None and cport in local:
            ports.append((str(sp.get("name") or ""), local[cport], str(sp.get("protocol") or "TCP")))
    meta = pod.get("metadata") or {}
    terminating = bool(meta.get("deletionTimestamp"))
    serving = pod_ready(pod)
    endpoint = {
        "addresses": [str((pod.get("status") or {}).get("podIP"))],
        "conditions": {"ready": serving and not terminating, "serving": serving, "terminating": terminating},
        "nodeName": (pod.get("spec") or {}).get("nodeName") or NODE_NAME,
        "targetRef": {"kind": "Pod", "namespace": meta.get("namespace"), "name": meta.get("name"),
                      "uid": meta.get("uid")},
    }  # fmt: skip
    return tuple(ports), endpoint


def _slice_name(service: str, ports: tuple[tuple[str, int, str], ...]) -> str:
    digest = hashlib.sha256(repr(ports).encode()).hexdigest()[:5]
    return f"{service[:57]}-{digest}"


def desired_slices(svc: Mapping[str, Any], pods: list[Obj]) -> dict[str, Obj]:
    """EndpointSlices for `svc` by name: one per distinct port set; one empty placeholder when no pod."""
    meta = svc.get("metadata") or {}
    name = str(meta.get("name"))
    groups: dict[tuple[tuple[str, int, str], ...], list[Obj]] = {}
    for pod in sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("name"))):
        ports, endpoint = pod_endpoint(svc, pod)
        groups.setdefault(ports, []).append(endpoint)
    if not groups:
        groups[()] = []
    owner = {"apiVersion": "v1", "kind": "Service", "name": name, "uid": meta.get("uid"),
             "controller": True, "blockOwnerDeletion": True}  # fmt: skip
    labels = {**(meta.get("labels") or {}), SERVICE_NAME_LABEL: name, MANAGED_BY_LABEL: MANAGED_BY}
    out = {}
    for ports, endpoints in groups.items():
        slice_name = _slice_name(name, ports)
        out[slice_name] = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": slice_name, "namespace": meta.get("namespace"), "labels": labels,
                         "ownerReferences": [owner]},
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports],
        }  # fmt: skip
    return out


def desired_endpoints(svc: Mapping[str, Any], pods: list[Obj]) -> Obj:
    """The v1 Endpoints of `svc`: ready pods in `addresses`, unready ones in `notReadyAddresses`."""
    meta = svc.get("metadata") or {}
    subsets: dict[tuple[tuple[str, int, str], ...], Obj] = {}
    for pod in sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("name"))):
        ports, endpoint = pod_endpoint(svc, pod)
        if endpoint["conditions"]["terminating"] or not ports:
            continue
        address = {"ip": endpoint["addresses"][0], "nodeName": endpoint["nodeName"],
                   "targetRef": endpoint["targetRef"]}  # fmt: skip
        subset = subsets.setdefault(ports, {"ports": [{"name": n, "port": p, "protocol": pr} for n, p, pr in ports]})
        subset.setdefault("addresses" if endpoint["conditions"]["ready"] else "notReadyAddresses", []).append(address)
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"),
                     "labels": dict(meta.get("labels") or {})},
        "subsets": list(subsets.values()),
    }  # fmt: skip


def _same(live: Mapping[str, Any], want: Mapping[str, Any], fields: tuple[str, ...]) -> bool:
    lm, wm = live.get("metadata") or {}, want.get("metadata") or {}
    if (lm.get("labels") or {}) != (wm.get("labels") or {}):
        return False
    if "ownerReferences" in wm and (lm.get("ownerReferences") or []) != wm["ownerReferences"]:
        return False
    return all((live.get(f) or []) == (want.get(f) or []) for f in fields)


class EndpointsController(Controller):
    """Keeps EndpointSlices and Endpoints of every selector Service equal to its pods, on every change."""

    name = "endpoints"

    def __init__(self, kube: Kube, services: Informer, pods: Informer, slices: Informer, endpoints: Informer) -> None:
        super().__init__()
        self.kube = kube
        self.services = services
        self.pods = pods
        self.slices = slices
        self.endpoints = endpoints
        services.add_handler(lambda _t, svc, _o: self.enqueue(svc))
        pods.add_handler(self._on_pod)
        slices.add_handler(self._on_slice)
        endpoints.add_handler(lambda _t, ep, _o: self.enqueue(ep))

    def _on_pod(self, _etype: str, pod: Obj, old: Obj | None) -> None:
        ns = key_of(pod)[0]
        for svc in self.services.items(ns):
            selector = (svc.get("spec") or {}).get("selector") or {}
            if selects(selector, pod) or (old is not None and selects(selector, old)):
                self.enqueue(svc)

    def _on_slice(self, _etype: str, slc: Obj, _old: Obj | None) -> None:
        labels = (slc.get("metadata") or {}).get("labels") or {}
        if labels.get(MANAGED_BY_LABEL) == MANAGED_BY and labels.get(SERVICE_NAME_LABEL):
            self.queue.add((key_of(slc)[0], labels[SERVICE_NAME_LABEL]))

    def _selected(self, svc: Obj) -> list[Obj]:
        selector = (svc.get("spec") or {}).get("selector") or {}
        ns = key_of(svc)[0]
        return [p for p in self.pods.items(ns) if selects(selector, p) and _is_endpoint(p)]

    async def reconcile(self, namespace: str, name: str) -> float | None:
        svc = self.services.get(namespace, name)
        selector = ((svc or {}).get("spec") or {}).get("selector")
        if svc is None or not selector or (svc.get("metadata") or {}).get("deletionTimestamp"):
            await self._clean(namespace, name, svc is None)
            return None
        pods = self._selected(svc)
        want = desired_slices(svc, pods)
        for slc in self.slices.items(namespace):
            labels = (slc.get("metadata") or {}).get("labels") or {}
            if labels.get(SERVICE_NAME_LABEL) == name and labels.get(MANAGED_BY_LABEL) == MANAGED_BY:
                slice_name = key_of(slc)[1]
                if slice_name not in want:
                    await self._delete(ENDPOINTSLICES, namespace, slice_name, self.slices)
        for slice_name, body in want.items():
            await self._write(self.slices, ENDPOINTSLICES, namespace, slice_name, body, ("endpoints", "ports"))
        await self._write(self.endpoints, ENDPOINTS, namespace, name, desired_endpoints(svc, pods), ("subsets",))
        return None

    async def _write(
        self, cache: Informer, res: Any, namespace: str, name: str, body: Obj, fields: tuple[str, ...]
    ) -> None:
        live = cache.get(namespace, name)
        if live is None:
            try:
                cache.upsert(await self.kube.create(res, namespace, body))
            except ApiStatusError as exc:
                if exc.code != 409:
                    raise
                # created meanwhile (or still cached as gone): the next event brings it back here
            return
        if _same(live, body, fields):
            return
        body = {**body, "metadata": {**body["metadata"], "resourceVersion": live["metadata"]["resourceVersion"]}}
        cache.upsert(await self.kube.replace(res, namespace, name, body))

    async def _delete(self, res: Any, namespace: str, name: str, cache: Informer) -> None:
        try:
            await self.kube.delete(res, namespace, name)
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
        cache.discard(namespace, name)

    async def _clean(self, namespace: str, name: str, gone: bool) -> None:
        """No Service, or one without a selector: the slices we manage go; Endpoints only with the Service
        (a selector-less Service's Endpoints are the user's, as on a cluster)."""
        for slc in self.slices.items(namespace):
            labels = (slc.get("metadata") or {}).get("labels") or {}
            if labels.get(SERVICE_NAME_LABEL) == name and labels.get(MANAGED_BY_LABEL) == MANAGED_BY:
                await self._delete(ENDPOINTSLICES, namespace, key_of(slc)[1], self.slices)
        if gone and self.endpoints.get(namespace, name) is not None:
            await self._delete(ENDPOINTS, namespace, name, self.endpoints)


Backend = tuple[str, int]


class EndpointIndex:
    """Ready backends per Service port, read from EndpointSlices: what kube-proxy and a gateway route to.

    Reads every slice labelled `kubernetes.io/service-name` (ours and any a user wrote for a
    selector-less Service). An endpoint whose `ready` is unset counts as ready, as the API says.
    """

    def __init__(self, slices: Informer) -> None:
        self.slices = slices
        self._memo: dict[tuple[str, str], dict[str, list[Backend]]] = {}
        slices.add_handler(self._on_slice)

    def _on_slice(self, _etype: str, slc: Obj, old: Obj | None) -> None:
        for obj in (slc, old):
            if obj is not None:
                svc = ((obj.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL)
                if svc:
                    self._memo.pop((key_of(obj)[0], svc), None)

    def ready(self, namespace: str, service: str, port_name: str) -> list[Backend]:
        """127.0.0.1:<local port> of every ready endpoint of the Service port named `port_name` ("" unnamed)."""
        by_port = self._memo.get((namespace, service))
        if by_port is None:
            by_port = self._memo[(namespace, service)] = self._compute(namespace, service)
        return by_port.get(port_name, [])

    def _compute(self, namespace: str, service: str) -> dict[str, list[Backend]]:
        out: dict[str, set[Backend]] = {}
        for slc in self.slices.items(namespace):
            if ((slc.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL) != service:
                continue
            ports = [(str(p.get("name") or ""), p.get("port")) for p in slc.get("ports") or []]
            for ep in slc.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready") is False or not ep.get("addresses"):
                    continue
                for port_name, port in ports:
                    if isinstance(port, int):
                        out.setdefault(port_name, set()).add((str(ep["addresses"][0]), port))
        return {name: sorted(backends) for name, backends in out.items()}
