"""Kubernetes I/O of a ModelDeployment: observe what exists, apply a Decision idempotently, write
status, and record in each ModelVersion where it serves.

Writes compare the desired manifest with the live object **only on the fields we set**, so the
API server's defaulting (strategy, terminationMessagePath, clusterIP, probe timeouts, quantity
canonical forms ...) never makes an unchanged ModelDeployment write anything. Patches are JSON
merge patches (lists we own are replaced whole) carrying the live resourceVersion, so a
concurrent change is a 409 and a retry, never a lost update.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import urllib3
from kubernetes import client
from kubernetes.client import AppsV1Api, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from kubernetes.utils.quantity import parse_quantity
from pydantic import BaseModel

from modelops.api.modeldeployment import AnalysisMetric, MetricResult, ModelDeploymentSpec, ModelDeploymentStatus
from modelops.core.model_server_manifests import (
    DEPLOYMENT_LABEL,
    REVISION_ANNOTATION,
    VERSION_ANNOTATION,
    DeploymentRef,
    ServerOptions,
    Track,
    build_http_route,
    build_services,
    build_track_deployment,
    label_value,
    server_revision,
    track_deployment_name,
)
from modelops.core.rollout import Blocker, Decision, RolloutObservations, TrackObservation, TrackPlan, serving
from modelops.core.version_selection import VersionInfo, select_version
from modelops.k8s.analysis import AnalysisTarget, default_prometheus_url, measure
from modelops.k8s.client import describe_unreachable
from modelops.k8s.resources import MODEL_DEPLOYMENT, MODEL_VERSION, Conflict, CustomObjects, Rejected

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Outcome = Literal["created", "updated", "unchanged"]
MERGE_PATCH = "application/merge-patch+json"
GATEWAY_GROUP, GATEWAY_VERSION = "gateway.networking.k8s.io", "v1"


# ------------------------------------------------------------------------------ observe


@dataclass(frozen=True)
class Observed:
    """Observations for the planner, plus the live objects the apply step compares against."""

    obs: RolloutObservations
    versions: Mapping[str, VersionInfo]
    version_objects: Mapping[str, Obj]
    deployments: Mapping[str, Obj | None] = field(default_factory=dict)
    route: Obj | None = None


def owner_of(body: Mapping[str, Any]) -> DeploymentRef:
    meta = body["metadata"]
    return DeploymentRef(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])


def track_observation(deployment: Obj | None) -> TrackObservation:
    """A track's Deployment as the planner sees it; ready pods counted only for the current template.

    ``readyReplicas`` counts old and new pods alike; during the Deployment's own rolling update
    the pods not yet updated may all be ready, so those are subtracted (a lower bound). Until the
    controller has observed the latest generation nothing is known: zero ready.
    """
    if deployment is None:
        return TrackObservation()
    meta, spec, st = deployment.get("metadata") or {}, deployment.get("spec") or {}, deployment.get("status") or {}
    annotations = meta.get("annotations") or {}
    replicas = int(spec.get("replicas", 1))
    generation, observed = meta.get("generation"), st.get("observedGeneration")
    current = generation is None or (observed is not None and int(observed) >= int(generation))
    total, updated, ready = (
        int(st.get("replicas") or 0),
        int(st.get("updatedReplicas") or 0),
        int(st.get("readyReplicas") or 0),
    )
    ready_new = min(updated, max(0, ready - max(0, total - updated))) if current else 0
    return TrackObservation(
        exists=True,
        version=annotations.get(VERSION_ANNOTATION),
        revision=annotations.get(REVISION_ANNOTATION),
        replicas=replicas,
        ready=ready_new,
        updated=current and updated == total,
        observed=current,
    )


PATHS = {
    "Deployment": "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
    "Service": "/api/v1/namespaces/{namespace}/services/{name}",
    "Secret": "/api/v1/namespaces/{namespace}/secrets/{name}",
    "HTTPRoute": f"/apis/{GATEWAY_GROUP}/{GATEWAY_VERSION}/namespaces/{{namespace}}/httproutes/{{name}}",
    "Gateway": f"/apis/{GATEWAY_GROUP}/{GATEWAY_VERSION}/namespaces/{{namespace}}/gateways/{{name}}",
    "ModelDeployment": "/apis/modelops.dev/v1alpha1/namespaces/{namespace}/modeldeployments/{name}",
    "ModelVersion": "/apis/modelops.dev/v1alpha1/namespaces/{namespace}/modelversions/{name}",
}


def read_object(api: client.ApiClient, kind: str, namespace: str, name: str) -> Obj | None:
    """The object as the API server sent it (plain JSON), None when absent.

    The typed client would build and validate a model of every field, which a reconcile then
    turned back into a dict: most of a reconcile's CPU, for a read whose result is used as JSON.
    """
    return _get_json(api, PATHS[kind], {"namespace": namespace, "name": name}, [], f"{kind}/{name}")


def list_objects(api: client.ApiClient, kind: str, namespace: str, label_selector: str) -> dict[str, Obj]:
    """The objects of ``kind`` matching ``label_selector``, by name (plain JSON, one request)."""
    path = PATHS[kind].rsplit("/", 1)[0]
    found = _get_json(api, path, {"namespace": namespace}, [("labelSelector", label_selector)], f"{kind} list")
    return {o["metadata"]["name"]: o for o in (found or {}).get("items") or []}


def _get_json(
    api: client.ApiClient, path: str, path_params: dict[str, str], query: list[tuple[str, str]], what: str
) -> Obj | None:
    method, url, headers, body, post = api.param_serialize(
        method="GET",
        resource_path=path,
        path_params=path_params,
        query_params=query,
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    try:
        resp = api.call_api(method, url, headers, body, post)
        data = resp.read()
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise describe_unreachable(api, exc) from exc
    if resp.status == 404:
        return None
    if not 200 <= resp.status <= 299:
        text = data.decode("utf-8", "replace")
        try:
            ApiException.from_response(http_resp=resp, body=text, data=None)
        except ApiException as exc:
            raise _translate(exc, f"read {what}") from exc
        raise Rejected(f"read {what}: {resp.status}: {text[:300]}")
    result: Obj = json.loads(data)
    return result


def _translate(exc: ApiException, what: str) -> Exception:
    if exc.status == 409:
        return Conflict(f"{what}: {exc.reason}")
    return Rejected(f"{what}: {exc.status} {exc.reason}: {(exc.body or '')[:300]}")


def _gateway_blockers(api: client.ApiClient, namespace: str, spec: ModelDeploymentSpec) -> list[Blocker]:
    canary = spec.strategy.canary
    gateway = canary.traffic_routing.gateway_api if canary and canary.traffic_routing else None
    if gateway is None:
        return []
    custom = CustomObjectsApi(api)
    try:
        resources = custom.get_api_resources(GATEWAY_GROUP, GATEWAY_VERSION)
        served = {r.name for r in resources.resources or []}
    except ApiException as exc:
        if exc.status != 404:
            raise _translate(exc, "discovery of gateway.networking.k8s.io/v1") from exc
        served = set()
    if "httproutes" not in served:
        return [
            Blocker(
                "GatewayAPIMissing",
                "the HTTPRoute API (gateway.networking.k8s.io/v1) is not installed: install the Gateway API "
                "CRDs or remove spec.strategy.canary.trafficRouting.gatewayApi",
            )
        ]
    blockers = []
    for ref in gateway.parent_refs:
        if read_object(api, "Gateway", namespace, ref.name) is None:
            blockers.append(
                Blocker(
                    "GatewayNotFound",
                    f"Gateway {ref.name} (trafficRouting.gatewayApi.parentRefs) not found in namespace {namespace}",
                )
            )
    return blockers


def _secret_blockers(api: client.ApiClient, namespace: str, spec: ModelDeploymentSpec) -> list[Blocker]:
    ref = spec.server.artifact_credentials
    if ref is None:
        return []
    if read_object(api, "Secret", namespace, ref.name) is None:
        return [
            Blocker(
                "SecretNotFound",
                f"Secret {ref.name} (spec.server.artifactCredentials) not found in namespace {namespace}",
            )
        ]
    return []


class Catalog(Protocol):
    """The ModelVersions as the operator's watch last saw them (a kopf index), trimmed to what a
    rollout reads (:func:`catalog_entry`): no API call per reconcile, at 10 or 10,000 versions."""

    def of_model(self, namespace: str, model: str) -> Sequence[Obj]: ...

    def named(self, namespace: str, name: str) -> Obj | None: ...


def catalog_entry(body: Mapping[str, Any]) -> Obj:
    """A ModelVersion as the catalog keeps it: identity, spec, and the status a rollout reads."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    return {
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta
        },
        "spec": dict(body.get("spec") or {}),
        "status": {k: status[k] for k in ("phase", "stage", "deployments") if k in status},
    }


