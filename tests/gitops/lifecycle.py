"""Objects of the four kinds at each lifecycle point, as the real operator leaves them in the
sandbox API server: the fixtures for the kstatus oracle, the Flux CEL expressions and Argo CD's
Lua health checks and actions.

One sandbox API server, the operator in-process, the rollout tests' fake Deployment controller
(pods become ready unless held), a fake Prometheus that answers the canary's error-rate query
with 20% errors, and the drift check's own code (``run_monitor_check``, what the CronJob's pod
runs) on small CSV files. Objects "fresh" are created in a namespace the operator does not
watch: what a GitOps tool sees right after it applied them.

Every object version the operator writes is recorded from a watch, so a test can check that no
status was ever written without ``observedGeneration`` and the kstatus conditions.

Regenerate the committed fixtures (``tests/gitops/fixtures/`` and the Argo CD testdata under
``integrations/argocd/``) after a change of the operator's status:

    python -m tests.gitops.lifecycle --write
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import hashlib
import json
import math
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml
from kubernetes import client, watch

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "gitops" / "fixtures"
ARGOCD = ROOT / "integrations" / "argocd" / "resource_customizations" / "modelops.dev"
NS = "default"
FRESH_NS = "gitops-fresh"
HOLD = "gitops.example.com/hold"
"""A finalizer of our own, so a deleted object stays visible (as any other controller's would keep it)."""
GROUP, VERSION = "modelops.dev", "v1alpha1"
PLURALS = {
    "ModelVersion": "modelversions",
    "ModelDeployment": "modeldeployments",
    "DriftMonitor": "driftmonitors",
    "ModelPolicy": "modelpolicies",
}
KINDS = tuple(PLURALS)

# The normalised stand-ins for what differs between runs.
DATA_DIR = "/data"
PROMETHEUS = "http://prometheus.monitoring:9090"
TIME = "2026-01-01T00:00:00Z"
REVISION = "5d41402abc"

Obj = dict[str, Any]
TRACE = False
T0 = time.monotonic()

POINTS: dict[str, tuple[str, ...]] = {
    "ModelVersion": ("fresh", "progressing", "healthy", "failed", "refused", "deleting"),
    "ModelDeployment": ("fresh", "progressing", "healthy", "paused", "failed", "deleting"),
    "DriftMonitor": ("fresh", "progressing", "healthy", "drifted", "suspended", "failed", "deleting"),
    "ModelPolicy": ("fresh", "healthy", "deleting"),
}
"""What each fixture shows. progressing: work underway (an unreachable artifact retried, pods not
ready, a monitor waiting for its deployment); failed: needs a person (digest mismatch, rolled back
by a failed analysis, no reference data); refused: Production asked without approval; paused: a
canary at a pause step; drifted: the last check found drift (the monitor still works).

ModelPolicy has no progressing or failed point: the operator never leaves a policy Reconciling
(its effect is on ModelVersions), and the only way it stalls (InvalidSpec, a spec the operator
cannot parse) cannot get past the API server's validation of the CRD schema and CEL rules, which
say what the operator's model says. The Argo CD testdata carry that status as a partial object
(tests/gitops/argocd_testdata.py, from the handler's own ``policy_status``)."""


def fixture_name(kind: str, point: str) -> str:
    return f"{kind.lower()}-{point}"


# ------------------------------------------------------------------------------ fakes


class FakePrometheus:
    """Prometheus's query API, answering the canary request query with 20 errors in 100 requests
    (and 100 clean stable requests): an errorRate of 0.2."""

    def __init__(self) -> None:
        answer = {
            "status": "success",
            "data": {
                "resultType": "vector",
                "result": [
                    {"metric": {"track": "canary", "code": "200"}, "value": [0, "80"]},
                    {"metric": {"track": "canary", "code": "500"}, "value": [0, "20"]},
                    {"metric": {"track": "stable", "code": "200"}, "value": [0, "100"]},
                ],
            },
        }
        empty = {"status": "success", "data": {"resultType": "vector", "result": []}}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlparse(self.path).query).get("query", [""])[0]
                body = json.dumps(answer if "modelops_inference_requests_total" in query else empty).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakePrometheus:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Recorder:
    """Every version of our objects in ``NS``, from one watch per kind."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api_client)
        self.versions: list[Obj] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(p,), daemon=True) for p in PLURALS.values()]
        self.error: BaseException | None = None

    def __enter__(self) -> Recorder:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def _run(self, plural: str) -> None:
        rv = self.custom.list_namespaced_custom_object(GROUP, VERSION, NS, plural)["metadata"]["resourceVersion"]
        try:
            while not self._stop.is_set():
                for event in watch.Watch().stream(
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    NS,
                    plural,
                    resource_version=rv,
                    allow_watch_bookmarks=True,
                    timeout_seconds=2,
                ):
                    obj = event["raw_object"]
                    rv = obj.get("metadata", {}).get("resourceVersion", rv)
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self.versions.append(obj)
                    if self._stop.is_set():
                        return
        except Exception as exc:  # the API server stops at the end: only a failure before counts
            if not self._stop.is_set():
                self.error = exc


# ------------------------------------------------------------------------------ objects


def write_csv(path: Path, shift: float, rows: int = 400, seed: int = 0) -> Path:
    import numpy as np

    rng = np.random.default_rng(seed)
    cols = {
        "tenure": rng.normal(24 + shift * 10, 6, rows),
        "charges": rng.normal(70, 15, rows),
        "plan": rng.choice(["basic", "plus", "pro"], rows, p=[0.5, 0.3, 0.2] if not shift else [0.1, 0.2, 0.7]),
    }
    lines = [",".join(cols)] + [
        ",".join(f"{cols[c][i]:.3f}" if c != "plan" else cols[c][i] for c in cols) for i in range(rows)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class World:
    api: Any  # modelops.k8s.resources.CustomObjects
    apps: client.AppsV1Api
    core: client.CoreV1Api
    controller: Any  # tests.integration.rollout.conftest.FakeDeploymentController
    data: Path
    prometheus: str
    snapshots: dict[str, Obj] = field(default_factory=dict)
    examples: dict[str, Obj] = field(default_factory=dict)

    def artifact(self, name: str) -> tuple[str, str]:
        path = self.data / f"{name}.joblib"
        path.write_bytes(f"model {name}".encode())
        return path.as_uri(), "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()

    def model_version(self, name: str, model: str, version: str, **spec: Any) -> Obj:
        uri, digest = self.artifact(name)
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelVersion",
            "metadata": {"name": name},
            "spec": {
                "modelName": model,
                "version": version,
                "artifact": {"uri": uri, "digest": digest, "format": "joblib"},
                "framework": "sklearn",
                **spec,
            },
        }

    def model_deployment(self, name: str, version_ref: str, steps: list[Obj], **spec: Any) -> Obj:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelDeployment",
            "metadata": {"name": name},
            "spec": {
                "model": {"versionRef": version_ref},
                "replicas": 2,
                "strategy": {"canary": {"steps": steps}},
                **spec,
            },
        }

    def drift_monitor(self, name: str, target: Obj, **spec: Any) -> Obj:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "DriftMonitor",
            "metadata": {"name": name},
            "spec": {
                "target": target,
                "schedule": "0 * * * *",
                "current": {"source": "uri", "uri": str(self.data / "current.csv"), "minRows": 50},
                "columnMapping": {"categorical": ["plan"]},
                "policy": {"action": "alert", "consecutiveChecks": 1, "cooldown": "1h"},
                **spec,
            },
        }

    def model_policy(self, name: str, model: str, **spec: Any) -> Obj:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelPolicy",
            "metadata": {"name": name},
            "spec": {
                "modelName": model,
                "gates": [{"metric": "auc", "op": ">=", "value": 0.85}],
                "championChallenger": {"metrics": [{"metric": "auc", "tolerance": 0.01}]},
                **spec,
            },
        }

    def kind(self, obj: Obj) -> Any:
        return _resource(obj["kind"])

    def create(self, obj: Obj, namespace: str = NS, hold: bool = False) -> Obj:
        if hold:
            obj["metadata"]["finalizers"] = [HOLD]
        return dict(self.api.create(self.kind(obj), namespace, obj))

    def get(self, kind: str, name: str, namespace: str = NS) -> Obj:
        return dict(self.api.get(_resource(kind), namespace, name))

    def wait(self, kind: str, name: str, pred: Callable[[Obj], bool], what: str, timeout: float = 30.0) -> Obj:
        deadline = time.monotonic() + timeout
        obj: Obj = {}
        while time.monotonic() < deadline:
            obj = self.get(kind, name)
            if pred(obj):
                return obj
            time.sleep(0.05)
        raise AssertionError(f"{kind} {name}: timed out waiting for {what}; status: {obj.get('status')}")

    def snap(self, kind: str, point: str, obj: Obj) -> None:
        self.snapshots[fixture_name(kind, point)] = copy.deepcopy(obj)
        if TRACE:
            print(f"{time.monotonic() - T0:6.2f}s {kind} {point}", file=sys.stderr)

    def delete_held(self, kind: str, name: str) -> Obj:
        """Delete an object that carries our finalizer; return it as deleted (still there), then release it."""
        obj = self.get(kind, name)
        self.api.delete(self.kind(obj), NS, name)
        deleting = self.wait(kind, name, lambda o: bool(o["metadata"].get("deletionTimestamp")), "deletionTimestamp")
        self.api.patch(self.kind(obj), NS, name, {"metadata": {"finalizers": None}})
        return deleting


def _resource(kind: str) -> Any:
    from modelops.k8s.resources import DRIFT_MONITOR, MODEL_DEPLOYMENT, MODEL_POLICY, MODEL_VERSION

    return {
        "ModelVersion": MODEL_VERSION,
        "ModelDeployment": MODEL_DEPLOYMENT,
        "DriftMonitor": DRIFT_MONITOR,
        "ModelPolicy": MODEL_POLICY,
    }[kind]


def cond(obj: Obj, ctype: str) -> Obj:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == ctype), {})


def phase(value: str) -> Callable[[Obj], bool]:
    return lambda o: (o.get("status") or {}).get("phase") == value


def settled(value: str) -> Callable[[Obj], bool]:
    """In phase ``value`` with every track's pods as ready as asked (the fake controller caught up)."""

    def pred(o: Obj) -> bool:
        st = o.get("status") or {}
        tracks = [t for t in (st.get("tracks") or {}).values() if t]
        return st.get("phase") == value and all(t.get("replicas", 0) == t.get("readyReplicas", 0) for t in tracks)

    return pred


