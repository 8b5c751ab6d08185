"""The rollouts the live tests watch, each driven from start to end as a user would drive it.

Every scenario runs in its own namespace of the one sandbox cluster, so all of them run at the
same time (the conftest starts them in threads) and the wall time is that of the longest, not the
sum. A scenario only acts (creates objects, sends live traffic through the Service or the Gateway,
promotes a step, approves a version) and records what it saw; the tests assert on the records.
Rollouts hold at `pause: {}` steps (until promoted), so a traffic window is measured while the
weight holds, without racing any clock.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import requests

from modelops.demo.traffic import Tally, Traffic, request_body
from modelops.k8s.resources import MODEL_DEPLOYMENT, MODEL_VERSION, Conflict
from tests.support.cluster import SandboxCluster, example, wait_until

Obj = dict[str, Any]
log = logging.getLogger("live")
INFER = "/v2/models/churn/infer"
TRACK = "modelops.dev/track"
GATEWAY_API = ("gateway.networking.k8s.io", "v1")
# `python -m modelops.cli` would import a second `modelops.cli` module; this is how the other CLI tests call it.
MODELOPS = [sys.executable, "-c", "import sys; from modelops.cli import main; sys.exit(main())"]

V1, V2 = "registry/churn-v1.yaml", "registry/churn-v2.yaml"
V3, V4 = "canary/churn-v3.yaml", "canary/churn-v4.yaml"


def checks(latency: bool = True, interval: str = "4s", count: int = 2) -> Obj:
    """errorRate, latencyP99 and predictionShift, measured every few seconds on live traffic.

    The latency bound is absolute (p99 under a second): on two busy cores one slow answer of a
    fresh pod makes a p99 of ~30 requests many times the stable's, so a ratio would flake.
    """
    common = {"interval": interval, "count": count, "minSamples": 10}
    metrics: list[Obj] = [
        {"name": "errors", "kind": "errorRate", "max": 0.05, **common},
        {"name": "shift", "kind": "predictionShift", "max": 0.2, **common},
    ]
    if latency:
        metrics.insert(1, {"name": "latency", "kind": "latencyP99", "max": 1.0, **common})
    return {"metrics": metrics}


def model_deployment(name: str, model: Obj, replicas: int, steps: list[Obj], **canary: Any) -> Obj:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"model": model, "replicas": replicas, "strategy": {"canary": {"steps": steps, **canary}}},
    }


class Customers(Traffic):
    """Live traffic whose requests score `rows` customers each, as a batch client sends them.

    predictionShift compares predictions (rows), so ten rows a request give it ten times the
    sample at the same request rate: PSI between two equal models stays far below its threshold
    (a few hundred predictions per track and interval), while a shifted model stays far above.
    """

    def __init__(self, url: str, rate: float, concurrency: int, rows: int = 10) -> None:
        super().__init__(url, rate=rate, concurrency=concurrency)
        self.rows = rows
        self.everything: Counter[str] = Counter()
        """Every answer since the start, windows or not."""

    def take(self) -> Tally:
        tally = super().take()
        self.everything.update(tally.counts)
        return tally

    async def _one(self, session: aiohttp.ClientSession, slots: asyncio.Semaphore) -> None:
        try:
            async with session.post(self.url, json=request_body(self._rng, self.rows)) as resp:
                body = await resp.json(content_type=None)
                if resp.status == 200 and isinstance(body, dict):
                    self._count(str(body.get("model_version", "?")))
                else:
                    self._count(f"http {resp.status}")
        except (TimeoutError, aiohttp.ClientError, ValueError):
            self._count("unreachable")
        finally:
            slots.release()


def counts(tally: Counter[str]) -> dict[str, int]:
    return {k: v for k, v in sorted(tally.items())}


def collect(traffic: Traffic, at_least: int, within: float = 90.0) -> dict[str, int]:
    """A fresh window of at least `at_least` answers, counted by version ("2") or error."""
    traffic.take()
    total: Counter[str] = Counter()
    deadline = time.monotonic() + within
    while sum(total.values()) < at_least:
        if time.monotonic() > deadline:
            pytest.fail(f"only {sum(total.values())} answers in {within:.0f}s: {counts(total)}")
        time.sleep(0.2)
        total.update(traffic.take().counts)
    return counts(total)


def tracks_of(cluster: SandboxCluster, service: str, namespace: str) -> list[str]:
    """The track of every ready endpoint behind a Service, sorted."""
    return sorted(str(e["labels"].get(TRACK)) for e in cluster.ready_endpoints(service, namespace))


def wait_tracks(cluster: SandboxCluster, service: str, namespace: str, canary: int, stable: int) -> list[str]:
    want = sorted(["canary"] * canary + ["stable"] * stable)

    def check() -> list[str] | None:
        got = tracks_of(cluster, service, namespace)
        return got if got == want else None

    return wait_until(
        check,
        f"Service {namespace}/{service} endpoints: {canary} canary, {stable} stable",
        within=60,
        every=0.25,
    )


def promote_step(cluster: SandboxCluster, namespace: str, name: str, index: int) -> None:
    """What `modelops rollout promote` writes: status.promoteStep, guarded by resourceVersion."""
    for _ in range(20):
        obj = cluster.get(MODEL_DEPLOYMENT, name, namespace)
        if (obj.get("status") or {}).get("currentStepIndex") != index:
            return
        try:
            cluster.objects.patch_status(
                MODEL_DEPLOYMENT, namespace, name, {"promoteStep": index}, obj["metadata"]["resourceVersion"]
            )
            return
        except Conflict:
            continue
    pytest.fail(f"could not promote step {index} of {namespace}/{name}: conflicts")


def at_pause(index: int) -> Any:
    return lambda s: s.get("currentStepIndex") == index and s.get("phase") == "Paused" and s.get("pauseStartedAt")


def healthy_on(version: str) -> Any:
    return lambda s: s.get("phase") == "Healthy" and s.get("stableVersion") == version and not s.get("canaryVersion")


def in_namespace(cluster: SandboxCluster, namespace: str, *manifests: str, **spec: Any) -> None:
    cluster.create_namespace(namespace)
    for path in manifests:
        mv = example(path)
        mv["spec"].update(spec.get(mv["metadata"]["name"], {}))
        cluster.create(MODEL_VERSION, mv, namespace)


# -- 1. a good version through three weights with analysis --------------------------------------


@dataclass
class Window:
    """Answers counted while a step held, and the Service's ready endpoints (tracks) around it."""

    weight: int
    status_weight: int
    answers: dict[str, int]
    endpoints_before: list[str]
    endpoints_after: list[str]
    serving: dict[str, list[Obj]]
    """status.deployments of churn-v1 and churn-v2 while the step held."""
    prometheus_weight: float | None
    """modelops_rollout_canary_weight of the deployment, as Prometheus scraped it from the operator."""


