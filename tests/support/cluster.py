"""Fixture `sandbox_cluster`: the whole sandbox cluster (`modelops sandbox up`) for one test session.

Real processes: the fake API server, the operator (`modelops run -A`), the workload runner whose
pods are `modelops serve` processes, the service proxy, the gateway and Prometheus (scraping every
second, when the binary is installed). Tests reach workloads as a user would: through the local
port the proxy publishes for each Service port, or the gateway for each Gateway listener.

Session-scoped because starting it costs seconds; tests sharing it use their own object names.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelops.k8s.client import load_api_client
from modelops.k8s.resources import CustomKind, CustomObjects, NotFound
from modelops.sandbox.cluster import supervisor
from modelops.sandbox.cluster.supervisor import Layout

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
LOCAL_PORTS = "sandbox.modelops.dev/local-ports"
SCRAPE_INTERVAL = 1.0
T = TypeVar("T")
Obj = dict[str, Any]


def example(relative: str) -> Obj:
    """An example manifest with ${MODELOPS_EXAMPLES} filled in (as `envsubst` and the demo do)."""
    text = string.Template((EXAMPLES / relative).read_text()).safe_substitute(MODELOPS_EXAMPLES=str(EXAMPLES))
    obj: Obj = yaml.safe_load(text)
    return obj


def wait_until(check: Callable[[], T | None], what: str, within: float = 30.0, every: float = 0.1) -> T:
    """Poll `check` until it returns something truthy (returned); fail the test after `within` s."""
    deadline = time.monotonic() + within
    last: Any = None
    while True:
        try:
            result = check()
        except (AssertionError, KeyError, IndexError, TypeError, NotFound) as exc:
            result, last = None, exc
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"not true within {within:.0f}s: {what} (last error: {last!r})")
        time.sleep(every)


def _local_ports(obj: Obj) -> dict[str, int]:
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(LOCAL_PORTS)
    try:
        return {str(k): int(v) for k, v in json.loads(raw or "{}").items()}
    except (ValueError, TypeError, AttributeError):
        return {}


@dataclass
class SandboxCluster:
    """A running sandbox cluster and typed ways into it."""

    dir: Path
    state: Obj
    kubeconfig: Path
    api_url: str
    prometheus_url: str | None
    api_client: client.ApiClient
    objects: CustomObjects
    core: client.CoreV1Api = field(init=False)
    custom: client.CustomObjectsApi = field(init=False)
    apps: client.AppsV1Api = field(init=False)

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)

    def plain(self, obj: object) -> Obj:
        """A kubernetes-client model (or a dict) as the API's JSON dict (camelCase keys)."""
        out: Obj = self.api_client.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
        return out

    def log(self, component: str) -> Path:
        """The log of `operator`, `prometheus` or `supervisor` (apiserver, runner, proxy, gateway)."""
        return Layout(self.dir).log(component)

    # -- objects ----------------------------------------------------------------------------

    def create(self, kind: CustomKind, obj: Obj, namespace: str = "default") -> Obj:
        return self.objects.create(kind, namespace, {**obj, "metadata": {**obj["metadata"], "namespace": namespace}})

    def create_namespace(self, name: str) -> None:
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))

    def get(self, kind: CustomKind, name: str, namespace: str = "default") -> Obj:
        return self.objects.get(kind, namespace, name)

    def status(self, kind: CustomKind, name: str, namespace: str = "default") -> Obj:
        status: Obj = self.get(kind, name, namespace).get("status") or {}
        return status

    def patch(self, kind: CustomKind, name: str, patch: Obj, namespace: str = "default") -> Obj:
        return self.objects.patch(kind, namespace, name, patch)

    def wait_for(
        self,
        kind: CustomKind,
        name: str,
        done: Callable[[Obj], bool],
        what: str,
        within: float = 60.0,
        namespace: str = "default",
    ) -> Obj:
        """The object once `done(object)` holds; the failure message shows its last status."""
        last: Obj = {}

        def check() -> Obj | None:
            nonlocal last
            last = self.get(kind, name, namespace)
            return last if done(last) else None

        deadline = time.monotonic() + within
        while True:
            try:
                if check() is not None:
                    return last
            except NotFound:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{kind.kind}/{name}: not {what} within {within:.0f}s; status: "
                    f"{json.dumps(last.get('status'), indent=1, default=str)[:6000]}"
                )
            time.sleep(0.25)

    def wait_status(
        self,
        kind: CustomKind,
        name: str,
        done: Callable[[Obj], bool],
        what: str,
        within: float = 60.0,
        namespace: str = "default",
    ) -> Obj:
        """The object's status once `done(status)` holds."""
        obj = self.wait_for(kind, name, lambda o: done(o.get("status") or {}), what, within, namespace)
        status: Obj = obj.get("status") or {}
        return status

    def events(self, name: str, namespace: str = "default") -> list[Obj]:
        """Events about the object `name` (type, reason, message), oldest first."""
        items = self.core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
        rows = [
            {"type": e.type, "reason": e.reason, "message": e.message, "at": e.last_timestamp or e.event_time}
            for e in items
        ]
        return sorted(rows, key=lambda e: str(e["at"] or ""))

    # -- local URLs -------------------------------------------------------------------------

    def service_url(self, name: str, port: int = 80, namespace: str = "default", within: float = 30.0) -> str:
        """`http://127.0.0.1:<local port>` of a Service port, once the service proxy published it."""

        def check() -> str | None:
            try:
                svc = self.plain(self.core.read_namespaced_service(name, namespace))
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
            local = _local_ports(svc).get(str(port))
            return f"http://127.0.0.1:{local}" if local else None

        return wait_until(check, f"local port of Service {namespace}/{name}:{port}", within)

    def gateway_url(self, name: str, port: int = 80, namespace: str = "default", within: float = 30.0) -> str:
        """`http://127.0.0.1:<local port>` of a Gateway listener port, once the gateway published it."""

        def check() -> str | None:
            try:
                gw = self.plain(
                    self.custom.get_namespaced_custom_object(
                        "gateway.networking.k8s.io", "v1", namespace, "gateways", name
                    )
                )
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
            local = _local_ports(gw).get(str(port))
            return f"http://127.0.0.1:{local}" if local else None

        return wait_until(check, f"local port of Gateway {namespace}/{name}:{port}", within)

    def ready_endpoints(self, service: str, namespace: str = "default") -> list[Obj]:
        """The ready endpoints of a Service (EndpointSlices), each with its pod's labels."""
        slices = self.plain(
            client.DiscoveryV1Api(self.api_client).list_namespaced_endpoint_slice(
                namespace, label_selector=f"kubernetes.io/service-name={service}"
            )
        )
        pods = {
            p.metadata.name: p.metadata.labels or {}
            for p in self.core.list_namespaced_pod(namespace).items
            if p.metadata is not None
        }
        out = []
        for es in slices.get("items") or []:
            for ep in es.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready") is False:
                    continue
                pod = (ep.get("targetRef") or {}).get("name")
                out.append({"pod": pod, "labels": pods.get(pod, {})})
        return out