def pods_pending(o: Obj) -> bool:
    st = o.get("status") or {}
    stable = (st.get("tracks") or {}).get("stable") or {}
    return (
        st.get("phase") == "Progressing"
        and stable.get("replicas") == 2
        and cond(o, "Reconciling").get("status") == "True"
    )


def ready(value: str, reason: str | None = None) -> Callable[[Obj], bool]:
    return lambda o: (
        cond(o, "Ready").get("status") == value and (reason is None or cond(o, "Ready").get("reason") == reason)
    )


# ------------------------------------------------------------------------------ the script


def _scenario(w: World, kubeconfig: Path) -> None:
    """Drive every object through its lifecycle points; snapshots land in ``w.snapshots``.

    Ordered so that the waits overlap: the drift check runs in a thread while the rollouts move."""
    write_csv(w.data / "reference.csv", 0.0)
    write_csv(w.data / "current.csv", 1.0, seed=1)

    # Fresh: applied, never reconciled (the operator watches NS only).
    w.core.create_namespace({"metadata": {"name": FRESH_NS}})
    fresh = {
        "ModelVersion": w.model_version("iris-v1", "iris", "1"),
        "ModelDeployment": w.model_deployment("iris", "iris-v1", [{"setWeight": 50}, {"pause": {}}]),
        "DriftMonitor": w.drift_monitor("iris-drift", {"deployment": "iris"}),
        "ModelPolicy": w.model_policy("iris", "iris", autoPromoteToStaging=True),
    }
    for kind, obj in fresh.items():
        w.snap(kind, "fresh", w.create(obj, FRESH_NS))

    # A DriftMonitor applied before its deployment exists: it waits (Reconciling), then works.
    w.create(w.drift_monitor("fraud-drift", {"deployment": "fraud"}))
    w.snap(
        "DriftMonitor",
        "progressing",
        w.wait("DriftMonitor", "fraud-drift", ready("False", "WaitingForTarget"), "waiting"),
    )

    # ModelPolicies, for models no other object here uses (a policy for iris would gate the
    # ModelVersions below): Ready with the policy in one line; one held and deleted.
    w.create(w.model_policy("credit", "credit", autoPromoteToStaging=True))
    w.create(w.model_policy("loans", "loans"), hold=True)

    # The versions the deployments and monitors below use.
    for name in ("pricing", "ranking", "search"):
        w.create(w.model_version(f"{name}-v1", name, "1"))
        w.create(w.model_version(f"{name}-v2", name, "2"))
    reference = {"uri": str(w.data / "reference.csv")}
    w.create(w.drift_monitor("pricing-drift", {"modelVersion": "pricing-v1"}, reference=reference))
    w.create(w.drift_monitor("ranking-drift", {"modelVersion": "ranking-v1"}, reference=reference, suspend=True))
    w.create(w.drift_monitor("search-drift", {"modelVersion": "search-v1"}))  # search-v1 has no referenceProfile
    w.create(w.drift_monitor("ads-drift", {"modelVersion": "pricing-v1"}, reference=reference), hold=True)
    checker = _Checker(w, kubeconfig, "pricing-drift")

    # ModelVersions. The unreachable one is caught at its first attempt (the next is 5 s later).
    missing = w.model_version("iris-v2", "iris", "2")
    missing["spec"]["artifact"]["uri"] = (w.data / "missing" / "iris-v2.joblib").as_uri()
    w.create(missing)
    w.snap(
        "ModelVersion",
        "progressing",
        w.wait("ModelVersion", "iris-v2", lambda o: cond(o, "Reconciling").get("status") == "True", "retrying"),
    )
    approval = {"approvedBy": "alice@example.com", "approvedAt": TIME, "reason": "AUC +0.02 offline"}
    w.create(w.model_version("iris-v3", "iris", "3", stage="Production", approval=approval, metrics={"auc": 0.91}))
    w.create(w.model_version("iris-v4", "iris", "4"))
    (w.data / "iris-v4.joblib").write_bytes(b"tampered")  # after its digest was taken
    w.snap("ModelVersion", "healthy", w.wait("ModelVersion", "iris-v3", ready("True"), "Verified, Production"))
    w.create(w.model_version("iris-v5", "iris", "5", stage="Production"))  # no approval
    w.create(w.model_version("iris-v6", "iris", "6"), hold=True)
    w.snap("ModelVersion", "failed", w.wait("ModelVersion", "iris-v4", phase("Failed"), "Failed"))
    w.snap(
        "ModelVersion",
        "refused",
        w.wait("ModelVersion", "iris-v5", lambda o: cond(o, "Stalled").get("status") == "True", "refused"),
    )
    w.wait("ModelVersion", "iris-v6", ready("True"), "Verified")
    w.snap("ModelVersion", "deleting", w.delete_held("ModelVersion", "iris-v6"))
    w.snap("ModelPolicy", "healthy", w.wait("ModelPolicy", "credit", ready("True"), "Active"))
    w.wait("ModelPolicy", "loans", ready("True"), "Active")
    w.snap("ModelPolicy", "deleting", w.delete_held("ModelPolicy", "loans"))

    # The team's models of examples/gitops/models, as Argo CD or Flux would apply them (the
    # artifact read from this repository's copy of the same bytes).
    examples = example_models()
    for obj in examples:
        w.create(copy.deepcopy(obj))

    # ModelDeployments: a first deploy with its pods not ready yet, then ready; a canary at a pause
    # step; a canary rolled back by a failed analysis.
    w.controller.hold("fraud-stable")
    w.create(w.model_version("fraud-v1", "fraud", "1", referenceProfile=(w.data / "fraud-v1.profile.json").as_uri()))
    w.create(w.model_deployment("fraud", "fraud-v1", [{"setWeight": 50}, {"pause": {"duration": "10m"}}]))
    w.create(w.model_deployment("pricing", "pricing-v1", [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]))
    analysis = {
        "analysis": {
            "metrics": [{"name": "error-rate", "kind": "errorRate", "max": 0.05, "interval": "1s", "count": 2}]
        }
    }
    w.create(
        w.model_deployment("ranking", "ranking-v1", [{"setWeight": 50}, analysis], prometheus={"address": w.prometheus})
    )
    w.create(w.model_deployment("search", "search-v1", [{"setWeight": 50}]), hold=True)
    w.snap(
        "ModelDeployment",
        "progressing",
        w.wait("ModelDeployment", "fraud", pods_pending, "deployed, pods not ready"),
    )
    w.controller.release("fraud-stable")
    w.snap("ModelDeployment", "healthy", w.wait("ModelDeployment", "fraud", settled("Healthy"), "Healthy"))
    for name in ("pricing", "ranking"):
        w.wait("ModelDeployment", name, settled("Healthy"), "v1 Healthy")
        w.api.patch(w.kind({"kind": "ModelDeployment"}), NS, name, {"spec": {"model": {"versionRef": f"{name}-v2"}}})
    w.wait("ModelDeployment", "search", settled("Healthy"), "Healthy")
    w.snap("ModelDeployment", "deleting", w.delete_held("ModelDeployment", "search"))
    w.snap("ModelDeployment", "paused", w.wait("ModelDeployment", "pricing", settled("Paused"), "paused at step 1"))
    w.snap("ModelDeployment", "failed", w.wait("ModelDeployment", "ranking", settled("RolledBack"), "rolled back"))

    for obj in examples:
        name = obj["metadata"]["name"]
        w.examples[f"{obj['kind']}/{name}"] = w.wait(obj["kind"], name, ready("True"), "example ready")

    # DriftMonitors.
    checker.join()
    w.snap(
        "DriftMonitor",
        "drifted",
        w.wait("DriftMonitor", "pricing-drift", lambda o: cond(o, "DriftDetected").get("status") == "True", "drift"),
    )
    w.snap("DriftMonitor", "suspended", w.wait("DriftMonitor", "ranking-drift", ready("True"), "CronJob ready"))
    w.snap("DriftMonitor", "failed", w.wait("DriftMonitor", "search-drift", ready("False", "NoReference"), "stalled"))
    w.wait("DriftMonitor", "ads-drift", ready("True"), "CronJob ready")
    w.snap("DriftMonitor", "deleting", w.delete_held("DriftMonitor", "ads-drift"))
    w.snap(
        "DriftMonitor",
        "healthy",
        w.wait("DriftMonitor", "fraud-drift", ready("True"), "its deployment's version found", timeout=40),
    )