def prometheus_value(cluster: SandboxCluster, query: str) -> float | None:
    """The single value of an instant query (None: no series)."""
    assert cluster.prometheus_url is not None
    resp = requests.get(f"{cluster.prometheus_url}/api/v1/query", params={"query": query}, timeout=10)
    resp.raise_for_status()
    result = resp.json()["data"]["result"]
    return float(result[0]["value"][1]) if len(result) == 1 else None


def settled_value(cluster: SandboxCluster, query: str, expected: float, within: float = 20.0) -> float | None:
    """The query's value once it equals `expected` (scrapes lag), else the last value seen."""
    deadline = time.monotonic() + within
    while True:
        value = prometheus_value(cluster, query)
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def serving(cluster: SandboxCluster, namespace: str, *versions: str) -> dict[str, list[Obj]]:
    return {v: (cluster.status(MODEL_VERSION, v, namespace).get("deployments") or []) for v in versions}


@dataclass
class GoodRollout:
    namespace: str
    before: dict[str, int]
    windows: list[Window]
    after: dict[str, int]
    everything: dict[str, int]
    """Every answer from before the canary to after the promotion hand-over."""
    status: Obj
    model_version_v2: Obj
    model_version_v1: Obj
    events: list[Obj]


GOOD_STEPS: list[Obj] = [
    {"setWeight": 25}, {"pause": {}}, {"analysis": checks()},
    {"setWeight": 50}, {"pause": {}}, {"analysis": checks()},
    {"setWeight": 75}, {"pause": {}}, {"analysis": checks()},
]  # fmt: skip
GOOD_PAUSES = ((1, 25), (4, 50), (7, 75))


