"""The chart as Helm runs it: install, upgrade, uninstall and `helm test` with the real Helm v4 engine
(helm-python-sdk) against the sandbox's fake API server (CRD validation, RBAC for ServiceAccount
tokens, ownership metadata as Helm writes it).

What a cluster would add is played here, as the API-server-only tests do elsewhere: the operator
pod (created and marked Ready by the test, served by the real operator in a thread), and the
kubelet plus Job controller for the `helm test` Job (its command runs as a local process with its
ServiceAccount's token; the test then writes the Job's status).
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelops.k8s.client import load_api_client
from modelops.runner import OperatorConfig, OperatorThread
from modelops.sandbox import ServerThread

from ._support import CHART_DIR, NAMESPACE, RELEASE, ROOT

CRD_GROUP = "apiextensions.k8s.io"
MV_CRD = "modelversions.modelops.dev"
KEEP = "helm.sh/resource-policy"


@dataclass
class Cluster:
    """A fresh fake API server (no CRDs), clients for it, and a Helm configuration (memory storage)."""

    server: ServerThread
    kubeconfig: Path
    api: client.ApiClient
    helm: helm.Config
    core: client.CoreV1Api = field(init=False)
    batch: client.BatchV1Api = field(init=False)
    ext: client.ApiextensionsV1Api = field(init=False)
    custom: client.CustomObjectsApi = field(init=False)

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.ext = client.ApiextensionsV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    def install(self, chart: Path = CHART_DIR, values: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.helm.install(
            str(chart), RELEASE, values or {}, namespace=NAMESPACE, create_namespace=True, timeout=60
        )

    def upgrade(self, chart: Path = CHART_DIR, values: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.helm.upgrade(str(chart), RELEASE, values or {}, namespace=NAMESPACE, timeout=60)

    def crd(self, name: str) -> dict[str, Any] | None:
        try:
            out: dict[str, Any] = self.api.sanitize_for_serialization(self.ext.read_custom_resource_definition(name))  # type: ignore[no-untyped-call]
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return out

    def crd_names(self) -> set[str]:
        return {c.metadata.name for c in self.ext.list_custom_resource_definition().items}

    def deployments(self) -> list[str]:
        return [d.metadata.name for d in client.AppsV1Api(self.api).list_namespaced_deployment(NAMESPACE).items]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    server = ServerThread(port=0, crds=[]).start()
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    api = load_api_client(str(kubeconfig))
    config = helm.Config(kubeconfig_path=str(kubeconfig), namespace=NAMESPACE, storage_driver="memory")
    try:
        yield Cluster(server, kubeconfig, api, config)
    finally:
        config.close()
        api.close()  # type: ignore[no-untyped-call]
        server.stop()


def repo_crd_names() -> set[str]:
    return {yaml.safe_load(p.read_text())["metadata"]["name"] for p in (ROOT / "crds").glob("*.yaml")}


def a_model_version(name: str = "churn-v1") -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {
            "modelName": "churn",
            "version": "1",
            "artifact": {"uri": "s3://models/churn/1/model.joblib", "digest": "sha256:" + "a" * 64},
        },
    }


def older_chart(tmp_path: Path) -> Path:
    """The chart as a previous release would ship it: version 0.0.9, its ModelVersion CRD without
    the printer columns the current one has."""
    chart = tmp_path / "modelops-0.0.9"
    shutil.copytree(CHART_DIR, chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta["version"] = "0.0.9"
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    crd_file = chart / "files" / "crds" / f"{MV_CRD}.yaml"
    crd = yaml.safe_load(crd_file.read_text())
    for version in crd["spec"]["versions"]:
        version.pop("additionalPrinterColumns", None)
    crd_file.write_text(yaml.safe_dump(crd, sort_keys=False))
    return chart


def printer_columns(crd: dict[str, Any]) -> list[str]:
    return [c["name"] for c in crd["spec"]["versions"][0].get("additionalPrinterColumns") or []]


# ---------------------------------------------------------------- the CRD upgrade path


def test_helm_upgrade_upgrades_the_crds_and_uninstall_keeps_them(cluster: Cluster, tmp_path: Path) -> None:
    cluster.install(older_chart(tmp_path))
    assert cluster.crd_names() == repo_crd_names()
    old = cluster.crd(MV_CRD)
    assert old is not None
    assert printer_columns(old) == []
    assert old["metadata"]["labels"]["helm.sh/chart"] == "modelops-0.0.9"
    cluster.core.create_namespace({"metadata": {"name": "team-a"}})
    cluster.custom.create_namespaced_custom_object(
        "modelops.dev", "v1alpha1", "team-a", "modelversions", a_model_version()
    )

    # helm upgrade: the CRDs are part of the release, so the new schema and columns land.
    cluster.upgrade()
    new = cluster.crd(MV_CRD)
    assert new is not None
    expected = yaml.safe_load((ROOT / "crds" / f"{MV_CRD}.yaml").read_text())
    assert printer_columns(new) == printer_columns(expected) != []
    assert new["spec"]["versions"][0]["schema"] == expected["spec"]["versions"][0]["schema"]
    assert new["metadata"]["labels"]["helm.sh/chart"] == "modelops-0.1.0"
    assert cluster.custom.get_namespaced_custom_object(
        "modelops.dev", "v1alpha1", "team-a", "modelversions", "churn-v1"
    )

    # helm uninstall: the operator goes, the CRDs (resource-policy keep) and the resources stay.
    assert RELEASE in cluster.deployments()
    cluster.helm.uninstall(RELEASE, timeout=60)
    assert RELEASE not in cluster.deployments()
    assert cluster.crd_names() == repo_crd_names()
    kept = cluster.crd(MV_CRD)
    assert kept is not None
    assert kept["metadata"]["annotations"][KEEP] == "keep"
    assert cluster.custom.get_namespaced_custom_object(
        "modelops.dev", "v1alpha1", "team-a", "modelversions", "churn-v1"
    )

    # Installing the same release again adopts the kept CRDs (their ownership metadata matches).
    cluster.install()
    assert cluster.crd_names() == repo_crd_names()
    assert RELEASE in cluster.deployments()


def test_without_keep_uninstall_deletes_the_crds(cluster: Cluster) -> None:
    cluster.install(values={"crds": {"keep": False}})
    assert cluster.crd_names() == repo_crd_names()
    cluster.helm.uninstall(RELEASE, timeout=60)
    assert cluster.crd_names() == set()


def test_crds_applied_with_kubectl_must_be_adopted_or_left_out(cluster: Cluster) -> None:
    # The CRDs of `kubectl apply -f crds/` (or of a chart version that shipped them in crds/) carry
    # no Helm ownership metadata: Helm refuses to take them over silently.
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        cluster.ext.create_custom_resource_definition(yaml.safe_load(path.read_text()))
    with pytest.raises(helm.HelmError, match="invalid ownership metadata"):
        cluster.install()
    # Path 1 (docs/install.md): keep managing them outside Helm.
    cluster.install(values={"crds": {"enabled": False}})
    cluster.helm.uninstall(RELEASE, timeout=60)
    # Path 2: adopt them with the documented label and annotations, then install as usual.
    for name in repo_crd_names():
        cluster.ext.patch_custom_resource_definition(
            name,
            {
                "metadata": {
                    "labels": {"app.kubernetes.io/managed-by": "Helm"},
                    "annotations": {"meta.helm.sh/release-name": RELEASE, "meta.helm.sh/release-namespace": NAMESPACE},
                }
            },
        )
    cluster.install()
    adopted = cluster.crd(MV_CRD)
    assert adopted is not None
    assert adopted["metadata"]["annotations"][KEEP] == "keep"
    assert adopted["metadata"]["labels"]["helm.sh/chart"] == "modelops-0.1.0"


def test_a_values_typo_fails_the_install_before_anything_is_created(cluster: Cluster) -> None:
    # The schema is closed: a misspelt key is an error, not a silently ignored value.
    with pytest.raises(helm.HelmError, match="enabeld"):
        cluster.install(values={"podMonitor": {"enabeld": True}})
    assert cluster.crd_names() == set()
    assert cluster.helm.list(all_states=True) == []


# ---------------------------------------------------------------- helm test


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TestJobRunner:
    """The kubelet and Job controller for the `helm test` Job: runs its container's command as a
    local process with a token of its ServiceAccount, then writes the Job's status."""

    __test__ = False

    def __init__(self, cluster: Cluster, tmp_path: Path) -> None:
        self.cluster = cluster
        self.tmp_path = tmp_path
        self.results: list[subprocess.CompletedProcess[str]] = []
        self.jobs: list[dict[str, Any]] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TestJobRunner:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        seen: set[str] = set()
        while not self._stop.is_set():
            try:
                for job in self.cluster.batch.list_namespaced_job(NAMESPACE).items:
                    if job.metadata.uid not in seen:
                        seen.add(job.metadata.uid)
                        self._execute(job)
            except BaseException as exc:  # reported by the test
                self.errors.append(exc)
                return
            time.sleep(0.05)

    def _execute(self, job: Any) -> None:
        plain = self.cluster.api.sanitize_for_serialization(job)  # type: ignore[no-untyped-call]
        self.jobs.append(plain)
        pod = plain["spec"]["template"]["spec"]
        sa = pod["serviceAccountName"]
        token = self.cluster.core.create_namespaced_service_account_token(
            sa, NAMESPACE, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
        ).status.token
        token_file = self.tmp_path / f"token-{len(self.jobs)}"
        token_file.write_text(token)
        [container] = pod["containers"]
        command = [sys.executable if container["command"][0] == "python" else container["command"][0]]
        # What the kubelet provides in a pod: the API server's address and the mounted token.
        argv = [*command, *container["command"][1:], *container["args"]]
        argv += ["--api-url", self.cluster.server.url, "--token-file", str(token_file)]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        self.results.append(result)
        ok = result.returncode == 0
        status: dict[str, Any] = {
            "startTime": now(),
            "conditions": [{"type": "Complete" if ok else "Failed", "status": "True", "lastTransitionTime": now()}],
        }
        status.update({"succeeded": 1, "completionTime": now()} if ok else {"failed": 1})
        name = plain["metadata"]["name"]
        self.cluster.batch.patch_namespaced_job_status(name, NAMESPACE, {"status": status})


