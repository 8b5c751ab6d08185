"""The sandbox's Gateway API implementation: HTTPRoutes honoured per HTTP request on local ports.

An L7 proxy as Envoy Gateway is: every *request* (not connection) is matched against the
HTTPRoutes attached to a Gateway listener (hostnames, path Exact / PathPrefix /
RegularExpression, method, headers, query parameters, with the Gateway API's precedence rules),
then sent to one of the rule's backendRefs by smooth weighted round robin (weight 0: no traffic),
and within that Service to its ready endpoints (EndpointSlices, local ports) in turn.

It manages the Gateways of GatewayClasses whose `controllerName` is `CONTROLLER_NAME` (`sandbox
up` creates the GatewayClass `sandbox`). Each Gateway listener port gets a local port, recorded in
the Gateway's `status.addresses` (an address of type `sandbox.modelops.dev/local-url`) and in its
annotation `sandbox.modelops.dev/local-ports` (`{"<listenerPort>": <localPort>}`). Status is written
as a conformant controller does: GatewayClass Accepted; Gateway Accepted / Programmed and per
listener attachedRoutes; HTTPRoute `status.parents` with Accepted and ResolvedRefs (False with
reason BackendNotFound when a Service or its port is missing, RefNotPermitted across namespaces,
InvalidKind for anything but a core Service). Requests meant for an invalid backend get 500, for
a backend without ready endpoints 503, and requests no route matches 404, as from Envoy.

Not implemented: HTTPS/TLS listeners, ReferenceGrant, filters other than Request- and
ResponseHeaderModifier (a route using one is not Accepted, reason UnsupportedValue), timeouts,
retries, session persistence, mirroring.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from modelops.sandbox.cluster.endpoints import Backend, EndpointIndex
from modelops.sandbox.cluster.kube import ApiResource, ApiStatusError, Informer, Kube, key_of
from modelops.sandbox.selectors import selector_matches

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

GATEWAY_API_CRDS = Path(__file__).with_name("gateway-api-crds.yaml")
"""GatewayClass, Gateway and HTTPRoute CRDs (reduced upstream v1 standard channel); `sandbox up` installs them."""

GROUP = "gateway.networking.k8s.io"
GATEWAYCLASSES = ApiResource(GROUP, "v1", "gatewayclasses", "GatewayClass", namespaced=False)
GATEWAYS = ApiResource(GROUP, "v1", "gateways", "Gateway")
HTTPROUTES = ApiResource(GROUP, "v1", "httproutes", "HTTPRoute")
NAMESPACES = ApiResource("", "v1", "namespaces", "Namespace", namespaced=False)

CONTROLLER_NAME = "sandbox.modelops.dev/gateway-controller"
GATEWAY_CLASS = "sandbox"
LOCAL_PORTS = "sandbox.modelops.dev/local-ports"
LOCAL_URL_ADDRESS = "sandbox.modelops.dev/local-url"
SUPPORTED_FILTERS = ("RequestHeaderModifier", "ResponseHeaderModifier")
HOP_BY_HOP = frozenset(
    h.lower()
    for h in ("Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer",
              "Transfer-Encoding", "Upgrade", "Content-Length", "Host")
)  # fmt: skip


def gateway_class(name: str = GATEWAY_CLASS) -> Obj:
    """The GatewayClass this controller implements (what `sandbox up` installs)."""
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "GatewayClass",
        "metadata": {"name": name},
        "spec": {"controllerName": CONTROLLER_NAME, "description": "modelops sandbox: local ports on 127.0.0.1"},
    }


# -- matching (pure) -------------------------------------------------------------------------


def hostname_matches(pattern: str | None, host: str) -> bool:
    """A listener or route hostname (`*.example.com` wildcards one or more labels) against a Host."""
    if not pattern:
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def hostnames_intersect(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return True
    return hostname_matches(a, b) or hostname_matches(b, a)


def path_matches(match: Mapping[str, Any], path: str) -> bool:
    spec = match.get("path") or {"type": "PathPrefix", "value": "/"}
    kind, value = spec.get("type", "PathPrefix"), str(spec.get("value", "/"))
    if kind == "Exact":
        return path == value
    if kind == "RegularExpression":
        try:
            return re.fullmatch(value, path) is not None
        except re.error:
            return False
    prefix = value.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


def _value_matches(spec: Mapping[str, Any], actual: str | None) -> bool:
    if actual is None:
        return False
    if spec.get("type") == "RegularExpression":
        try:
            return re.fullmatch(str(spec.get("value")), actual) is not None
        except re.error:
            return False
    return actual == spec.get("value")


def request_matches(
    match: Mapping[str, Any], method: str, path: str, headers: Mapping[str, str], query: Mapping[str, str]
) -> bool:
    """One HTTPRouteMatch: all of path, method, headers and query parameters (ANDed)."""
    if not path_matches(match, path):
        return False
    if match.get("method") and match["method"] != method:
        return False
    lowered = {k.lower(): v for k, v in headers.items()}
    if any(not _value_matches(h, lowered.get(str(h.get("name")).lower())) for h in match.get("headers") or []):
        return False
    return all(_value_matches(q, query.get(str(q.get("name")))) for q in match.get("queryParams") or [])


def match_precedence(match: Mapping[str, Any]) -> tuple[int, int, int, int, int]:
    """Gateway API's order between matches (smaller first): Exact path, longest prefix, method, headers, query."""
    spec = match.get("path") or {"type": "PathPrefix", "value": "/"}
    kind = {"Exact": 0, "PathPrefix": 1}.get(spec.get("type", "PathPrefix"), 2)
    return (
        kind,
        -len(str(spec.get("value", "/"))),
        0 if match.get("method") else 1,
        -len(match.get("headers") or []),
        -len(match.get("queryParams") or []),
    )