def good_rollout(cluster: SandboxCluster) -> GoodRollout:
    """churn-v1 -> churn-v2 on 4 replicas behind the Service `churn`, 30 requests/s, one connection each."""
    ns, name = "live-good", "churn"
    in_namespace(cluster, ns, V1, V2)
    # maxSurge 100%: the promotion hand-over starts the new stable's 4 pods at once
    md = model_deployment(name, {"versionRef": "churn-v1"}, 4, GOOD_STEPS, maxSurge="100%")
    cluster.create(MODEL_DEPLOYMENT, md, ns)
    cluster.wait_status(MODEL_DEPLOYMENT, name, healthy_on("churn-v1"), "Healthy on churn-v1", 150, ns)
    url = cluster.service_url(name, 80, ns) + INFER
    windows = []
    log.info("good: churn-v1 Healthy")
    traffic = Customers(url, rate=30, concurrency=8)
    with traffic:
        wait_tracks(cluster, name, ns, canary=0, stable=4)
        before = collect(traffic, 40)
        cluster.patch(MODEL_DEPLOYMENT, name, {"spec": {"model": {"versionRef": "churn-v2"}}}, ns)
        for index, weight in GOOD_PAUSES:
            status = cluster.wait_status(MODEL_DEPLOYMENT, name, at_pause(index), f"paused at step {index}", 120, ns)
            canary = 4 * weight // 100
            endpoints_before = wait_tracks(cluster, name, ns, canary=canary, stable=4 - canary)
            log.info("good: at %d%%", weight)
            answers = collect(traffic, 200)
            log.info("good: at %d%%: %s", weight, answers)
            windows.append(
                Window(
                    weight=weight,
                    status_weight=status["canaryWeight"],
                    answers=answers,
                    endpoints_before=endpoints_before,
                    endpoints_after=tracks_of(cluster, name, ns),
                    serving=serving(cluster, ns, "churn-v1", "churn-v2"),
                    prometheus_weight=settled_value(
                        cluster, f'modelops_rollout_canary_weight{{namespace="{ns}",deployment="{name}"}}', weight
                    ),
                )
            )
            promote_step(cluster, ns, name, index)
        status = cluster.wait_status(MODEL_DEPLOYMENT, name, healthy_on("churn-v2"), "Healthy on churn-v2", 150, ns)
        log.info("good: churn-v2 Healthy")
        wait_tracks(cluster, name, ns, canary=0, stable=4)
        after = collect(traffic, 100)
    traffic.take()
    return GoodRollout(
        namespace=ns,
        before=before,
        windows=windows,
        after=after,
        everything=counts(traffic.everything),
        status=status,
        model_version_v2=cluster.get(MODEL_VERSION, "churn-v2", ns),
        model_version_v1=cluster.get(MODEL_VERSION, "churn-v1", ns),
        events=cluster.events(name, ns),
    )


# -- 2. bad versions rolled back by analysis ----------------------------------------------------


@dataclass
class RolledBack:
    name: str
    version: str
    during: dict[str, int]
    """Answers from the patch to the rollback: the canary did get traffic."""
    after: dict[str, int]
    """Answers once the canary's pods left the Service."""
    later: dict[str, int]
    """Answers after the failed ModelVersion changed (a reconcile that must not retry it)."""
    status: Obj
    events: list[Obj]
    canary_replicas: int
    most_pods: int
    """The largest sum of both tracks' Deployment replicas seen during the rollout (the budget)."""
    everything: dict[str, int] = field(default_factory=dict)
    """Every answer, from before the canary to the end."""


# without latency: which check catches each bad version must not depend on the machine's load
BAD_STEPS: list[Obj] = [{"setWeight": 50}, {"analysis": checks(latency=False)}, {"setWeight": 100}]