EXAMPLES = ROOT / "examples" / "gitops" / "models"
EXAMPLE_ARTIFACTS = {"s3://models/churn/1/model.joblib": ROOT / "examples" / "artifacts" / "churn-v1.joblib"}


def example_models() -> list[Obj]:
    """The objects of examples/gitops/models (its kustomization's resources), artifacts local."""
    kustomization = load(EXAMPLES / "kustomization.yaml")
    objs = [load(EXAMPLES / path) for path in kustomization["resources"]]
    for obj in objs:
        artifact = (obj.get("spec") or {}).get("artifact") or {}
        if artifact.get("uri") in EXAMPLE_ARTIFACTS:
            artifact["uri"] = EXAMPLE_ARTIFACTS[artifact["uri"]].as_uri()
    return objs


class _Checker:
    """One scheduled drift check, run as the CronJob's pod would (``run_monitor_check``), in a
    thread once the monitor's first reconcile is done."""

    def __init__(self, w: World, kubeconfig: Path, name: str) -> None:
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(w, kubeconfig, name), daemon=True)
        self._thread.start()

    def _run(self, w: World, kubeconfig: Path, name: str) -> None:
        from modelops.k8s.client import load_api_client
        from modelops.k8s.drift_check import run_monitor_check
        from modelops.k8s.resources import CustomObjects

        try:
            w.wait("DriftMonitor", name, ready("True"), "CronJob ready")
            if run_monitor_check(CustomObjects(load_api_client(str(kubeconfig))), NS, name) != 0:
                raise AssertionError(f"the drift check of {name} failed")
        except BaseException as exc:
            self.error = exc

    def join(self) -> None:
        self._thread.join(120)
        if self.error is not None:
            raise self.error