@pytest.fixture
def installed(cluster: Cluster) -> tuple[Cluster, int]:
    """The release installed, its operator pod Ready (as the Deployment controller and kubelet
    would make it); nothing answers its health port yet."""
    port = free_port()
    cluster.install(values={"healthPort": port})
    selector = {"app.kubernetes.io/name": "modelops", "app.kubernetes.io/instance": RELEASE}
    pod = {
        "metadata": {"name": f"{RELEASE}-5d8f9-x2x4q", "labels": selector},
        "spec": {"containers": [{"name": "operator", "image": "modelops"}]},
    }
    cluster.core.create_namespaced_pod(NAMESPACE, pod)
    cluster.core.patch_namespaced_pod_status(
        f"{RELEASE}-5d8f9-x2x4q",
        NAMESPACE,
        {"status": {"phase": "Running", "podIP": "127.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}},
    )
    return cluster, port


@pytest.fixture
def healthy(installed: tuple[Cluster, int]) -> Iterator[tuple[Cluster, int]]:
    """... and the real operator answering /healthz on the pod's health port."""
    cluster, port = installed
    config = OperatorConfig(
        clusterwide=True, kubeconfig=str(cluster.kubeconfig), health_port=port, metrics_port=None, host="127.0.0.1"
    )
    operator = OperatorThread(config).start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the operator's /healthz never answered"
            time.sleep(0.1)
        yield cluster, port
    finally:
        operator.stop()


def test_helm_test_passes_against_a_healthy_release(healthy: tuple[Cluster, int], tmp_path: Path) -> None:
    cluster, port = healthy
    with TestJobRunner(cluster, tmp_path) as runner:
        cluster.helm.test(RELEASE, timeout=60)
    assert runner.errors == []
    [result] = runner.results
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"answers http://127.0.0.1:{port}/healthz with 200" in result.stdout
    assert "modelops.dev/v1alpha1 serves" in result.stdout
    # It ran as its own ServiceAccount, not the operator's, and Helm cleaned up after success.
    [job] = runner.jobs
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == f"{RELEASE}-test"
    assert cluster.batch.list_namespaced_job(NAMESPACE).items == []
    assert f"{RELEASE}-test" not in {
        s.metadata.name for s in cluster.core.list_namespaced_service_account(NAMESPACE).items
    }


def test_helm_test_fails_when_the_operator_does_not_answer(installed: tuple[Cluster, int], tmp_path: Path) -> None:
    # The pod is Ready but nothing listens on its health port (a hung or crashed operator).
    cluster, port = installed
    with TestJobRunner(cluster, tmp_path) as runner, pytest.raises(helm.HelmError):
        cluster.helm.test(RELEASE, timeout=60)
    [result] = runner.results
    assert result.returncode == 1
    assert f"127.0.0.1:{port}/healthz" in result.stderr
    # The CRD check still passed: the failure names only what is wrong.
    assert "modelops.dev/v1alpha1 serves" in result.stdout


def test_helm_test_fails_when_a_crd_is_missing(installed: tuple[Cluster, int], tmp_path: Path) -> None:
    cluster, _port = installed
    cluster.ext.delete_custom_resource_definition("driftmonitors.modelops.dev")
    with TestJobRunner(cluster, tmp_path) as runner, pytest.raises(helm.HelmError):
        cluster.helm.test(RELEASE, timeout=60)
    [result] = runner.results
    assert result.returncode == 1
    assert "does not serve modelops.dev/v1alpha1 driftmonitors" in result.stderr