class WeightedRoundRobin:
    """nginx's smooth weighted round robin: over any window the picks follow the weights closely.

    Weights of 0 are never picked; with all weights 0, `pick` returns None.
    """

    def __init__(self, weights: list[int]) -> None:
        self.weights = [max(0, w) for w in weights]
        self.current = [0] * len(weights)
        self.total = sum(self.weights)

    def pick(self) -> int | None:
        if self.total <= 0:
            return None
        best = -1
        for i, w in enumerate(self.weights):
            if w <= 0:
                continue
            self.current[i] += w
            if best < 0 or self.current[i] > self.current[best]:
                best = i
        self.current[best] -= self.total
        return best


# -- what the controller computes ------------------------------------------------------------


@dataclass
class BackendTarget:
    """One resolved backendRef: a Service port (port_name) or an error status for its share of traffic."""

    namespace: str
    service: str
    port_name: str | None
    weight: int
    error: int | None = None
    turn: int = 0


@dataclass
class RuleBackends:
    targets: list[BackendTarget]
    balancer: WeightedRoundRobin
    signature: tuple[Any, ...]

    def pick(self, index: EndpointIndex) -> tuple[Backend | None, int]:
        """(backend, 0) or (None, HTTP status): 500 invalid / no backends, 503 no ready endpoint."""
        i = self.balancer.pick()
        if i is None:
            return None, 500
        target = self.targets[i]
        if target.error is not None or target.port_name is None:
            return None, target.error or 500
        ready = index.ready(target.namespace, target.service, target.port_name)
        if not ready:
            return None, 503
        backend = ready[target.turn % len(ready)]
        target.turn += 1
        return backend, 0


@dataclass
class RouteEntry:
    """One HTTPRouteMatch of one rule of one route attached to a listener."""

    route: tuple[str, str]
    created: str
    rule: int
    match_index: int
    match: Obj
    hostnames: list[str]
    backends: RuleBackends
    filters: list[Obj]


@dataclass
class ListenerRoutes:
    name: str
    hostname: str | None
    entries: list[RouteEntry] = field(default_factory=list)


@dataclass
class PortServer:
    """The local HTTP server of one Gateway listener port (shared by listeners on that port)."""

    gateway: tuple[str, str]
    port: int
    local_port: int = 0
    runner: web.ServerRunner | None = None
    listeners: list[ListenerRoutes] = field(default_factory=list)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(ctype: str, ok: bool, reason: str, message: str, generation: int) -> Obj:
    return {"type": ctype, "status": "True" if ok else "False", "reason": reason, "message": message,
            "observedGeneration": generation, "lastTransitionTime": ""}  # fmt: skip


