"""Act 3, delivery: v1 deployed, v2 canaried under live traffic to 100%, v3 rolled back by its predictions.

Everything here runs for real on the sandbox cluster: model-server pods are `modelops serve`
processes, traffic goes through the Service's local port, Prometheus scrapes the pods and the
operator's analysis queries it. The act only watches and prints; it never plays a controller.
"""

from __future__ import annotations

import json
import time
from textwrap import shorten
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelops.demo.stage import DemoFailure, Stage, condition, status_of
from modelops.demo.traffic import Tally, Traffic
from modelops.k8s.resources import MODEL_DEPLOYMENT, MODEL_VERSION

Obj = dict[str, Any]
NAME = "churn"
LOCAL_PORTS = "sandbox.modelops.dev/local-ports"


def service_url(stage: Stage, name: str, timeout: float = 30) -> str:
    """The local URL the sandbox's service proxy gives the Service's first port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            svc = stage.api.api.sanitize_for_serialization(stage.core.read_namespaced_service(name, stage.namespace))
        except ApiException as exc:
            if exc.status != 404:
                raise
            time.sleep(0.2)
            continue
        ports = json.loads((svc["metadata"].get("annotations") or {}).get(LOCAL_PORTS) or "{}")
        first = str(svc["spec"]["ports"][0]["port"])
        if first in ports:
            return f"http://127.0.0.1:{ports[first]}"
        time.sleep(0.1)
    raise DemoFailure(f"service/{name} got no local port from the sandbox's proxy within {timeout:.0f}s")


def _split(tally: Tally) -> str:
    total = tally.total()
    if not total:
        return "no answers"
    parts = [
        f"v{key} {100 * n / total:.0f}%" if key.isdigit() else f"{key} {n}" for key, n in sorted(tally.counts.items())
    ]
    return f"{', '.join(parts)} of {total}"


class LiveView:
    """Prints one line per change of the rollout (step, weight, ready pods) and per new measurement."""

    def __init__(self, stage: Stage, traffic: Traffic) -> None:
        self.stage = stage
        self.traffic = traffic
        self._last: tuple[Any, ...] | None = None
        self._seen: set[tuple[str, str]] = set()
        self.splits: list[tuple[int, Tally]] = []

    def show(self, obj: Obj) -> None:
        st = status_of(obj)
        tracks = st.get("tracks") or {}
        ready = " ".join(
            f"{t} {(tracks.get(t) or {}).get('readyReplicas', 0)}/{(tracks.get(t) or {}).get('replicas', 0)}"
            for t in ("stable", "canary")
        )
        key = (st.get("phase"), st.get("currentStepIndex"), st.get("canaryWeight"), ready)
        if key != self._last and st.get("phase"):
            tally = self.traffic.take()
            if self._last is not None and self._last[2] is not None:
                self.splits.append((int(self._last[2] or 0), tally))
            step = st.get("currentStepIndex")
            where = f"step {step}" if step is not None else "no step"
            self.stage.say(
                f"  {st.get('phase', '?'):<11} {where:<8} canary weight {st.get('canaryWeight', 0):>3}%  "
                f"pods {ready}   traffic since last line: {_split(tally)}"
            )
            self._last = key
        for run in st.get("analysisRuns") or []:
            for m in run.get("measurements") or []:
                mark = (str(m.get("time")), str(m.get("name")))
                if mark in self._seen:
                    continue
                self._seen.add(mark)
                self.stage.say(f"    analysis {m.get('name')}: {m.get('phase')}  {m.get('message', '')}")


def watch(stage: Stage, view: LiveView, done: Any, what: str, timeout: float) -> Obj:
    deadline = time.monotonic() + timeout
    obj: Obj = {}
    while time.monotonic() < deadline:
        obj = stage.api.get(MODEL_DEPLOYMENT, stage.namespace, NAME)
        view.show(obj)
        if done(obj):
            return obj
        time.sleep(0.25)
    raise DemoFailure(
        f"modeldeployment/{NAME}: timed out after {timeout:.0f}s waiting for {what}; status={status_of(obj)}"
    )


def _healthy_on(version: str) -> Any:
    def done(obj: Obj) -> bool:
        st = status_of(obj)
        if st.get("phase") in ("RolledBack", "Degraded"):
            raise DemoFailure(f"{version} was rolled back: {st.get('message')}")
        return bool(
            st.get("phase") == "Healthy"
            and st.get("stableVersion") == version
            and st.get("observedGeneration") == obj["metadata"]["generation"]
        )

    return done


def _set_version(stage: Stage, version: str) -> None:
    stage.api.patch(MODEL_DEPLOYMENT, stage.namespace, NAME, {"spec": {"model": {"versionRef": version}}})


def run(stage: Stage) -> None:
    stage.heading("Delivery: ModelDeployment (canary steps, live analysis, automatic rollback)")
    stage.api.create(MODEL_DEPLOYMENT, stage.namespace, stage.load("canary/churn-deployment.yaml"))
    stage.say("applied modeldeployment/churn: churn-v1, 4 replicas; canary steps 25% -> analysis -> 50% -> analysis")
    url = service_url(stage, NAME) + f"/v2/models/{NAME}/infer"
    with Traffic(url, rate=40, concurrency=8) as traffic:
        view = LiveView(stage, traffic)
        watch(stage, view, _healthy_on("churn-v1"), "churn-v1 to serve", 120)
        traffic.take()
        stage.say(f"first deploy goes straight to 100% (nothing to compare with); live traffic on {url}")

        stage.say('$ kubectl patch mdep churn --type merge -p \'{"spec":{"model":{"versionRef":"churn-v2"}}}\'')
        _set_version(stage, "churn-v2")
        watch(stage, view, _healthy_on("churn-v2"), "churn-v2 to be promoted", 180)
        at_25 = [t for w, t in view.splits if w == 25 and t.total() >= 20]
        if not at_25:
            raise DemoFailure("no traffic was measured while the canary held 25%")
        share = sum(t.counts["2"] for t in at_25) / sum(t.total() for t in at_25)
        if not 0.10 <= share <= 0.40:
            raise DemoFailure(f"at weight 25% the canary answered {100 * share:.0f}% of requests")
        stage.say(f"churn-v2 promoted: it answered {100 * share:.0f}% of requests while the canary held 25%")

        v3 = stage.load("canary/churn-v3.yaml")
        stage.api.create(MODEL_VERSION, stage.namespace, v3)
        stage.wait_for(MODEL_VERSION, "churn-v3", lambda o: status_of(o).get("phase") == "Verified", "verification")
        stage.say("churn-v3 registered and verified: fast, error-free, but it answers 'churn' for ~82% of customers")
        _set_version(stage, "churn-v3")

        def rolled_back(obj: Obj) -> bool:
            st = status_of(obj)
            if st.get("phase") == "Healthy" and st.get("stableVersion") == "churn-v3":
                raise DemoFailure("churn-v3 was promoted; its prediction shift went unnoticed")
            return st.get("phase") == "RolledBack"

        obj = watch(stage, view, rolled_back, "churn-v3 to be rolled back", 180)
        st = status_of(obj)
        stalled = condition(obj, "Stalled") or {}
        message = str(st.get("message") or stalled.get("message") or "")
        if "predictions" not in message and "predictionShift" not in message:
            raise DemoFailure(f"the rollback should name the prediction-shift check: {message}")
        stage.say(f"churn-v3 rolled back automatically: {message}")
        stage.say(
            f"  Stalled={stalled.get('status')} ({stalled.get('reason')}); failedVersion={st.get('failedVersion')}"
        )
        apps = client.AppsV1Api(stage.api.api)

        def canary_gone(_: Obj) -> bool:
            """The canary Deployment's controller has acted: its pods are terminating, out of every endpoint."""
            try:
                raw = apps.read_namespaced_deployment(f"{NAME}-canary", stage.namespace)
            except ApiException as exc:
                return bool(exc.status == 404)
            dep: Obj = stage.api.api.sanitize_for_serialization(raw)
            st, meta = dep.get("status") or {}, dep["metadata"]
            observed = int(st.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)
            return bool(observed and not dep["spec"].get("replicas") and not st.get("replicas"))

        watch(stage, view, canary_gone, "the canary's pods to be gone", 60)
        traffic.take()
        time.sleep(2.0)
        after = traffic.take()
        if after.total() < 20 or after.share("2") < 0.95:
            raise DemoFailure(f"after the rollback traffic should be all churn-v2: {_split(after)}")
        stage.say(f"traffic after the rollback: {_split(after)}")
    ev = next((e for e in stage.events_for(NAME) if e["type"] == "Warning"), None)
    if ev is not None:
        stage.say(f"  Event {ev['type']} {ev['reason']}: {shorten(ev['message'], 140, placeholder=' ...')}")