def start_cluster(directory: Path) -> SandboxCluster:
    """Start the sandbox supervisor in `directory` (Prometheus scraping every second)."""
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    state = supervisor.start(
        Layout(directory), scrape_interval=SCRAPE_INTERVAL, restart_backoff=1.0, timeout=90.0, env=env
    )
    components = state["components"]
    kubeconfig = Path(state["kubeconfig"])
    api_client = load_api_client(str(kubeconfig))
    return SandboxCluster(
        dir=directory,
        state=state,
        kubeconfig=kubeconfig,
        api_url=components["apiserver"]["url"],
        prometheus_url=(components.get("prometheus") or {}).get("url"),
        api_client=api_client,
        objects=CustomObjects(api_client),
    )


@pytest.fixture(scope="session")
def sandbox_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxCluster]:
    """The sandbox cluster, started once per session and stopped (no process left) at its end.

    Needs the prometheus binary: the tests using this fixture analyse canaries on real metrics.
    """
    if shutil.which("prometheus") is None:
        pytest.skip("needs the prometheus binary (Debian package `prometheus`)")
    directory = tmp_path_factory.mktemp("sandbox")
    cluster = start_cluster(directory)
    try:
        yield cluster
    finally:
        cluster.api_client.close()  # type: ignore[no-untyped-call]
        supervisor.stop(Layout(directory))