def _touched_names(spec: ModelDeploymentSpec, status: Mapping[str, Any]) -> set[str]:
    """The versions whose ``status.deployments`` this deployment may change: the one it names,
    and those its status names (stable, canary, failed, per track)."""
    tracks = status.get("tracks") or {}
    names = {
        spec.model.version_ref,
        status.get("stableVersion"),
        status.get("canaryVersion"),
        status.get("failedVersion"),
        *((tracks.get(t) or {}).get("version") for t in ("stable", "canary")),
    }
    return {n for n in names if isinstance(n, str) and n}


def _read_versions(api: CustomObjects, namespace: str, names: set[str]) -> dict[str, Obj]:
    objects: dict[str, Obj] = {}
    for name in sorted(names):
        found = read_object(api.api, "ModelVersion", namespace, name)
        if found is not None:
            objects[name] = found
    return objects


def _version_objects(
    api: CustomObjects,
    namespace: str,
    spec: ModelDeploymentSpec,
    status: Mapping[str, Any],
    catalog: Catalog | None = None,
) -> tuple[dict[str, Obj], list[VersionInfo]]:
    """The ModelVersions one decision can touch (those whose ``status.deployments`` it may write,
    and the one it may deploy), and the candidates the selection chooses among.

    ``versionRef``: the named version is the only candidate. ``modelName``: every version of the
    model is. With a ``catalog`` nothing is read from the API server; without one, the touched
    versions are read (and, for ``modelName``, every version of the namespace listed).
    """
    names = _touched_names(spec, status)
    model = spec.model.model_name
    if catalog is not None:
        objects = {n: o for n in sorted(names) if (o := catalog.named(namespace, n)) is not None}
        if model is None:
            return objects, [VersionInfo.from_object(o) for o in objects.values()]
        of_model = {o["metadata"]["name"]: o for o in catalog.of_model(namespace, model)}
        candidates = [VersionInfo.from_object(o) for o in of_model.values()]
        chosen = select_version(spec.model, candidates).version
        if chosen is not None:
            objects[chosen.name] = of_model[chosen.name]
        return objects, candidates
    if model is None:
        objects = _read_versions(api, namespace, names)
        return objects, [VersionInfo.from_object(o) for o in objects.values()]
    listed = {o["metadata"]["name"]: o for o in api.list(MODEL_VERSION, namespace)}
    objects = {n: o for n, o in listed.items() if n in names}
    chosen = select_version(spec.model, [VersionInfo.from_object(o) for o in listed.values()]).version
    if chosen is not None:
        objects[chosen.name] = listed[chosen.name]
    return objects, [VersionInfo.from_object(o) for o in listed.values()]