def bad_rollouts(cluster: SandboxCluster) -> dict[str, RolledBack]:
    """churn-v2 (stable, 2 replicas) -> churn-v3 (shifted) in `shifted`, -> churn-v4 (schema) in `schema`."""
    ns = "live-bad"
    in_namespace(cluster, ns, V2, V3, V4)
    targets = {"shifted": "churn-v3", "schema": "churn-v4"}
    for name in targets:
        cluster.create(MODEL_DEPLOYMENT, model_deployment(name, {"versionRef": "churn-v2"}, 2, BAD_STEPS), ns)
    for name in targets:
        cluster.wait_status(MODEL_DEPLOYMENT, name, healthy_on("churn-v2"), "Healthy on churn-v2", 150, ns)
    log.info("bad: churn-v2 Healthy")
    traffic = {name: Customers(cluster.service_url(name, 80, ns) + INFER, rate=15, concurrency=6) for name in targets}
    out = {}
    running: list[Traffic] = []
    try:
        for name, t in traffic.items():
            wait_tracks(cluster, name, ns, canary=0, stable=2)
            running.append(t.start())
        for name, version in targets.items():
            traffic[name].take()
            cluster.patch(MODEL_DEPLOYMENT, name, {"spec": {"model": {"versionRef": version}}}, ns)
        during: dict[str, Counter[str]] = {name: Counter() for name in targets}
        most_pods = dict.fromkeys(targets, 0)

        last: dict[str, Obj] = {}
        deadline = time.monotonic() + 120
        # until both are RolledBack: count answers and the pods both tracks ask for
        while not all(st.get("phase") == "RolledBack" for st in last.values()) or len(last) < len(targets):
            if time.monotonic() > deadline:
                pytest.fail(f"not RolledBack within 120s: {last}")
            time.sleep(0.25)
            for name in targets:
                during[name].update(traffic[name].take().counts)
                deployments = cluster.apps.list_namespaced_deployment(
                    ns, label_selector=f"modelops.dev/deployment={name}"
                ).items
                most_pods[name] = max(most_pods[name], sum(d.spec.replicas or 0 for d in deployments))
                last[name] = cluster.status(MODEL_DEPLOYMENT, name, ns)
        log.info("bad: RolledBack")
        for name, version in targets.items():
            wait_tracks(cluster, name, ns, canary=0, stable=2)
            after = collect(traffic[name], 100)
            # a change of the failed version re-runs the reconcile (ModelVersion events poke it)
            cluster.patch(MODEL_VERSION, version, {"metadata": {"annotations": {"live-test/poke": "1"}}}, ns)
            later = collect(traffic[name], 100)
            canary_deployment = cluster.plain(cluster.apps.read_namespaced_deployment(f"{name}-canary", ns))
            out[name] = RolledBack(
                name=name,
                version=version,
                during=counts(during[name]),
                after=after,
                later=later,
                status=cluster.status(MODEL_DEPLOYMENT, name, ns),
                events=cluster.events(name, ns),
                canary_replicas=int(canary_deployment["spec"]["replicas"]),
                most_pods=most_pods[name],
            )
    finally:
        for started in running:
            started.stop()
    for name, rolled in out.items():
        traffic[name].take()
        rolled.everything = counts(traffic[name].everything)
    return out


# -- 3. Gateway API: exact weights per request --------------------------------------------------


@dataclass
class GatewayRollout:
    weight: int
    answers: dict[str, int]
    route_weights: dict[str, int]
    pods: dict[str, int]
    """Ready pods per track while the step held (the split does not follow them)."""
    after: dict[str, int]
    route_weights_after: dict[str, int]
    status: Obj
    everything: dict[str, int]
    """Every answer through the gateway, from before the canary to after the promotion."""


def route_weights(cluster: SandboxCluster, namespace: str, name: str) -> dict[str, int]:
    """The HTTPRoute's backend weights, once the gateway has accepted its current generation."""

    def check() -> dict[str, int] | None:
        route = cluster.plain(cluster.custom.get_namespaced_custom_object(*GATEWAY_API, namespace, "httproutes", name))
        generation = route["metadata"]["generation"]
        parents = (route.get("status") or {}).get("parents") or []
        accepted = [
            c
            for p in parents
            for c in p.get("conditions") or []
            if c["type"] == "Accepted" and c["status"] == "True" and c.get("observedGeneration") == generation
        ]
        if not accepted:
            return None
        return {str(r["name"]): int(r.get("weight", 1)) for r in route["spec"]["rules"][0]["backendRefs"]}

    return wait_until(check, f"HTTPRoute {namespace}/{name} accepted by the gateway", within=30)


