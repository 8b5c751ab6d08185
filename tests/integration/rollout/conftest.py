"""Fixtures for the ModelDeployment integration tests against the sandbox API server.

The sandbox API server runs no controllers here, so :class:`FakeDeploymentController` plays the
Deployment controller and the kubelets: it sets each model-server Deployment's ``status`` as if
all its pods were up and ready (``observedGeneration`` caught up), except for the tracks a test
holds back to watch the rollout wait for readiness.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelops.k8s.client import load_api_client
from modelops.k8s.resources import MODEL_DEPLOYMENT, MODEL_VERSION, CustomObjects

NS = "default"
Obj = dict[str, Any]
LABEL = "modelops.dev/deployment"


def model_version(
    tmp_path: Path, name: str, version: str, stage: str = "None", approved: bool = False, model: str = "churn"
) -> Obj:
    """A ModelVersion whose artifact exists (the operator verifies its digest)."""
    data = f"model {name}".encode()
    path = tmp_path / f"{name}.joblib"
    path.write_bytes(data)
    spec: Obj = {
        "modelName": model,
        "version": version,
        "artifact": {"uri": path.as_uri(), "digest": "sha256:" + hashlib.sha256(data).hexdigest()},
        "stage": stage,
    }
    if approved:
        spec["approval"] = {"approvedBy": "alice", "approvedAt": "2026-01-01T00:00:00Z", "reason": "offline eval"}
    return {"apiVersion": "modelops.dev/v1alpha1", "kind": "ModelVersion", "metadata": {"name": name}, "spec": spec}


def model_deployment(name: str = "churn", model: Obj | None = None, replicas: int = 4, **canary: Any) -> Obj:
    canary.setdefault("steps", [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "1s"}}])
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": model or {"versionRef": "churn-v1"},
            "replicas": replicas,
            "strategy": {"canary": canary},
        },
    }


def wait(fn: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def status(api: CustomObjects, name: str = "churn") -> Obj:
    return api.get(MODEL_DEPLOYMENT, NS, name).get("status") or {}


def cond(st: Obj, type_: str) -> Obj:
    return next((c for c in st.get("conditions", []) if c["type"] == type_), {})


def wait_status(
    api: CustomObjects, pred: Callable[[Obj], bool], what: str, name: str = "churn", timeout: float = 20.0
) -> Obj:
    return wait(lambda: (st := status(api, name)) and pred(st) and st, what, timeout)  # type: ignore[no-any-return]


def wait_verified(api: CustomObjects, name: str, timeout: float = 20.0) -> None:
    wait(
        lambda: (api.get(MODEL_VERSION, NS, name).get("status") or {}).get("phase") == "Verified",
        f"{name} Verified",
        timeout,
    )


class FakeDeploymentController:
    """Marks model-server Deployments ready, as the controller and kubelets would."""

    def __init__(self, apps: client.AppsV1Api) -> None:
        self.apps = apps
        self.held: set[str] = set()
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> FakeDeploymentController:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        if self.error is not None:
            raise self.error

    def hold(self, name: str) -> None:
        self.held.add(name)

    def release(self, name: str) -> None:
        self.held.discard(name)

    def sync_once(self) -> None:
        for d in self.apps.list_namespaced_deployment(NS, label_selector=LABEL).items:
            name, gen, want = d.metadata.name, d.metadata.generation, d.spec.replicas or 0
            st = d.status or client.V1DeploymentStatus()
            ready = 0 if name in self.held else want
            current = (st.observed_generation, st.replicas, st.updated_replicas, st.ready_replicas)
            if current == (gen, want, want, ready) or (want == 0 and current[0] == gen and not st.replicas):
                continue
            body = {
                "status": {
                    "observedGeneration": gen,
                    "replicas": want,
                    "updatedReplicas": want,
                    "readyReplicas": ready,
                    "availableReplicas": ready,
                }
            }
            try:
                self.apps.patch_namespaced_deployment_status(
                    name, NS, body, _content_type="application/merge-patch+json"
                )
            except ApiException as exc:
                if exc.status not in (404, 409):
                    raise

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync_once()
            except (ApiException, urllib3.exceptions.HTTPError, OSError):
                pass  # the API server is stopping at the end of a test
            except Exception as exc:  # a bug in this helper: fail the test that uses it
                self.error = exc
                return
            self._stop.wait(0.1)


@pytest.fixture
def apps(kubeconfig: Path) -> client.AppsV1Api:
    return client.AppsV1Api(load_api_client(str(kubeconfig)))


@pytest.fixture
def controller(apps: client.AppsV1Api) -> Iterator[FakeDeploymentController]:
    c = FakeDeploymentController(apps).start()
    yield c
    c.stop()


def replicas(apps: client.AppsV1Api, name: str) -> int | None:
    try:
        return int(apps.read_namespaced_deployment(name, NS).spec.replicas)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def now_utc() -> datetime:
    return datetime.now(UTC)


def events(core: client.CoreV1Api, name: str = "churn") -> list[Any]:
    return list(core.list_namespaced_event(NS, field_selector=f"involvedObject.name={name}").items)


def wait_event(core: client.CoreV1Api, reason: str, name: str = "churn", timeout: float = 15.0) -> Any:
    return wait(lambda: next((e for e in events(core, name) if e.reason == reason), None), f"{reason} Event", timeout)


@pytest.fixture
def core(kubeconfig: Path) -> client.CoreV1Api:
    return client.CoreV1Api(load_api_client(str(kubeconfig)))


@dataclass
class Cluster:
    """One sandbox API server, the operator and the fake Deployment controller, shared by a
    module's tests (each test uses its own object names): starting and stopping an operator
    costs seconds that the tests would otherwise spend waiting."""

    api: CustomObjects
    apps: client.AppsV1Api
    core: client.CoreV1Api
    custom: client.CustomObjectsApi
    controller: FakeDeploymentController
    tmp: Path

    def register(self, name: str, version: str, model: str, stage: str = "None", approved: bool = False) -> None:
        self.api.create(MODEL_VERSION, NS, model_version(self.tmp, name, version, stage, approved, model))
        wait_verified(self.api, name)

    def deploy_v1(self, name: str, spec: Obj | None = None, **canary: Any) -> Obj:
        """``<name>-v1`` registered, ModelDeployment ``name`` (4 replicas) Healthy on it."""
        self.register(f"{name}-v1", "1", name)
        md = model_deployment(name, model={"versionRef": f"{name}-v1"}, **canary)
        md["spec"].update(spec or {})
        self.api.create(MODEL_DEPLOYMENT, NS, md)
        return wait_status(self.api, lambda s: s.get("phase") == "Healthy", "first deploy Healthy", name)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    from modelops.core.artifact_policy import ArtifactPolicy
    from modelops.runner import OperatorConfig, OperatorThread
    from modelops.sandbox import ServerThread
    from modelops.sandbox.cluster.gateway import GATEWAY_API_CRDS
    from tests.support.apiserver import CRDS

    tmp = tmp_path_factory.mktemp("rollout")
    server = ServerThread(port=0, crds=[CRDS, GATEWAY_API_CRDS], bookmark_interval=1.0).start()
    kubeconfig = server.write_kubeconfig(tmp / "kubeconfig")
    cfg = OperatorConfig(
        namespaces=[NS],
        kubeconfig=str(kubeconfig),
        health_port=None,
        metrics_port=None,
        artifact_policy=ArtifactPolicy.build(allow_file=True),  # file:// artifacts, as the sandbox allows
    )
    api_client = load_api_client(str(kubeconfig))
    apps = client.AppsV1Api(api_client)
    controller = FakeDeploymentController(apps).start()
    try:
        with OperatorThread(cfg):
            yield Cluster(
                CustomObjects(api_client),
                apps,
                client.CoreV1Api(api_client),
                client.CustomObjectsApi(api_client),
                controller,
                tmp,
            )
    finally:
        controller.stop()
        server.stop()


LAX_SPEC = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


@pytest.fixture(scope="module")
def lax_operator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CustomObjects, client.CoreV1Api]]:
    """A sandbox whose ModelDeployment CRD validates nothing in spec (an old CRD left installed)
    and without the Gateway API CRDs, with the operator running against it: specs reach the
    operator that the real CRD refuses."""
    tmp_path = tmp_path_factory.mktemp("lax")
    import yaml

    from modelops.core.artifact_policy import ArtifactPolicy
    from modelops.runner import OperatorConfig, OperatorThread
    from modelops.sandbox import ServerThread
    from tests.support.apiserver import CRDS

    crds = tmp_path / "crds"
    crds.mkdir()
    for path in CRDS.glob("*.yaml"):
        doc = yaml.safe_load(path.read_text())
        if doc["spec"]["names"]["kind"] == "ModelDeployment":
            doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = LAX_SPEC
        (crds / path.name).write_text(yaml.safe_dump(doc))
    server = ServerThread(port=0, crds=[crds]).start()
    kubeconfig = server.write_kubeconfig(tmp_path / "lax-kubeconfig")
    cfg = OperatorConfig(
        namespaces=[NS],
        kubeconfig=str(kubeconfig),
        health_port=None,
        metrics_port=None,
        artifact_policy=ArtifactPolicy.build(allow_file=True),  # file:// artifacts, as the sandbox allows
    )
    try:
        with OperatorThread(cfg):
            api_client = load_api_client(str(kubeconfig))
            yield CustomObjects(api_client), client.CoreV1Api(api_client)
    finally:
        server.stop()
