"""An operator killed after creating the retraining Job, before recording it, resumes without a
second Job: the Job's name is derived from the check time and the verdict lives in status."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from modelops.k8s.client import load_api_client
from modelops.k8s.resources import DRIFT_MONITOR
from tests.integration.drift.conftest import NS, monitor, run_check, write_csv
from tests.support.faultproxy import kubeconfig_for
from tests.support.operator_process import kill, start_operator, stop


@pytest.mark.usefixtures("model_version")
def test_killed_between_job_create_and_status_write(proxy, custom_objects, kubeconfig, tmp_path):
    via_proxy = kubeconfig_for(proxy.url, str(tmp_path / "proxy-kubeconfig"))
    log = tmp_path / "operator.log"
    first = start_operator(via_proxy, log)
    try:
        ref = write_csv(tmp_path / "ref.csv", 0, seed=1)
        cur = write_csv(tmp_path / "cur.csv", 1.0, seed=2)
        spec = monitor(ref, cur)
        spec["spec"]["columnMapping"] = {"categorical": ["plan"], "numerical": ["tenure", "charges", "calls"]}
        custom_objects.create(DRIFT_MONITOR, NS, spec)
        deadline = time.monotonic() + 30
        while not (custom_objects.get(DRIFT_MONITOR, NS, "churn-drift").get("status") or {}).get("resolvedReference"):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        proxy.hold(lambda method, path: method == "PATCH" and path.endswith("/driftmonitors/churn-drift/status"))
        assert run_check(kubeconfig).returncode == 0
        assert proxy.held.wait(30), log.read_text()
        kill(first)  # the Job exists; its record in status never landed
    finally:
        kill(first)
    batch = client.BatchV1Api(load_api_client(str(kubeconfig)))
    assert len(batch.list_namespaced_job(NS).items) == 1
    assert "activeJob" not in custom_objects.get(DRIFT_MONITOR, NS, "churn-drift")["status"]

    proxy.release_all()
    second = start_operator(via_proxy, log)
    try:
        deadline = time.monotonic() + 30
        while not custom_objects.get(DRIFT_MONITOR, NS, "churn-drift")["status"].get("activeJob"):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        stop(second)
    st = custom_objects.get(DRIFT_MONITOR, NS, "churn-drift")["status"]
    jobs = batch.list_namespaced_job(NS).items
    assert [j.metadata.name for j in jobs] == [st["activeJob"]["name"]]
    assert st["consecutiveDrifted"] == 1
    assert st["evaluatedCheckTime"] == st["lastCheckTime"]
