"""The sandbox's Prometheus: its config (promtool) and pod discovery as the `kubernetes-pods` job.

The real scrape of model server pods, queried over Prometheus' HTTP API, is in test_sandbox_cli.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from modelops.sandbox.cluster.prometheus import PodTargets, config, pod_targets


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