@dataclass
class Capture:
    snapshots: dict[str, Obj]
    """Fixture name -> the object as the API server returned it."""
    versions: list[Obj]
    """Every version of every object in NS, in watch order."""
    examples: dict[str, Obj]
    """examples/gitops/models once the operator made them Ready ("Kind/name" -> object)."""
    data_dir: Path
    prometheus: str


@contextmanager
def _sandbox(tmp: Path) -> Iterator[tuple[World, Recorder, Path]]:
    from modelops.core.artifact_policy import ArtifactPolicy
    from modelops.k8s.client import load_api_client
    from modelops.k8s.resources import CustomObjects
    from modelops.runner import OperatorConfig, OperatorThread
    from modelops.sandbox import ServerThread
    from modelops.sandbox.cluster.gateway import GATEWAY_API_CRDS
    from tests.integration.rollout.conftest import FakeDeploymentController
    from tests.support.apiserver import CRDS

    server = ServerThread(port=0, crds=[CRDS, GATEWAY_API_CRDS], bookmark_interval=1.0).start()
    try:
        kubeconfig = server.write_kubeconfig(tmp / "kubeconfig")
        api_client = load_api_client(str(kubeconfig))
        apps = client.AppsV1Api(api_client)
        controller = FakeDeploymentController(apps).start()
        cfg = OperatorConfig(
            namespaces=[NS],
            kubeconfig=str(kubeconfig),
            health_port=None,
            metrics_port=None,
            artifact_policy=ArtifactPolicy.build(allow_file=True),  # file:// artifacts, as the sandbox allows
        )
        data = tmp / "data"
        data.mkdir()
        try:
            with FakePrometheus() as prom, Recorder(api_client) as recorder, OperatorThread(cfg):
                world = World(CustomObjects(api_client), apps, client.CoreV1Api(api_client), controller, data, prom.url)
                yield world, recorder, kubeconfig
        finally:
            controller.stop()
    finally:
        server.stop()