def gateway_rollout(cluster: SandboxCluster) -> GatewayRollout:
    """churn-v1 -> churn-v2 on 1 replica behind Gateway `web` (GatewayClass `sandbox`), canary weight 30."""
    ns, name, weight = "live-gateway", "churn", 30
    in_namespace(cluster, ns, V1, V2)
    gateway = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"gatewayClassName": "sandbox", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
    }
    cluster.custom.create_namespaced_custom_object(*GATEWAY_API, ns, "gateways", gateway)
    md = model_deployment(
        name,
        {"versionRef": "churn-v1"},
        1,
        [{"setWeight": weight}, {"pause": {}}],
        trafficRouting={"gatewayApi": {"httpRoute": "churn", "parentRefs": [{"name": "web"}]}},
    )
    cluster.create(MODEL_DEPLOYMENT, md, ns)
    cluster.wait_status(MODEL_DEPLOYMENT, name, healthy_on("churn-v1"), "Healthy on churn-v1", 150, ns)
    url = cluster.gateway_url("web", 80, ns) + INFER
    log.info("gateway: churn-v1 Healthy")
    traffic = Customers(url, rate=40, concurrency=8)
    with traffic:
        cluster.patch(MODEL_DEPLOYMENT, name, {"spec": {"model": {"versionRef": "churn-v2"}}}, ns)
        cluster.wait_status(MODEL_DEPLOYMENT, name, at_pause(1), "paused at step 1", 120, ns)
        weights = route_weights(cluster, ns, name)
        pods = Counter(tracks_of(cluster, name, ns))
        log.info("gateway: at %d%%", weight)
        answers = collect(traffic, 1000)
        log.info("gateway: at %d%%: %s", weight, answers)
        promote_step(cluster, ns, name, 1)
        status = cluster.wait_status(MODEL_DEPLOYMENT, name, healthy_on("churn-v2"), "Healthy on churn-v2", 120, ns)
        wait_until(lambda: route_weights(cluster, ns, name) == {"churn-stable": 100, "churn-canary": 0}, "route 100/0")
        wait_tracks(cluster, "churn-stable", ns, canary=0, stable=1)
        after = collect(traffic, 100)
    traffic.take()
    return GatewayRollout(
        weight=weight,
        answers=answers,
        route_weights=weights,
        pods=dict(pods),
        after=after,
        route_weights_after=route_weights(cluster, ns, name),
        status=status,
        everything=counts(traffic.everything),
    )


# -- 4. registry-driven delivery ----------------------------------------------------------------


@dataclass
class RegistryRollout:
    generation_before: int
    generation_after: int
    before: Obj
    promote: subprocess.CompletedProcess[str]
    started: Obj
    status: Obj
    events: list[Obj]
    model_version_v2: Obj = field(default_factory=dict)


def registry_rollout(cluster: SandboxCluster) -> RegistryRollout:
    """A deployment tracking `modelName: churn` in Production with approval; churn-v2 gets approved."""
    ns, name = "live-registry", "churn"
    approval = {"approvedBy": "alice@example.com", "approvedAt": "2026-01-01T00:00:00Z", "reason": "first model"}
    in_namespace(
        cluster, ns, V1, V2,
        **{"churn-v1": {"stage": "Production", "approval": approval}, "churn-v2": {"stage": "Staging"}},
    )  # fmt: skip
    model = {"modelName": "churn", "stage": "Production", "requireApproval": True}
    cluster.create(MODEL_DEPLOYMENT, model_deployment(name, model, 1, [{"setWeight": 100}]), ns)
    cluster.wait_status(MODEL_DEPLOYMENT, name, healthy_on("churn-v1"), "Healthy on churn-v1", 150, ns)
    before = cluster.get(MODEL_DEPLOYMENT, name, ns)
    log.info("registry: churn-v1 Healthy")
    promote = subprocess.run(
        [*MODELOPS, "registry", "promote", "churn-v2", "--to", "Production", "--approved-by", "bob@example.com",
         "--reason", "AUC +0.02 on the October holdout", "-n", ns, "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    started = cluster.wait_status(
        MODEL_DEPLOYMENT,
        name,
        lambda s: s.get("canaryVersion") == "churn-v2" or s.get("stableVersion") == "churn-v2",
        "rolling out churn-v2",
        60,
        ns,
    )
    log.info("registry: rolling out churn-v2")
    status = cluster.wait_status(MODEL_DEPLOYMENT, name, healthy_on("churn-v2"), "Healthy on churn-v2", 120, ns)
    log.info("registry: churn-v2 Healthy")
    after = cluster.get(MODEL_DEPLOYMENT, name, ns)
    return RegistryRollout(
        generation_before=int(before["metadata"]["generation"]),
        generation_after=int(after["metadata"]["generation"]),
        before=before.get("status") or {},
        promote=promote,
        started=started,
        status=status,
        events=cluster.events(name, ns),
        model_version_v2=cluster.get(MODEL_VERSION, "churn-v2", ns),
    )
