"""The DriftMonitor's children as pure manifests, validated against the Kubernetes schemas."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import kubernetes_validate
import pytest

from modelops.api.driftmonitor import CheckResult, DriftMonitorSpec, FeatureResult
from modelops.core.drift_cronjob import (
    CheckJobOptions,
    MonitorRef,
    build_cronjob,
    build_retrain_job,
    build_role,
    build_role_binding,
    build_service_account,
    cronjob_name,
    service_account_name,
)

K8S = kubernetes_validate.latest_version()
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MONITOR = MonitorRef("churn-monitor", "ml", "6f1c4d0e-2b1a-4a8e-9a53-0d4c8c5b2f10")
JOB_TEMPLATE = {
    "metadata": {"labels": {"team": "ml"}},
    "spec": {
        "backoffLimit": 0,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "train",
                        "image": "ghcr.io/acme/train:1",
                        "args": ["--register"],
                        "env": [{"name": "MODEL_NAME", "value": "stale"}, {"name": "KEEP", "value": "1"}],
                    }
                ]
            }
        },
    },
}


def _spec(**extra) -> DriftMonitorSpec:
    return DriftMonitorSpec.model_validate({"target": {"deployment": "churn"}, "schedule": "*/15 * * * *", **extra})


def _result() -> CheckResult:
    feature = FeatureResult(
        name="x", test="ks", statistic=0.3, p_value=0.001, threshold=0.05, drifted=True, n_reference=100, n_current=90
    )
    return CheckResult(
        time=NOW, dataset_drift=True, drift_share=1.0, drifted_features=1, total_features=1, features=[feature]
    )


def _valid(obj: dict) -> None:
    kubernetes_validate.validate(obj, K8S, strict=True)


def test_validator_is_strict():
    bad = build_service_account(MONITOR)
    bad["spec"] = {"unknown": True}
    with pytest.raises(kubernetes_validate.ValidationError):
        _valid(bad)


def test_cronjob_manifest():
    spec = _spec(dataSecretRef={"name": "s3-creds"}, suspend=True)
    cj = build_cronjob(MONITOR, spec, CheckJobOptions(image="ghcr.io/acme/modelops:0.1"))
    _valid(cj)
    s = cj["spec"]
    assert s["schedule"] == "*/15 * * * *"
    assert s["suspend"] is True
    assert s["concurrencyPolicy"] == "Forbid"
    assert s["startingDeadlineSeconds"] > 0
    assert s["successfulJobsHistoryLimit"] >= 1
    assert s["failedJobsHistoryLimit"] >= 1
    pod = s["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["modelops", "drift", "check", "--monitor", "ml/churn-monitor"]
    assert pod["serviceAccountName"] == service_account_name(MONITOR)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert any(v["name"] == "tmp" and "emptyDir" in v for v in pod["volumes"])
    assert container["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    assert cj["metadata"]["ownerReferences"][0]["uid"] == MONITOR.uid
    assert len(cronjob_name(MonitorRef("x" * 80, "ml", "u"))) <= 52


def test_spec_image_overrides_default():
    cj = build_cronjob(MONITOR, _spec(image="ghcr.io/acme/check:2"), CheckJobOptions(image="default:1"))
    assert cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/check:2"


@pytest.mark.parametrize("secret", [None, "s3-creds"])
def test_rbac_is_least_privilege(secret):
    spec = _spec(dataSecretRef={"name": secret}) if secret else _spec()
    role, binding, sa = build_role(MONITOR, spec), build_role_binding(MONITOR), build_service_account(MONITOR)
    for obj in (role, binding, sa):
        _valid(obj)
        assert obj["metadata"]["namespace"] == "ml"
    status_rule = role["rules"][0]
    assert status_rule == {
        "apiGroups": ["modelops.dev"],
        "resources": ["driftmonitors/status"],
        "resourceNames": ["churn-monitor"],
        "verbs": ["get", "patch"],
    }
    secret_rules = [r for r in role["rules"] if "secrets" in r["resources"]]
    if secret:
        assert secret_rules == [
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [secret], "verbs": ["get"]}
        ]
    else:
        assert secret_rules == []
    assert len(role["rules"]) == (2 if secret else 1)
    assert all("*" not in r["verbs"] and "resourceNames" in r for r in role["rules"])
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "ml"}]


def test_role_can_record_events_when_asked():
    role = build_role(MONITOR, _spec(), record_events=True)
    _valid(role)
    assert any(r["resources"] == ["events"] and r["verbs"] == ["create"] for r in role["rules"])


def test_retrain_job_from_template():
    job = build_retrain_job(
        MONITOR,
        JOB_TEMPLATE,
        model_name="churn",
        model_version="3",
        result=_result(),
        reference_uri="s3://data/ref.parquet",
        now=NOW,
    )
    _valid(job)
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODEL_NAME"] == "churn"
    assert env["MODEL_VERSION"] == "3"
    assert env["REFERENCE_URI"] == "s3://data/ref.parquet"
    assert env["KEEP"] == "1"
    assert CheckResult.model_validate(json.loads(env["DRIFT_REPORT"])) == _result()
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "DriftMonitor"
    assert job["metadata"]["labels"]["team"] == "ml"
    assert len(job["metadata"]["name"]) <= 63
    assert JOB_TEMPLATE["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "stale"  # not mutated
    again = build_retrain_job(
        MONITOR, JOB_TEMPLATE, model_name="churn", model_version="3", result=_result(), reference_uri="", now=NOW
    )
    assert again["metadata"]["name"] == job["metadata"]["name"]  # idempotent per check


def test_retrain_job_needs_containers():
    with pytest.raises(ValueError, match="containers"):
        build_retrain_job(
            MONITOR, {"spec": {}}, model_name="m", model_version="1", result=_result(), reference_uri="", now=NOW
        )