def capture(tmp: Path) -> Capture:
    """Run the scenario once; raise if any object missed its lifecycle point."""
    with _sandbox(tmp) as (world, recorder, kubeconfig), contextlib.redirect_stdout(sys.stderr):
        _scenario(world, kubeconfig)  # the drift check prints its verdict, as in its pod
        time.sleep(0.3)  # the last writes reach the watch
    if recorder.error is not None:
        raise RuntimeError(f"the watch failed: {recorder.error}") from recorder.error
    return Capture(world.snapshots, list(recorder.versions), world.examples, world.data, world.prometheus)


# ------------------------------------------------------------------------------ normalising

_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")
_TIME_KEYS = {
    "lastTransitionTime",
    "time",
    "verifiedAt",
    "stepStartedAt",
    "pauseStartedAt",
    "startedAt",
    "lastCheckTime",
    "evaluatedCheckTime",
    "lastActionTime",
    "createdAt",
    "creationTimestamp",
    "deletionTimestamp",
    "approvedAt",
}


def _round(value: float) -> float | int:
    if not math.isfinite(value) or value == 0:
        return value
    return float(f"{value:.4g}")


def normalize(obj: Obj, data_dir: Path, prometheus: str) -> Obj:
    """What stays the same from run to run: no uid, resourceVersion or managedFields; fixed
    times; the temporary data directory and the fake Prometheus under fixed names; floats to 4
    significant digits (statistics differ in the last digits between numpy/scipy builds)."""
    paths = sorted({str(data_dir), data_dir.as_uri()[len("file://") :]}, key=len, reverse=True)

    def text(s: str) -> str:
        for p in paths:
            s = s.replace(p, DATA_DIR)
        s = s.replace(prometheus, PROMETHEUS)
        return _ISO.sub(TIME, s)

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            if key == "revision":  # a hash of the server settings, the operator's image among them
                return REVISION
            return TIME if key in _TIME_KEYS and _ISO.fullmatch(value) else text(value)
        if isinstance(value, float):
            return _round(value)
        return value

    meta = obj.get("metadata") or {}
    kept: Obj = {"name": meta["name"], "namespace": meta.get("namespace", NS), "generation": meta.get("generation")}
    if meta.get("deletionTimestamp"):
        kept["deletionTimestamp"] = TIME
        kept["finalizers"] = [f for f in meta.get("finalizers") or [] if f == HOLD]
    out: Obj = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": kept, "spec": obj.get("spec")}
    if obj.get("status"):
        # the order of status fields follows the order of past patches: sort them
        out["status"] = {k: obj["status"][k] for k in sorted(obj["status"])}
    return walk(out)  # type: ignore[no-any-return]


