"""The operator on a real Kubernetes cluster (kind), installed two ways, each followed by the
user's journey (tests/e2e/journey.py). Run with `python3 -m pytest -m e2e` where Docker works;
see docs/testing.md. Never run on the machines this project is developed on (no Docker there)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from modelops.k8s.client import load_api_client
from tests.e2e.conftest import ROOT
from tests.e2e.journey import Cluster, journey, wait

pytestmark = pytest.mark.e2e

OPERATOR_NS = "modelops"


def operator_ready(c: Cluster) -> None:
    wait(
        lambda: (c.apps.read_namespaced_deployment("modelops", OPERATOR_NS).status.ready_replicas or 0) >= 1,
        "the operator Deployment ready",
        timeout=300,
    )


def test_helm_install_then_the_journey(image: str, kubeconfig: Path, tmp_path: Path):
    import helm_python as helm

    repository, tag = image.split(":")
    api = load_api_client(str(kubeconfig))
    c = Cluster(api, image)
    c.namespace(OPERATOR_NS)  # restricted: the operator's own pod must be admitted too
    config = helm.Config(kubeconfig_path=str(kubeconfig), namespace=OPERATOR_NS, storage_driver="secret")
    values = {"image": {"repository": repository, "tag": tag, "pullPolicy": "Never"}}
    try:
        config.install(str(ROOT / "charts" / "modelops"), "modelops", values, namespace=OPERATOR_NS, timeout=300,
                       wait="watcher")  # fmt: skip
        operator_ready(c)
        release = config.test("modelops", timeout=300)  # the chart's own `helm test`
        assert release is not None
        journey(c, "e2e-helm", tmp_path)
    finally:
        config.uninstall("modelops", timeout=300)
        config.close()


def test_kubectl_apply_install_then_the_journey(image: str, kind_cluster: object, kubeconfig: Path, tmp_path: Path):
    kubectl = kind_cluster.kubectl  # type: ignore[attr-defined]
    kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    kubectl("apply", "-f", str(ROOT / "examples" / "install" / "modelops-operator.yaml"))
    labels = kubectl("get", "namespace", OPERATOR_NS, "-o", "jsonpath={.metadata.labels}")
    assert '"pod-security.kubernetes.io/enforce":"restricted"' in labels
    # the manifest names the published image; this cluster runs the one just built
    kubectl("-n", OPERATOR_NS, "set", "image", "deployment/modelops", f"operator={image}")
    kubectl(
        "-n", OPERATOR_NS, "set", "env", "deployment/modelops", f"MODELOPS_IMAGE={image}"
    )  # model servers, drift jobs
    kubectl("-n", OPERATOR_NS, "patch", "deployment/modelops", "--type=json",
            "-p", '[{"op": "replace", "path": "/spec/template/spec/containers/0/imagePullPolicy", "value": "Never"}]')  # fmt: skip
    api = load_api_client(str(kubeconfig))
    c = Cluster(api, image)
    try:
        operator_ready(c)
        journey(c, "e2e-kubectl", tmp_path)
    finally:
        subprocess.run(
            [str(kind_cluster.kubectl_path), "delete", "--wait=false", "-f",  # type: ignore[attr-defined]
             str(ROOT / "examples" / "install" / "modelops-operator.yaml")],
            env={"KUBECONFIG": str(kubeconfig)}, check=False,
        )  # fmt: skip
