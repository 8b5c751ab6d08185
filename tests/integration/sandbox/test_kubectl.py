"""The real kubectl (client-go) against the sandbox: apply, get with printer columns, describe, watch,
wait, delete. Skipped only where kubectl is not installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops.sandbox import ServerThread
from tests.integration.sandbox.conftest import DIGEST
from tests.support.apiserver import CRDS

pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]

MANIFEST = f"""
apiVersion: modelops.dev/v1alpha1
kind: ModelVersion
metadata:
  name: iris-v1
spec:
  modelName: iris
  version: "1"
  artifact:
    uri: file:///tmp/model.joblib
    digest: {DIGEST}
"""


class Kubectl:
    def __init__(self, kubeconfig: Path, cache: Path) -> None:
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(cache)}

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["kubectl", *args], env=self.env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def __call__(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["kubectl", *args], env=self.env, input=input, text=True, capture_output=True, timeout=30)
        if check:
            assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
        return proc


@pytest.fixture
def kubectl(tmp_path: Path) -> Iterator[Kubectl]:
    with ServerThread(port=0) as server:  # no CRDs: kubectl applies them
        yield Kubectl(server.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path / "cache")


@pytest.mark.timeout(60)
def test_kubectl_end_to_end(kubectl: Kubectl) -> None:
    out = kubectl("apply", "-f", str(CRDS)).stdout
    assert "customresourcedefinition.apiextensions.k8s.io/modelversions.modelops.dev created" in out
    assert "created" in kubectl("apply", "-f", "-", input=MANIFEST).stdout
    assert "unchanged" in kubectl("apply", "-f", "-", input=MANIFEST).stdout

    table = kubectl("get", "mv").stdout.splitlines()
    assert table[0].split() == ["NAME", "MODEL", "VERSION", "STAGE", "PHASE", "AGE"]
    assert table[1].split()[:3] == ["iris-v1", "iris", "1"]
    assert "MODEL" in kubectl("get", "modelversions.modelops.dev", "-A").stdout.splitlines()[0]
    assert "NAMESPACE" in kubectl("get", "modelops", "-A").stdout  # the category

    described = kubectl("describe", "mv", "iris-v1").stdout
    assert "Model Name:  iris" in described
    assert "Digest:" in described

    watcher = kubectl.popen("get", "mv", "-w", "--request-timeout=6s")
    time.sleep(1.5)
    kubectl("patch", "mv", "iris-v1", "--subresource=status", "--type=merge", "-p", '{"status":{"phase":"Verified"}}')
    waited = kubectl("wait", "--for=jsonpath={.status.phase}=Verified", "mv/iris-v1", "--timeout=10s")
    assert "condition met" in waited.stdout
    kubectl("delete", "mv", "iris-v1")
    watcher.terminate()
    streamed = watcher.communicate(timeout=10)[0].splitlines()
    assert streamed[0].split() == ["NAME", "MODEL", "VERSION", "STAGE", "PHASE", "AGE"]
    assert any("Verified" in line for line in streamed[1:]), streamed
    assert kubectl("get", "mv", "iris-v1", check=False).returncode != 0


def test_kubectl_reports_server_side_validation(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", str(CRDS))
    bad = kubectl("apply", "-f", "-", input=MANIFEST.replace(DIGEST, "abc"), check=False)
    assert bad.returncode != 0
    assert "spec.artifact.digest in body should match '^sha256:[a-f0-9]{64}$'" in bad.stderr
    unknown = kubectl("apply", "-f", "-", input=MANIFEST + "  bogus: 1\n", check=False)
    assert unknown.returncode != 0
    assert 'unknown field "spec.bogus"' in unknown.stderr


def test_kubectl_builtins(kubectl: Kubectl) -> None:
    manifest = kubectl("create", "deployment", "web", "--image=nginx:1", "--dry-run=client", "-o", "yaml").stdout
    kubectl("apply", "-f", "-", input=manifest)
    kubectl("set", "image", "deployment/web", "nginx=nginx:2")  # a strategic merge patch on containers
    out = kubectl(
        "get", "deployment", "web", "-o", "jsonpath={.metadata.generation} {.spec.template.spec.containers[0].image}"
    )
    assert out.stdout == "2 nginx:2"
    assert kubectl("get", "deploy").stdout.split()[:6] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "web"]
    kubectl("create", "namespace", "team-a")  # kubectl's generators post protobuf
    kubectl("create", "configmap", "cfg", "-n", "team-a", "--from-literal=a=b")
    kubectl("create", "secret", "generic", "pw", "-n", "team-a", "--from-literal=pw=hunter2")
    assert kubectl("get", "cm", "cfg", "-n", "team-a", "-o", "jsonpath={.data.a}").stdout == "b"
    assert kubectl("get", "secret", "pw", "-n", "team-a", "-o", "jsonpath={.data.pw}").stdout == "aHVudGVyMg=="
    assert "team-a" in kubectl("get", "ns").stdout
    assert "modelversions" not in kubectl("api-resources").stdout  # nothing applied yet
    assert "Server Version: v1.32.0" in kubectl("version").stdout