def fixtures(cap: Capture) -> dict[str, Obj]:
    return {name: normalize(obj, cap.data_dir, cap.prometheus) for name, obj in sorted(cap.snapshots.items())}


# ------------------------------------------------------------------------------ files


def dump(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, width=120, allow_unicode=True)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@functools.cache
def _committed() -> dict[str, Obj]:
    return {p.stem: load(p) for p in sorted(FIXTURES.glob("*.yaml"))}


def committed() -> dict[str, Obj]:
    """The committed fixtures (a fresh copy: callers may change them)."""
    return copy.deepcopy(_committed())


def write(objs: dict[str, Obj]) -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for old in FIXTURES.glob("*.yaml"):
        old.unlink()
    header = (
        "# Generated by `python -m tests.gitops.lifecycle --write` from the operator in the sandbox: do not edit.\n"
    )
    for name, obj in objs.items():
        (FIXTURES / f"{name}.yaml").write_text(header + dump(obj))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write tests/gitops/fixtures and the Argo CD testdata")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gitops-lifecycle-") as tmp:
        objs = fixtures(capture(Path(tmp)))
    if args.write:
        write(objs)
        from tests.gitops import argocd_testdata

        argocd_testdata.write(objs)
        print(f"wrote {len(objs)} fixtures to {FIXTURES.relative_to(ROOT)} and the Argo CD testdata")
    else:
        sys.stdout.write("".join(f"--- # {n}\n{dump(o)}" for n, o in objs.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