def observe(
    api: CustomObjects, body: Mapping[str, Any], spec: ModelDeploymentSpec, catalog: Catalog | None = None
) -> Observed:
    """Everything one decision needs: versions, both tracks, the route, missing prerequisites."""
    owner = owner_of(body)
    objects, candidates = _version_objects(api, owner.namespace, spec, body.get("status") or {}, catalog)
    versions = {name: VersionInfo.from_object(o) for name, o in objects.items()}
    labelled = list_objects(api.api, "Deployment", owner.namespace, f"{DEPLOYMENT_LABEL}={label_value(owner.name)}")
    deployments = {track: labelled.get(track_deployment_name(owner, track)) for track in ("stable", "canary")}
    route = None
    blockers = [*_secret_blockers(api.api, owner.namespace, spec), *_gateway_blockers(api.api, owner.namespace, spec)]
    route_manifest = build_http_route(owner, spec, 0)
    if route_manifest is not None and not any(b.reason == "GatewayAPIMissing" for b in blockers):
        route = read_object(api.api, "HTTPRoute", owner.namespace, route_manifest["metadata"]["name"])
    obs = RolloutObservations(
        generation=int(body["metadata"].get("generation") or 1),
        selection=select_version(spec.model, candidates),
        server_revision=server_revision(spec.server),
        stable=track_observation(deployments["stable"]),
        canary=track_observation(deployments["canary"]),
        blockers=tuple(blockers),
    )
    return Observed(obs, versions, objects, deployments, route)


