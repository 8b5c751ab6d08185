"""The faults the operator must survive, on the sandbox: one API server, a ChaosProxy in front of
it (tests/support/chaosproxy.py), the real operator (in this process) talking only through the
proxy, and the test's fake Deployment controller talking to the API server directly.

Shared by the package's tests (starting an operator costs seconds): each test rolls out its own
ModelDeployment, and every fault rule is removed after each test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from modelops.k8s.client import load_api_client
from modelops.k8s.resources import MODEL_DEPLOYMENT, CustomObjects
from tests.integration.rollout.conftest import NS, Cluster, FakeDeploymentController, status, wait_status
from tests.support.chaosproxy import ChaosProxy
from tests.support.faultproxy import kubeconfig_for
from tests.support.rollout_checks import RolloutRecorder, State

Obj = dict[str, Any]
ONE_STEP = [{"setWeight": 25}, {"pause": {}}]
API_TIMEOUT = 3.0
"""`modelops run --api-timeout` of the operator under test (default 30 s): a request nobody answers fails after it."""


@dataclass
class Chaos(Cluster):
    proxy: ChaosProxy = None  # type: ignore[assignment]
    server: Any = None
    kubeconfig: Path = None  # type: ignore[assignment]
    batch: client.BatchV1Api = None  # type: ignore[assignment]

    def recorder(self, name: str) -> RolloutRecorder:
        return RolloutRecorder(self.apps, self.custom, NS, name)

    def start_rollout(self, name: str, **canary: Any) -> RolloutRecorder:
        """``<name>-v1`` Healthy on 4 replicas, ``<name>-v2`` registered; the watches started; not patched yet."""
        canary.setdefault("steps", ONE_STEP)
        self.deploy_v1(name, **canary)
        self.register(f"{name}-v2", "2", name)
        return self.recorder(name)

    def to_v2(self, name: str) -> None:
        self.api.patch(MODEL_DEPLOYMENT, NS, name, {"spec": {"model": {"versionRef": f"{name}-v2"}}})

    def promote_through(self, name: str, pauses: list[int], timeout: float = 60.0) -> Obj:
        """Promote each ``pause: {}`` step when the rollout reaches it, then wait for Healthy on v2."""
        for index in pauses:
            wait_status(self.api, lambda s, i=index: s.get("currentStepIndex") == i, f"paused at step {index}", name,
                        timeout)  # fmt: skip
            self.api.patch_status(MODEL_DEPLOYMENT, NS, name, {"promoteStep": index})
        return wait_status(
            self.api, lambda s: s.get("phase") == "Healthy" and s.get("stableVersion") == f"{name}-v2", "v2 Healthy",
            name, timeout,
        )  # fmt: skip

    def status(self, name: str) -> Obj:
        return status(self.api, name)


def recorded(rec: RolloutRecorder) -> tuple[list[State], list[State], list[int]]:
    return rec.stop()


@pytest.fixture(scope="package")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chaos]:
    from modelops.core.artifact_policy import ArtifactPolicy
    from modelops.runner import OperatorConfig, OperatorThread
    from modelops.sandbox import ServerThread
    from modelops.sandbox.cluster.gateway import GATEWAY_API_CRDS
    from tests.support.apiserver import CRDS

    tmp = tmp_path_factory.mktemp("faults")
    server = ServerThread(port=0, crds=[CRDS, GATEWAY_API_CRDS], bookmark_interval=1.0).start()
    direct = server.write_kubeconfig(tmp / "kubeconfig")
    proxy = ChaosProxy(server.url).start()
    cfg = OperatorConfig(
        namespaces=[NS],
        kubeconfig=kubeconfig_for(proxy.url, str(tmp / "proxy-kubeconfig")),
        health_port=None,
        metrics_port=None,
        artifact_policy=ArtifactPolicy.build(allow_file=True),  # file:// artifacts, as the sandbox allows
        api_timeout=API_TIMEOUT,
    )
    api_client = load_api_client(str(direct))
    apps = client.AppsV1Api(api_client)
    controller = FakeDeploymentController(apps).start()
    try:
        with OperatorThread(cfg):
            yield Chaos(
                CustomObjects(api_client),
                apps,
                client.CoreV1Api(api_client),
                client.CustomObjectsApi(api_client),
                controller,
                tmp,
                proxy=proxy,
                server=server,
                kubeconfig=direct,
                batch=client.BatchV1Api(api_client),
            )
    finally:
        controller.stop()
        proxy.heal()
        proxy.stop()
        server.stop()


@pytest.fixture(autouse=True)
def _healed(request: pytest.FixtureRequest) -> Iterator[None]:
    """No fault outlives its test."""
    yield
    if "chaos" in request.fixturenames:
        c: Chaos = request.getfixturevalue("chaos")
        c.proxy.heal()
        c.proxy.release_all()
