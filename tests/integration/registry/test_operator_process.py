"""`modelops run` as users run it: cluster-wide, with a liveness endpoint and /metrics."""

from __future__ import annotations

import hashlib
import time
import urllib.request

from kubernetes import client

from modelops.k8s.resources import MODEL_VERSION
from tests.integration.registry.conftest import model_version, status
from tests.support.operator_process import free_port, start_operator, stop


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read().decode()
    except OSError:
        return 0, ""


def test_cluster_wide_operator_with_health_and_metrics(kubeconfig, k8s_api_client, custom_objects, tmp_path):
    client.CoreV1Api(k8s_api_client).create_namespace({"metadata": {"name": "team-b"}})
    health, metrics = free_port(), free_port()
    proc = start_operator(
        str(kubeconfig), tmp_path / "op.log", namespace=None, health_port=health, metrics_port=metrics
    )
    try:
        deadline = time.monotonic() + 30
        while get(f"http://127.0.0.1:{health}/healthz")[0] != 200:
            assert proc.poll() is None, (tmp_path / "op.log").read_text()
            assert time.monotonic() < deadline, "liveness endpoint never answered 200"
            time.sleep(0.2)
        path = tmp_path / "m.joblib"
        path.write_bytes(b"team b model")
        digest = "sha256:" + hashlib.sha256(b"team b model").hexdigest()
        custom_objects.create(MODEL_VERSION, "team-b", model_version("fraud-v1", path.as_uri(), digest, model="fraud"))
        while status(custom_objects.get(MODEL_VERSION, "team-b", "fraud-v1")).get("phase") != "Verified":
            assert time.monotonic() < deadline + 30, (tmp_path / "op.log").read_text()
            time.sleep(0.1)
        # Metrics are updated right after the status write: poll briefly.
        wanted = (
            'modelops_model_version_info{model="fraud",name="fraud-v1",namespace="team-b",phase="Verified",'
            'stage="None",version="1"} 1.0'
        )
        text = ""
        while wanted not in text and time.monotonic() < deadline + 40:
            code, text = get(f"http://127.0.0.1:{metrics}/metrics")
            time.sleep(0.1)
        assert code == 200
        assert wanted in text
        assert 'modelops_reconcile_total{kind="ModelVersion",result="success"}' in text
        assert "modelops_reconcile_duration_seconds_bucket" in text
    finally:
        stop(proc)