def _keep_transition_times(new: list[Obj], old: list[Obj] | None) -> list[Obj]:
    """lastTransitionTime moves only when a condition's status changes (kstatus / metav1.Condition)."""
    by_type = {c.get("type"): c for c in old or []}
    now = _now()
    for cond in new:
        prev = by_type.get(cond["type"])
        cond["lastTransitionTime"] = (
            prev["lastTransitionTime"]
            if prev and prev.get("status") == cond["status"] and prev.get("lastTransitionTime")
            else now
        )
    return new


def _strip_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_times(v) for k, v in value.items() if k != "lastTransitionTime"}
    if isinstance(value, list):
        return [_strip_times(v) for v in value]
    return value


class GatewayController:
    """Implements the sandbox GatewayClass: local listeners, per-request routing, Gateway API status."""

    def __init__(
        self,
        kube: Kube,
        *,
        classes: Informer,
        gateways: Informer,
        routes: Informer,
        services: Informer,
        namespaces: Informer,
        index: EndpointIndex,
        host: str = "127.0.0.1",
    ) -> None:
        self.kube = kube
        self.classes = classes
        self.gateways = gateways
        self.routes = routes
        self.services = services
        self.namespaces = namespaces
        self.index = index
        self.host = host
        self._servers: dict[tuple[str, str, int], PortServer] = {}
        self._balancers: dict[tuple[str, int], RuleBackends] = {}
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        for informer in (classes, gateways, routes, services, namespaces):
            informer.add_handler(lambda *_: self._dirty.set())

    def start(self) -> None:
        if self._task is None:
            self._dirty.set()
            self._task = asyncio.create_task(self._run(), name="gateway-controller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for server in self._servers.values():
            await self._close(server)
        self._servers.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def local_ports(self) -> dict[tuple[str, str, int], int]:
        """{(namespace, gateway, listenerPort): localPort} currently serving."""
        return {k: s.local_port for k, s in self._servers.items()}

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.resync()
            except ApiStatusError as exc:
                logger.debug("gateway resync: %s; retrying", exc)
                await asyncio.sleep(0.2)
                self._dirty.set()
            except Exception:
                logger.exception("gateway resync failed")
                await asyncio.sleep(1.0)
                self._dirty.set()

    # -- reconcile ------------------------------------------------------------------------------

    def _ours(self, gw: Obj) -> bool:
        cls = self.classes.get(None, str((gw.get("spec") or {}).get("gatewayClassName")))
        return cls is not None and (cls.get("spec") or {}).get("controllerName") == CONTROLLER_NAME

    async def resync(self) -> None:
        """Recompute listeners, routing tables and every status this controller owns."""
        for cls in self.classes.items():
            if (cls.get("spec") or {}).get("controllerName") == CONTROLLER_NAME:
                await self._class_status(cls)
        gateways = {key_of(g): g for g in self.gateways.items() if self._ours(g)}
        # listeners: one local server per (gateway, port) of an HTTP listener
        wanted: dict[tuple[str, str, int], list[Obj]] = {}
        for key, gw in gateways.items():
            for listener in (gw.get("spec") or {}).get("listeners") or []:
                if listener.get("protocol") == "HTTP":
                    wanted.setdefault((*key, int(listener["port"])), []).append(listener)
        for skey in [k for k in self._servers if k not in wanted]:
            await self._close(self._servers.pop(skey))
        staged: dict[tuple[str, str, int], list[ListenerRoutes]] = {}
        for skey, listeners in wanted.items():
            if skey not in self._servers:
                server = PortServer(gateway=skey[:2], port=skey[2])
                preferred = _annotation_ports(gateways[skey[:2]]).get(skey[2], 0)
                await self._open(server, preferred)
                self._servers[skey] = server
            staged[skey] = [ListenerRoutes(str(lst["name"]), lst.get("hostname")) for lst in listeners]
        # routes: attach, build the new tables (swapped in whole: requests never see half of them), status
        attached: dict[tuple[str, str, str], int] = {}
        used: set[tuple[str, int]] = set()
        statuses = [
            (route, self._route(route, gateways, attached, used, staged))
            for route in sorted(self.routes.items(), key=_route_order)
        ]
        for skey, tables in staged.items():
            self._servers[skey].listeners = tables
        self._balancers = {k: v for k, v in self._balancers.items() if k in used}
        # status only now: whoever sees a route Accepted can send it requests at once
        for route, parents in statuses:
            await self._route_status(route, parents)
        for gw in gateways.values():
            await self._gateway_status(gw, attached)

    def _route(
        self,
        route: Obj,
        gateways: dict[tuple[str, str], Obj],
        attached: dict[tuple[str, str, str], int],
        used: set[tuple[str, int]],
        staged: dict[tuple[str, str, int], list[ListenerRoutes]],
    ) -> list[Obj]:
        """Attach `route` to its parents in the staged tables; returns its status.parents entries (ours)."""
        ns, name = key_of(route)
        meta, spec = route.get("metadata") or {}, route.get("spec") or {}
        generation = int(meta.get("generation") or 0)
        hostnames = [str(h) for h in spec.get("hostnames") or []]
        resolved_ok, resolved_reason, resolved_msg = True, "ResolvedRefs", "all references resolved"
        rules: list[tuple[int, Obj, RuleBackends]] = []
        unsupported = ""
        for i, rule in enumerate(spec.get("rules") or []):
            backends, problem = self._backends(ns, rule)
            if problem and resolved_ok:
                resolved_ok, resolved_reason, resolved_msg = False, problem[0], problem[1]
            uid = str(meta.get("uid") or f"{ns}/{name}")
            key = (uid, i)
            current = self._balancers.get(key)
            if current is None or current.signature != backends.signature:
                current = self._balancers[key] = backends
            else:  # same backends: keep the balancer's phase, refresh resolution
                for old, new in zip(current.targets, backends.targets, strict=True):
                    old.port_name, old.error = new.port_name, new.error
            used.add(key)
            for f in rule.get("filters") or []:
                if f.get("type") not in SUPPORTED_FILTERS:
                    unsupported = f"filter {f.get('type')} is not supported by the sandbox gateway"
            rules.append((i, rule, current))
        parents: list[Obj] = []
        for ref in spec.get("parentRefs") or []:
            if (ref.get("group") or GROUP) != GROUP or (ref.get("kind") or "Gateway") != "Gateway":
                continue
            gw_key = (str(ref.get("namespace") or ns), str(ref.get("name")))
            gw = gateways.get(gw_key)
            if gw is None:
                continue  # not a Gateway of ours: its controller (if any) writes that parent's status
            accepted, reason, message, listeners = self._attach(route, ref, gw, hostnames)
            if accepted and unsupported:
                accepted, reason, message, listeners = False, "UnsupportedValue", unsupported, []
            for listener in listeners:
                attached[(*gw_key, listener)] = attached.get((*gw_key, listener), 0) + 1
                _add_entries(staged, gw_key, listener, (ns, name), route, hostnames, rules)
            parents.append(
                {
                    "parentRef": {k: v for k, v in ref.items() if v is not None},
                    "controllerName": CONTROLLER_NAME,
                    "conditions": [
                        _condition("Accepted", accepted, reason, message, generation),
                        _condition("ResolvedRefs", resolved_ok, resolved_reason, resolved_msg, generation),
                    ],
                }
            )
        return parents

    def _backends(self, ns: str, rule: Obj) -> tuple[RuleBackends, tuple[str, str] | None]:
        targets: list[BackendTarget] = []
        problem: tuple[str, str] | None = None
        for ref in rule.get("backendRefs") or []:
            weight = int(ref.get("weight", 1))
            svc_ns, svc_name = str(ref.get("namespace") or ns), str(ref.get("name"))
            target = BackendTarget(svc_ns, svc_name, None, weight)
            if (ref.get("group") or "") != "" or (ref.get("kind") or "Service") != "Service":
                target.error = 500
                problem = problem or ("InvalidKind", f"backendRef {svc_name}: only core Services are supported")
            elif svc_ns != ns:
                target.error = 500
                problem = problem or (
                    "RefNotPermitted",
                    f"backendRef {svc_ns}/{svc_name}: no ReferenceGrant support in the sandbox",
                )
            else:
                svc = self.services.get(svc_ns, svc_name)
                port = ref.get("port")
                if svc is None:
                    target.error = 500
                    problem = problem or ("BackendNotFound", f"service {svc_ns}/{svc_name} not found")
                else:
                    names = [str(p.get("name") or "") for p in (svc.get("spec") or {}).get("ports") or []
                             if p.get("port") == port]  # fmt: skip
                    if not names:
                        target.error = 500
                        problem = problem or ("BackendNotFound", f"service {svc_ns}/{svc_name} has no port {port}")
                    else:
                        target.port_name = names[0]
            targets.append(target)
        signature = tuple((t.namespace, t.service, t.weight) for t in targets)
        return RuleBackends(targets, WeightedRoundRobin([t.weight for t in targets]), signature), problem

    def _attach(self, route: Obj, ref: Obj, gw: Obj, hostnames: list[str]) -> tuple[bool, str, str, list[str]]:
        """(accepted, reason, message, names of the listeners the route attaches to) for one parentRef."""
        route_ns = key_of(route)[0]
        gw_ns = key_of(gw)[0]
        candidates = [
            lst
            for lst in (gw.get("spec") or {}).get("listeners") or []
            if (not ref.get("sectionName") or lst.get("name") == ref["sectionName"])
            and (not ref.get("port") or lst.get("port") == ref["port"])
        ]
        if not candidates:
            return False, "NoMatchingParent", "no listener matches the parentRef's sectionName/port", []
        allowed = [lst for lst in candidates if self._allows(lst, route_ns, gw_ns)]
        if not allowed:
            return False, "NotAllowedByListeners", "no listener allows routes from this namespace or kind", []
        matching = [
            lst for lst in allowed
            if not hostnames or any(hostnames_intersect(lst.get("hostname"), h) for h in hostnames)
        ]  # fmt: skip
        if not matching:
            return False, "NoMatchingListenerHostname", "no listener hostname matches the route's hostnames", []
        return True, "Accepted", "Route is accepted", [str(lst["name"]) for lst in matching]

    def _allows(self, listener: Obj, route_ns: str, gw_ns: str) -> bool:
        if listener.get("protocol") not in ("HTTP", "HTTPS"):
            return False
        allowed = listener.get("allowedRoutes") or {}
        kinds = allowed.get("kinds")
        if kinds and not any(k.get("kind") == "HTTPRoute" and (k.get("group") or GROUP) == GROUP for k in kinds):
            return False
        ns_rule = allowed.get("namespaces") or {}
        source = ns_rule.get("from", "Same")
        if source == "All":
            return True
        if source == "Selector":
            namespace = self.namespaces.get(None, route_ns)
            labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
            return namespace is not None and selector_matches(ns_rule.get("selector") or {}, labels)
        return route_ns == gw_ns

    # -- status ---------------------------------------------------------------------------------

    async def _class_status(self, cls: Obj) -> None:
        generation = int((cls.get("metadata") or {}).get("generation") or 0)
        old = (cls.get("status") or {}).get("conditions")
        conditions = _keep_transition_times(
            [_condition("Accepted", True, "Accepted", "handled by the modelops sandbox gateway", generation)], old
        )
        if _strip_times(conditions) != _strip_times(old or []):
            name = key_of(cls)[1]
            self.classes.upsert(
                await self.kube.patch(GATEWAYCLASSES, None, name, {"status": {"conditions": conditions}},
                                      subresource="status")
            )  # fmt: skip

    async def _gateway_status(self, gw: Obj, attached: dict[tuple[str, str, str], int]) -> None:
        ns, name = key_of(gw)
        meta = gw.get("metadata") or {}
        generation = int(meta.get("generation") or 0)
        old = gw.get("status") or {}
        old_listeners = {lst.get("name"): lst for lst in old.get("listeners") or []}
        listeners = []
        ports: dict[int, int] = {}
        programmed_any = False
        for lst in (gw.get("spec") or {}).get("listeners") or []:
            lname, port = str(lst["name"]), int(lst["port"])
            ok = lst.get("protocol") == "HTTP"
            server = self._servers.get((ns, name, port))
            if ok and server is not None:
                ports[port] = server.local_port
                programmed_any = True
            reason = "Accepted" if ok else "UnsupportedProtocol"
            msg = f"served on {self.host}:{server.local_port}" if ok and server else "only HTTP listeners are served"
            conds = [
                _condition("Accepted", ok, reason, msg, generation),
                _condition("Programmed", ok, "Programmed" if ok else "Invalid", msg, generation),
                _condition("ResolvedRefs", True, "ResolvedRefs", "no references to resolve", generation),
            ]
            listeners.append({
                "name": lname,
                "supportedKinds": [{"group": GROUP, "kind": "HTTPRoute"}] if ok else [],
                "attachedRoutes": attached.get((ns, name, lname), 0),
                "conditions": _keep_transition_times(conds, (old_listeners.get(lname) or {}).get("conditions")),
            })  # fmt: skip
        addresses = [{"type": "IPAddress", "value": self.host}]
        addresses += [
            {"type": LOCAL_URL_ADDRESS, "value": f"http://{self.host}:{lp}"} for _, lp in sorted(ports.items())
        ]
        conditions = _keep_transition_times(
            [
                _condition("Accepted", True, "Accepted", "Gateway is accepted", generation),
                _condition(
                    "Programmed", programmed_any, "Programmed" if programmed_any else "Invalid",
                    "listening on 127.0.0.1" if programmed_any else "no HTTP listener", generation,
                ),
            ],
            old.get("conditions"),
        )  # fmt: skip
        status = {"addresses": addresses, "conditions": conditions, "listeners": listeners}
        if _strip_times(status) != _strip_times({k: old.get(k) for k in status}):
            self.gateways.upsert(await self.kube.patch(GATEWAYS, ns, name, {"status": status}, subresource="status"))
        if _annotation_ports(gw) != ports:
            value = json.dumps({str(k): v for k, v in sorted(ports.items())}) if ports else None
            patch = {"metadata": {"annotations": {LOCAL_PORTS: value}}}
            self.gateways.upsert(await self.kube.patch(GATEWAYS, ns, name, patch))

    async def _route_status(self, route: Obj, ours: list[Obj]) -> None:
        ns, name = key_of(route)
        old = (route.get("status") or {}).get("parents") or []
        others = [p for p in old if p.get("controllerName") != CONTROLLER_NAME]
        old_ours = {json.dumps(p.get("parentRef"), sort_keys=True): p for p in old if p not in others}
        for parent in ours:
            prev = old_ours.get(json.dumps(parent["parentRef"], sort_keys=True)) or {}
            _keep_transition_times(parent["conditions"], prev.get("conditions"))
        parents = others + ours
        if _strip_times(parents) == _strip_times(old):
            return
        try:
            self.routes.upsert(
                await self.kube.patch(HTTPROUTES, ns, name, {"status": {"parents": parents}}, subresource="status")
            )
        except ApiStatusError as exc:
            if exc.code != 404:
                raise

    # -- serving --------------------------------------------------------------------------------

    async def _open(self, server: PortServer, preferred: int) -> None:
        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            return await self._serve(server, request)

        runner = web.ServerRunner(web.Server(handle), handle_signals=False)
        await runner.setup()
        for port in (preferred, 0) if preferred else (0,):
            try:
                site = web.TCPSite(runner, self.host, port)
                await site.start()
                break
            except OSError:
                continue
        server.runner = runner
        server.local_port = int(runner.addresses[0][1])
        logger.info("gateway %s/%s:%d on %s:%d", *server.gateway, server.port, self.host, server.local_port)

    async def _close(self, server: PortServer) -> None:
        if server.runner is not None:
            await server.runner.cleanup()
            server.runner = None

    def route(
        self, server: PortServer, host: str, method: str, path: str, headers: Mapping[str, str],
        query: Mapping[str, str],
    ) -> RouteEntry | None:  # fmt: skip
        """The entry a request goes to: most specific listener for the Host, then Gateway API precedence."""
        listeners = [lst for lst in server.listeners if hostname_matches(lst.hostname, host)]
        if not listeners:
            return None
        listener = min(listeners, key=lambda lst: _listener_specificity(lst.hostname))
        best: tuple[Any, ...] | None = None
        chosen: RouteEntry | None = None
        for entry in listener.entries:
            if entry.hostnames and not any(hostname_matches(h, host) for h in entry.hostnames):
                continue
            if not request_matches(entry.match, method, path, headers, query):
                continue
            exact = max((len(h) for h in entry.hostnames if not h.startswith("*") and h == host), default=0)
            anyh = max((len(h) for h in entry.hostnames if hostname_matches(h, host)), default=0)
            key = (-exact, -anyh, *match_precedence(entry.match), entry.created, entry.route, entry.rule,
                   entry.match_index)  # fmt: skip
            if best is None or key < best:
                best, chosen = key, entry
        return chosen

    async def _serve(self, server: PortServer, request: web.BaseRequest) -> web.StreamResponse:
        host = (request.host or "").rsplit(":", 1)[0].lower() if not (request.host or "").startswith("[") else ""
        entry = self.route(server, host, request.method, request.path, request.headers, request.query)
        if entry is None:
            return web.Response(status=404, text="no route matches\n")
        backend, status = entry.backends.pick(self.index)
        if backend is None:
            text = "no healthy upstream\n" if status == 503 else "invalid backend\n"
            return web.Response(status=status, text=text)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Host"] = request.host or host
        headers["X-Forwarded-For"] = request.remote or ""
        headers["X-Forwarded-Proto"] = "http"
        _modify(headers, entry.filters, "RequestHeaderModifier", "requestHeaderModifier")
        body = await request.read()
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
            )  # fmt: skip
        url = f"http://{backend[0]}:{backend[1]}{request.rel_url}"
        try:
            async with self._session.request(
                request.method, url, headers=headers, data=body or None, allow_redirects=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            ) as resp:  # fmt: skip
                payload = await resp.read()
                out_headers = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP}
        except (aiohttp.ClientError, OSError):
            return web.Response(status=503, text="upstream connect error\n")
        _modify(out_headers, entry.filters, "ResponseHeaderModifier", "responseHeaderModifier")
        return web.Response(status=resp.status, body=payload, headers=out_headers)


