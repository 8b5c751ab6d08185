"""The sandbox's Prometheus: its config (promtool), pod discovery as `kubernetes-pods`, a real scrape."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from modelops.sandbox import ApiServer
from modelops.sandbox.cluster import kube as k
from modelops.sandbox.cluster.processes import free_port
from modelops.sandbox.cluster.prometheus import PodTargets, PrometheusProcess, config, find_binary, pod_targets
from tests.integration.cluster.networking import eventually

ROOT = Path(__file__).resolve().parents[3]
CHURN = ROOT / "examples" / "artifacts" / "churn-v1.joblib"
CHURN_DIGEST = "sha256:02352bf2e446d2ab19cd10135f311e345fff6f2edbd9aeb159bd535f38efc7d6"

needs_prometheus = pytest.mark.skipif(find_binary() is None, reason="needs the prometheus binary")


def scraped_pod(name: str = "churn-abc", **overrides: Any) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "metadata": {
            "name": name,
            "namespace": "models",
            "labels": {"app.kubernetes.io/name": "churn", "modelops.dev/track": "canary"},
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "8080",
                "prometheus.io/path": "/metrics",
                "sandbox.modelops.dev/host-ports": json.dumps({"8080": 41234, "9090": 41235}),
            },
        },
        "spec": {
            "containers": [{"name": "s", "image": "i", "ports": [{"containerPort": 8080}, {"containerPort": 9090}]}]
        },
        "status": {"phase": "Running", "podIP": "127.0.0.1"},
    }
    pod.update(overrides)
    return pod


def test_targets_carry_the_labels_of_the_kubernetes_pods_job() -> None:
    assert pod_targets(scraped_pod()) == [
        {
            "targets": ["127.0.0.1:41234"],  # prometheus.io/port, resolved to the pod's local port
            "labels": {
                "__metrics_path__": "/metrics",
                "namespace": "models",
                "pod": "churn-abc",
                "app_kubernetes_io_name": "churn",  # labelmap of __meta_kubernetes_pod_label_(.+)
                "modelops_dev_track": "canary",
            },
        }
    ]


def test_only_running_pods_that_ask_are_scraped() -> None:
    pod = scraped_pod()
    del pod["metadata"]["annotations"]["prometheus.io/port"]
    assert pod_targets(pod)[0]["targets"] == ["127.0.0.1:41234", "127.0.0.1:41235"]  # every declared port
    pod = scraped_pod()
    pod["metadata"]["annotations"]["prometheus.io/scrape"] = "false"
    assert pod_targets(pod) == []
    assert pod_targets(scraped_pod(status={"phase": "Pending"})) == []
    assert pod_targets(scraped_pod(status={"phase": "Succeeded", "podIP": "127.0.0.1"})) == []
    pod = scraped_pod()
    del pod["metadata"]["annotations"]["sandbox.modelops.dev/host-ports"]  # no local port yet
    assert pod_targets(pod) == []


def test_targets_file_is_rewritten_on_pod_changes(tmp_path: Path) -> None:
    targets = PodTargets(tmp_path / "pods.json")
    assert json.loads((tmp_path / "pods.json").read_text()) == []
    targets.on_pod("ADDED", scraped_pod("a"))
    targets.on_pod("ADDED", scraped_pod("b"))
    assert [g["labels"]["pod"] for g in json.loads((tmp_path / "pods.json").read_text())] == ["a", "b"]
    targets.on_pod("DELETED", scraped_pod("a"))
    assert [g["labels"]["pod"] for g in json.loads((tmp_path / "pods.json").read_text())] == ["b"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool")
def test_generated_config_passes_promtool(tmp_path: Path) -> None:
    import yaml

    PodTargets(tmp_path / "targets.json").on_pod("ADDED", scraped_pod())
    path = tmp_path / "prometheus.yml"
    doc = config(scrape_interval=2.0, targets_file=tmp_path / "targets.json", operator_target="127.0.0.1:9999")
    path.write_text(yaml.safe_dump(doc))
    result = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert doc["global"]["scrape_interval"] == "2s"
    assert [job["job_name"] for job in doc["scrape_configs"]] == ["modelops-operator", "kubernetes-pods"]


@pytest.fixture
async def model_server(tmp_path: Path) -> AsyncIterator[int]:
    """A real `modelops serve` process (the churn example) on a free local port."""
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "modelops.cli", "serve", "--model-uri", str(CHURN), "--digest", CHURN_DIGEST,
        "--name", "churn", "--version", "1", "--track", "canary", "--host", "127.0.0.1", "--port", str(port),
        "--shutdown-delay", "0", stdout=log, stderr=log,
    )  # fmt: skip
    try:
        yield port
    finally:
        proc.terminate()
        await proc.wait()
        log.close()


@pytest.mark.prometheus
@needs_prometheus
async def test_prometheus_scrapes_a_model_server_pod(tmp_path: Path, model_server: int) -> None:
    binary = find_binary()
    assert binary is not None
    async with ApiServer(port=0) as api, k.Kube(api.url) as kube:
        pods = k.Informer(kube, k.PODS)
        prometheus = PrometheusProcess(tmp_path / "prometheus", binary=binary, scrape_interval=0.5)
        pods.add_handler(prometheus.targets.on_pod)
        await pods.start()
        await prometheus.start()
        try:
            await prometheus.wait_ready()
            await kube.create(k.NAMESPACES, None, {"metadata": {"name": "models"}})
            pod = scraped_pod("churn-canary-1")
            pod["metadata"]["annotations"]["sandbox.modelops.dev/host-ports"] = json.dumps({"8080": model_server})
            status = pod.pop("status")
            await kube.create(k.PODS, "models", pod)
            await kube.patch(k.PODS, "models", "churn-canary-1", {"status": status}, subresource="status")

            body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1.0, 2.0, 3.0, 4.0]}]}
            async with aiohttp.ClientSession() as session:

                async def served() -> bool:
                    try:
                        async with session.get(f"http://127.0.0.1:{model_server}/v2/health/ready") as resp:
                            return resp.status == 200
                    except aiohttp.ClientError:
                        return False

                await eventually(served, within=20, what="the model server is ready")
                for _ in range(7):
                    async with session.post(f"http://127.0.0.1:{model_server}/v2/models/churn/infer", json=body) as r:
                        assert r.status == 200

                async def counted() -> list[dict[str, Any]] | None:
                    query = 'modelops_inference_requests_total{code="200"}'
                    async with session.get(f"{prometheus.url}/api/v1/query", params={"query": query}) as resp:
                        data = await resp.json()
                    result = data["data"]["result"]
                    return result if result and result[0]["value"][1] == "7" else None

                result = await eventually(counted, within=15, what="Prometheus has the pod's request counter")
        finally:
            await prometheus.stop()
            await pods.stop()
    metric = result[0]["metric"]
    assert metric["namespace"] == "models"
    assert metric["pod"] == "churn-canary-1"
    assert metric["modelops_dev_track"] == "canary"
    assert metric["job"] == "kubernetes-pods"
    assert (metric["model"], metric["version"], metric["track"]) == ("churn", "1", "canary")