# -------------------------------------------------------------------------------- apply


def _quantity_equal(a: str, b: str) -> bool:
    try:
        return bool(parse_quantity(a) == parse_quantity(b))
    except ValueError:
        return False


_QUANTITY_KEYS = frozenset({"resources", "requests", "limits"})


def differs(desired: Any, live: Any, quantities: bool = False) -> bool:
    """True when a field we set differs from the live object; fields we do not set are ignored,
    and resource quantities compare by value ("500m" == "0.5"). (Plain dicts and lists: JSON as
    built and as read; runs on every child at every reconcile.)"""
    if desired == live:
        return False
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return True
        return any(differs(v, live.get(k), quantities or k in _QUANTITY_KEYS) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return True
        return any(differs(d, lv, quantities) for d, lv in zip(desired, live, strict=True))
    if quantities and isinstance(desired, str) and isinstance(live, str | int | float):
        return not _quantity_equal(desired, str(live))
    return True


@dataclass(frozen=True)
class _Ops:
    create: Callable[..., Any]
    patch: Callable[..., Any]


def _ops(api: client.ApiClient, kind: str) -> _Ops:
    if kind == "Deployment":
        apps = AppsV1Api(api)
        return _Ops(
            apps.create_namespaced_deployment,
            lambda n, ns, b: apps.patch_namespaced_deployment(n, ns, b, _content_type=MERGE_PATCH),
        )
    if kind == "Service":
        core = CoreV1Api(api)
        return _Ops(
            core.create_namespaced_service,
            lambda n, ns, b: core.patch_namespaced_service(n, ns, b, _content_type=MERGE_PATCH),
        )
    if kind == "HTTPRoute":
        custom = CustomObjectsApi(api)
        g, v, plural = GATEWAY_GROUP, GATEWAY_VERSION, "httproutes"
        return _Ops(
            lambda ns, b: custom.create_namespaced_custom_object(g, v, ns, plural, b),
            lambda n, ns, b: custom.patch_namespaced_custom_object(g, v, ns, plural, n, b, _content_type=MERGE_PATCH),
        )
    raise ValueError(f"no apply support for kind {kind}")


OnWrite = Callable[[str, str, str, str], None]
"""Told (kind, namespace, name, resourceVersion) of every Deployment a reconcile wrote."""


def _written(on_write: OnWrite | None, kind: str, namespace: str, name: str, result: Any) -> None:
    if on_write is None:
        return
    meta = result.get("metadata") if isinstance(result, dict) else getattr(result, "metadata", None)
    rv = meta.get("resourceVersion") if isinstance(meta, dict) else getattr(meta, "resource_version", None)
    if rv:
        on_write(kind, namespace, name, str(rv))


def apply_child(
    api: client.ApiClient,
    obj: Obj,
    live: Obj | None = None,
    *,
    known: bool = False,
    on_write: OnWrite | None = None,
) -> Outcome:
    """Create ``obj``, or patch the live object where a field we set differs. ``known``: ``live``
    was just read (None meaning absent), so no second read is needed."""
    kind, meta = obj["kind"], obj["metadata"]
    ops = _ops(api, kind)
    ns, name = meta["namespace"], meta["name"]
    what = f"{kind}/{name}"
    try:
        if not known:
            live = read_object(api, kind, ns, name)
        if live is None:
            try:
                _written(on_write, kind, ns, name, ops.create(ns, obj))
                return "created"
            except ApiException as exc:
                if exc.status != 409:
                    raise
            live = read_object(api, kind, ns, name)
            if live is None:
                raise Conflict(f"{what}: created and deleted concurrently")
        wanted = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata", "status")}
        wanted["metadata"] = {k: meta[k] for k in ("labels", "annotations", "ownerReferences") if k in meta}
        if not differs(wanted, live):
            return "unchanged"
        wanted["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        _written(on_write, kind, ns, name, ops.patch(name, ns, wanted))
        return "updated"
    except ApiException as exc:
        raise _translate(exc, what) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise describe_unreachable(api, exc) from exc


def _scale(api: client.ApiClient, live: Obj, replicas: int, on_write: OnWrite | None = None) -> Outcome:
    if int((live.get("spec") or {}).get("replicas", 1)) == replicas:
        return "unchanged"
    meta = live["metadata"]
    body = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "spec": {"replicas": replicas}}
    try:
        result = AppsV1Api(api).patch_namespaced_deployment(
            meta["name"], meta["namespace"], body, _content_type=MERGE_PATCH
        )
        _written(on_write, "Deployment", meta["namespace"], meta["name"], result)
    except ApiException as exc:
        raise _translate(exc, f"Deployment/{meta['name']}") from exc
    return "updated"


def _route_weight(route: Obj | None) -> int | None:
    if route is None:
        return None
    refs = ((route.get("spec") or {}).get("rules") or [{}])[0].get("backendRefs") or []
    return int(refs[1].get("weight", 0)) if len(refs) > 1 else None


def apply_decision(
    api: CustomObjects,
    body: Mapping[str, Any],
    spec: ModelDeploymentSpec,
    decision: Decision,
    observed: Observed,
    options: ServerOptions,
    on_write: OnWrite | None = None,
) -> list[str]:
    """Carry the decision out: Services, the route (before the tracks when traffic leaves the
    canary, after when it goes to it), the tracks (scale-downs before scale-ups). Returns what
    changed, e.g. ``["Deployment/churn-canary updated"]``; ``on_write`` is told the version of each
    Deployment written (so the handler can tell the echo of its own write from a change)."""
    owner, ac = owner_of(body), api.api
    changes: list[str] = []

    def note(obj: Obj, outcome: Outcome) -> None:
        if outcome != "unchanged":
            changes.append(f"{obj['kind']}/{obj['metadata']['name']} {outcome}")

    if decision.stable is None and decision.canary is None:
        return changes  # nothing deployed yet (no version, or a prerequisite missing)
    services = list_objects(ac, "Service", owner.namespace, f"{DEPLOYMENT_LABEL}={label_value(owner.name)}")
    for service in build_services(owner, spec):
        note(service, apply_child(ac, service, services.get(service["metadata"]["name"]), known=True))
    route = build_http_route(owner, spec, decision.route_weight or 0) if decision.route_weight is not None else None
    blocked_route = any(b.reason == "GatewayAPIMissing" for b in observed.obs.blockers)
    live_weight = _route_weight(observed.route)
    route_first = route is not None and live_weight is not None and (decision.route_weight or 0) < live_weight
    if route is not None and route_first and not blocked_route:
        note(route, apply_child(ac, route, observed.route, known=True))
    plans: list[tuple[Track, TrackPlan]] = []
    if decision.stable is not None:
        plans.append(("stable", decision.stable))
    if decision.canary is not None:
        plans.append(("canary", decision.canary))
    plans.sort(
        key=lambda tp: (
            tp[1].replicas - int(((observed.deployments.get(tp[0]) or {}).get("spec") or {}).get("replicas", 0))
        )
    )
    for track, plan in plans:
        live = observed.deployments.get(track)
        version = observed.versions.get(plan.version) if plan.version is not None else None
        if version is not None:
            manifest = build_track_deployment(owner, spec, track, version, plan.replicas, options)
            note(manifest, apply_child(ac, manifest, live, known=True, on_write=on_write))
        elif live is not None:
            outcome = _scale(ac, live, plan.replicas, on_write)
            if outcome != "unchanged":
                changes.append(f"Deployment/{live['metadata']['name']} scaled to {plan.replicas}")
    if route is not None and not route_first and not blocked_route:
        note(route, apply_child(ac, route, observed.route, known=True))
    return changes


# ------------------------------------------------------------------------------- status


def _nulls_outside_lists(value: Any, in_list: bool = False) -> Any:
    if isinstance(value, dict):
        return {k: _nulls_outside_lists(v, in_list) for k, v in value.items() if v is not None or not in_list}
    if isinstance(value, list):
        return [_nulls_outside_lists(v, True) for v in value]
    return value


def status_patch(status: BaseModel) -> Obj:
    """The whole status as a merge patch: unset fields are explicit nulls, so they are removed."""
    result: Obj = _nulls_outside_lists(status.model_dump(by_alias=True, mode="json"))
    return result


def write_status(api: CustomObjects, body: Mapping[str, Any], status: ModelDeploymentStatus) -> Obj:
    """Guarded by the resourceVersion the decision was made from (Conflict: decide again)."""
    meta = body["metadata"]
    return api.patch_status(
        MODEL_DEPLOYMENT, meta["namespace"], meta["name"], status_patch(status), meta.get("resourceVersion")
    )


def sync_model_versions(
    api: CustomObjects, owner: DeploymentRef, status: ModelDeploymentStatus | None, observed: Observed
) -> list[str]:
    """Each ModelVersion's ``status.deployments`` lists this deployment's tracks serving it
    (``status=None``: the deployment is gone). Returns the versions written."""
    ours: dict[str, list[Obj]] = {}
    for version, track, weight in serving(status) if status is not None else []:
        ours.setdefault(version, []).append(
            {"namespace": owner.namespace, "name": owner.name, "track": track, "weight": weight}
        )
    written = []
    for name, seen in observed.version_objects.items():
        obj: Obj | None = seen
        for _ in range(2):  # the object as observed (maybe from the catalog), then read fresh
            if obj is None:
                break
            current = list((obj.get("status") or {}).get("deployments") or [])
            others = [d for d in current if (d.get("namespace"), d.get("name")) != (owner.namespace, owner.name)]
            desired = others + ours.get(name, [])
            if desired == current:
                break
            try:
                rv = obj["metadata"].get("resourceVersion")
                api.patch_status(MODEL_VERSION, owner.namespace, name, {"deployments": desired}, rv)
                written.append(name)
                break
            except Conflict:
                obj = read_object(api.api, "ModelVersion", owner.namespace, name)
        else:
            log.debug("ModelVersion %s changed meanwhile; its deployments are synced on the next reconcile", name)
    return written


# ----------------------------------------------------------------------------- analysis


def due_metrics(spec: ModelDeploymentSpec, decision: Decision) -> list[AnalysisMetric]:
    """The AnalysisMetric objects a decision asked to measure (they belong to its current step)."""
    index = decision.status.current_step_index
    steps = spec.strategy.canary.steps if spec.strategy.canary is not None else []
    if not decision.measure or index is None or index >= len(steps) or steps[index].analysis is None:
        return []
    analysis = steps[index].analysis
    assert analysis is not None
    return [m for m in analysis.metrics if m.name in decision.measure]


def take_measurements(
    owner: DeploymentRef,
    spec: ModelDeploymentSpec,
    decision: Decision,
    versions: Mapping[str, VersionInfo],
    now: datetime,
) -> tuple[MetricResult, ...]:
    """Measure every due metric against Prometheus (concurrently); a missing address or any
    Prometheus trouble is an Error result naming it, never a pass."""
    metrics = due_metrics(spec, decision)
    if not metrics:
        return ()
    status = decision.status
    url = spec.prometheus.address or default_prometheus_url()
    if url is None:
        message = "no Prometheus address: set spec.prometheus.address or run the operator with --prometheus-url"
        return tuple(
            MetricResult(name=m.name, phase="Error", message=f"{m.name}: {message}", time=now) for m in metrics
        )
    canary = versions.get(status.canary_version or "")
    stable = versions.get(status.stable_version or "")
    target = AnalysisTarget(
        namespace=owner.namespace,
        deployment=owner.name,
        stable_version=stable.version if stable is not None else None,
        canary_version=canary.version if canary is not None else (status.canary_version or ""),
        prometheus_url=url,
    )

    async def all_of() -> list[MetricResult]:
        return list(await asyncio.gather(*(measure(m, target, now) for m in metrics)))

    return tuple(asyncio.run(all_of()))