def _modify(headers: dict[str, str], filters: list[Obj], ftype: str, key: str) -> None:
    for f in filters:
        if f.get("type") != ftype:
            continue
        spec = f.get(key) or {}
        lowered = {k.lower(): k for k in headers}
        for h in spec.get("set") or []:
            headers.pop(lowered.get(str(h.get("name")).lower(), ""), None)
            headers[str(h.get("name"))] = str(h.get("value"))
        for h in spec.get("add") or []:
            existing = lowered.get(str(h.get("name")).lower())
            if existing is not None:
                headers[existing] = f"{headers[existing]},{h.get('value')}"
            else:
                headers[str(h.get("name"))] = str(h.get("value"))
        for name in spec.get("remove") or []:
            headers.pop(lowered.get(str(name).lower(), ""), None)


def _add_entries(
    staged: dict[tuple[str, str, int], list[ListenerRoutes]],
    gw_key: tuple[str, str],
    listener: str,
    route_key: tuple[str, str],
    route: Obj,
    hostnames: list[str],
    rules: list[tuple[int, Obj, RuleBackends]],
) -> None:
    created = str((route.get("metadata") or {}).get("creationTimestamp") or "")
    for (gns, gname, _port), tables in staged.items():
        if (gns, gname) != gw_key:
            continue
        for lst in tables:
            if lst.name != listener:
                continue
            for i, rule, backends in rules:
                matches = rule.get("matches") or [{"path": {"type": "PathPrefix", "value": "/"}}]
                for j, match in enumerate(matches):
                    lst.entries.append(
                        RouteEntry(route_key, created, i, j, match, hostnames, backends, rule.get("filters") or [])
                    )


def _listener_specificity(hostname: str | None) -> tuple[int, int]:
    if not hostname:
        return (2, 0)
    if hostname.startswith("*."):
        return (1, -len(hostname))
    return (0, -len(hostname))


def _route_order(route: Obj) -> tuple[str, str, str]:
    meta = route.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("namespace")), str(meta.get("name")))


def _annotation_ports(obj: Obj) -> dict[int, int]:
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(LOCAL_PORTS)
    try:
        return {int(k): int(v) for k, v in json.loads(raw or "{}").items()}
    except (ValueError, TypeError, AttributeError):
        return {}
