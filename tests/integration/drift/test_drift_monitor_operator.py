"""DriftMonitor end to end: the operator owns the CronJob and its RBAC; the check command (what the
CronJob's pod runs) writes the result; the operator debounces and creates the retraining Job."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from kubernetes import client

from modelops.k8s.client import load_api_client
from modelops.k8s.resources import DRIFT_MONITOR
from modelops.telemetry import DRIFT_DETECTED, DRIFT_SCORE
from tests.integration.drift.conftest import NS, monitor, run_check, wait, write_csv


@pytest.mark.usefixtures("operator", "model_version")
def test_children_are_created_with_least_privilege(custom_objects, kubeconfig, tmp_path):
    ref = write_csv(tmp_path / "ref.csv", 0)
    custom_objects.create(DRIFT_MONITOR, NS, monitor(ref, ref))
    ac = load_api_client(str(kubeconfig))
    batch, rbac = client.BatchV1Api(ac), client.RbacAuthorizationV1Api(ac)
    cj = wait(lambda: [c for c in batch.list_namespaced_cron_job(NS).items], "the CronJob")[0]
    assert cj.spec.schedule == "*/30 * * * *"
    assert cj.spec.concurrency_policy == "Forbid"
    assert cj.spec.starting_deadline_seconds > 0
    container = cj.spec.job_template.spec.template.spec.containers[0]
    assert container.command[-2:] == ["--monitor", f"{NS}/churn-drift"]
    assert container.security_context.read_only_root_filesystem is True
    assert cj.metadata.owner_references[0].kind == "DriftMonitor"
    role = rbac.list_namespaced_role(NS).items[0]
    status_rule = next(r for r in role.rules if r.resources == ["driftmonitors/status"])
    assert status_rule.verbs == ["get", "patch"]
    assert status_rule.resource_names == ["churn-drift"]
    assert all("*" not in r.verbs and "*" not in r.resources for r in role.rules)
    obj = wait(
        lambda: (
            (custom_objects.get(DRIFT_MONITOR, NS, "churn-drift").get("status") or {}).get("resolvedReference")
            and custom_objects.get(DRIFT_MONITOR, NS, "churn-drift")
        ),
        "status",
    )
    assert obj["status"]["phase"] == "Pending"

    # A spec change updates the CronJob.
    custom_objects.patch(DRIFT_MONITOR, NS, "churn-drift", {"spec": {"schedule": "0 * * * *"}})
    wait(lambda: batch.read_namespaced_cron_job(cj.metadata.name, NS).spec.schedule == "0 * * * *", "CronJob update")


@pytest.mark.usefixtures("operator", "model_version")
def test_shifted_data_detects_drift_and_creates_one_retraining_job(custom_objects, kubeconfig, tmp_path):
    ref = write_csv(tmp_path / "ref.csv", 0, seed=1)
    cur = write_csv(tmp_path / "cur.csv", 1.0, seed=2)
    custom_objects.create(DRIFT_MONITOR, NS, monitor(ref, cur))
    wait(
        lambda: (custom_objects.get(DRIFT_MONITOR, NS, "churn-drift").get("status") or {}).get("resolvedReference"),
        "ready",
    )

    done = run_check(kubeconfig)
    assert done.returncode == 0, done.stderr
    obj = wait(
        lambda: (o := custom_objects.get(DRIFT_MONITOR, NS, "churn-drift"))["status"].get("activeJob") and o, "retrain"
    )
    st = obj["status"]
    assert st["lastResult"]["datasetDrift"] is True
    drifted = {f["name"] for f in st["lastResult"]["features"] if f["drifted"]}
    assert {"tenure", "calls", "plan"} <= drifted
    assert "charges" not in drifted
    assert st["phase"] == "Drifted"
    ac = load_api_client(str(kubeconfig))
    jobs = client.BatchV1Api(ac).list_namespaced_job(NS).items
    assert [j.metadata.name for j in jobs] == [st["activeJob"]["name"]]
    env = {e.name: e.value for e in jobs[0].spec.template.spec.containers[0].env}
    assert env["MODEL_NAME"] == "churn"
    assert env["MODEL_VERSION"] == "1"
    assert env["REFERENCE_URI"] == str(ref)
    assert '"datasetDrift":true' in env["DRIFT_REPORT"]
    assert any(h["event"] == "RetrainTriggered" for h in st["history"])
    reasons = {
        e.reason
        for e in client.CoreV1Api(ac).list_namespaced_event(NS, field_selector="involvedObject.name=churn-drift").items
    }
    assert {"DriftDetected", "RetrainTriggered"} <= reasons

    # Metrics from status.
    wait(
        lambda: any(
            s.labels.get("monitor") == "churn-drift" and s.value == 1
            for m in DRIFT_DETECTED.collect()
            for s in m.samples
        ),
        "drift metric",
    )
    scored = {
        s.labels["feature"] for m in DRIFT_SCORE.collect() for s in m.samples if s.labels["monitor"] == "churn-drift"
    }
    assert {"tenure", "charges", "calls", "plan"} <= scored

    # A second drifted check inside the cooldown: no second Job.
    assert run_check(kubeconfig).returncode == 0
    wait(
        lambda: custom_objects.get(DRIFT_MONITOR, NS, "churn-drift")["status"].get("consecutiveDrifted") == 2,
        "2nd check",
    )
    assert len(client.BatchV1Api(ac).list_namespaced_job(NS).items) == 1


@pytest.mark.usefixtures("operator", "model_version")
def test_missing_column_is_an_error_status_not_no_drift(custom_objects, kubeconfig, tmp_path):
    ref = write_csv(tmp_path / "ref.csv", 0)
    cur = tmp_path / "cur.csv"
    cur.write_text("tenure,charges\n1,2\n" * 1)
    custom_objects.create(DRIFT_MONITOR, NS, monitor(ref, cur))
    wait(
        lambda: (custom_objects.get(DRIFT_MONITOR, NS, "churn-drift").get("status") or {}).get("resolvedReference"),
        "ready",
    )
    done = run_check(kubeconfig)
    assert done.returncode == 0, done.stderr
    st = custom_objects.get(DRIFT_MONITOR, NS, "churn-drift")["status"]
    assert st["phase"] == "Error"
    cond = next(c for c in st["conditions"] if c["type"] == "CheckSucceeded")
    assert cond["status"] == "False"
    assert cond["reason"] in ("MissingColumns", "EmptyData")
    assert "lastResult" not in st
    ac = load_api_client(str(kubeconfig))
    events = client.CoreV1Api(ac).list_namespaced_event(NS, field_selector="involvedObject.name=churn-drift").items
    failed = [e for e in events if e.reason == "DriftCheckFailed"]
    assert failed
    assert failed[0].type == "Warning"


def test_check_exits_non_zero_when_the_api_is_unreachable(tmp_path):
    from tests.support.faultproxy import kubeconfig_for

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = run_check(Path(kubeconfig_for(f"http://127.0.0.1:{port}", str(tmp_path / "kc"))))
    assert done.returncode != 0
    assert "cannot reach the Kubernetes API" in done.stderr
    assert "Traceback" not in done.stderr
