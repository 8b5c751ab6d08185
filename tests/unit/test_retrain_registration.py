"""Retraining that registers its result, the pure parts: next version, the Job's env and RBAC, history links."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import kubernetes_validate
import pytest

from modelops.api.driftmonitor import ActiveJob, CheckResult, DriftMonitorSpec, DriftMonitorStatus, FeatureResult
from modelops.api.modelversion import ModelVersionSpec
from modelops.cli import build_parser
from modelops.commands.registry import build_model_version
from modelops.core.drift_cronjob import (
    MonitorRef,
    RetrainContext,
    build_retrain_job,
    build_retrain_role,
    build_retrain_role_binding,
    build_retrain_service_account,
    next_version,
    retrain_children,
)
from modelops.core.drift_monitor import MonitorObservations, evaluate_check, track_job

K8S = kubernetes_validate.latest_version()
NOW = datetime(2026, 11, 30, 10, 0, 5, tzinfo=UTC)
CHECK = datetime(2026, 11, 30, 10, 0, 0, tzinfo=UTC)
MON = MonitorRef("churn-drift", "ml", "uid-1")
TEMPLATE = {"spec": {"template": {"spec": {"containers": [{"name": "train", "image": "trainer:1"}]}}}}
DIGEST = "sha256:" + "ab" * 32


def spec(template=TEMPLATE, **extra) -> DriftMonitorSpec:
    return DriftMonitorSpec.model_validate(
        {
            "target": {"deployment": "churn"},
            "schedule": "@hourly",
            "current": {"source": "predictionLog", "uri": "s3://logs/churn/", "window": "2h"},
            "policy": {"action": "retrain", "consecutiveChecks": 1, "cooldown": "1h"},
            "jobTemplate": template,
            **extra,
        }
    )


def drifted(at: datetime) -> CheckResult:
    f = FeatureResult(
        name="tenure_months",
        test="ks",
        statistic=0.4,
        p_value=1e-9,
        threshold=0.05,
        drifted=True,
        n_reference=9,
        n_current=9,
    )
    return CheckResult(time=at, dataset_drift=True, drift_share=1.0, drifted_features=1, total_features=1, features=[f])


def checked(at: datetime = CHECK) -> DriftMonitorStatus:
    return DriftMonitorStatus(last_result=drifted(at), last_check_time=at)


OBS = MonitorObservations(model_name="churn", model_version="2", parent="churn-v2", versions=("1", "2", "nightly"))


# -- next version ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ([], "1"),
        (["1"], "2"),
        (["1", "2", "3"], "4"),
        (["v1", "2"], "3"),
        (["V7"], "8"),
        (["9", "10"], "11"),  # numbers, not strings: "9" > "10" as text
        (["1.4.0", "2.0.1"], "3"),
        (["3-broken", "2"], "4"),
        (["nightly", "rc"], "1"),
        ([" 5 "], "6"),
    ],
)
def test_next_version(existing, expected):
    assert next_version(existing) == expected


def test_next_version_counts_the_parent_even_when_the_listing_missed_it():
    decision = evaluate_check(
        MON, spec(), checked(), MonitorObservations(model_name="churn", model_version="6", parent="churn-v6"), "r", NOW
    )
    env = {e["name"]: e["value"] for e in decision.job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODELOPS_NEXT_VERSION"] == "7"


# -- the Job and its RBAC ------------------------------------------------------------------------


def _env(job: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_retrain_job_env_names_what_to_register_and_its_lineage():
    s = spec()
    job = build_retrain_job(
        MON,
        TEMPLATE,
        model_name="churn",
        model_version="2",
        result=drifted(CHECK),
        reference_uri="s3://data/ref.parquet",
        now=CHECK,
        context=RetrainContext(
            model_name="churn", parent="churn-v2", next_version="4", current=s.current, check_time=CHECK
        ),
    )
    kubernetes_validate.validate(job, K8S, strict=True)
    env = _env(job)
    assert env == {
        "MODEL_NAME": "churn",
        "MODEL_VERSION": "2",
        "DRIFT_REPORT": env["DRIFT_REPORT"],
        "REFERENCE_URI": "s3://data/ref.parquet",
        "CURRENT_URI": "s3://logs/churn/",
        "CURRENT_SOURCE": "predictionLog",
        "CURRENT_FORMAT": "auto",
        "CURRENT_WINDOW": "2h",
        "MODELOPS_NAMESPACE": "ml",
        "MODELOPS_DRIFT_MONITOR": "churn-drift",
        "MODELOPS_DRIFT_CHECK_TIME": "2026-11-30T10:00:00Z",
        "MODELOPS_RETRAIN_JOB": "churn-drift-retrain-20261130100000",
        "MODELOPS_PARENT_VERSION": "churn-v2",
        "MODELOPS_NEXT_VERSION": "4",
        "MODELOPS_NEXT_VERSION_NAME": "churn-v4",
        "PERFORMANCE_REPORT": "",  # the monitor judges no performance
        "PERFORMANCE_SPEC": "",
        "MODELOPS_RETRAIN_TRIGGER": "data-drift",
    }
    assert json.loads(env["DRIFT_REPORT"])["datasetDrift"] is True
    assert job["metadata"]["name"] == "churn-drift-retrain-20261130100000"
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "churn-drift-retrain"
    assert pod["automountServiceAccountToken"] is True


def test_retrain_job_keeps_the_templates_own_service_account():
    template = {
        "spec": {
            "template": {
                "spec": {
                    "serviceAccountName": "trainer",
                    "automountServiceAccountToken": False,
                    "containers": [{"name": "t", "image": "i"}],
                }
            }
        }
    }
    job = build_retrain_job(
        MON, template, model_name="churn", model_version="2", result=drifted(CHECK), reference_uri="", now=CHECK
    )
    pod = job["spec"]["template"]["spec"]
    assert (pod["serviceAccountName"], pod["automountServiceAccountToken"]) == ("trainer", False)
    assert _env(job)["MODELOPS_NEXT_VERSION"] == ""  # no context: nothing invented


def test_retrain_rbac_is_create_and_get_of_model_versions_only():
    sa, role, binding = retrain_children(MON, spec())
    for obj in (sa, role, binding):
        kubernetes_validate.validate(obj, K8S, strict=True)
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
        assert obj["metadata"]["name"] == "churn-drift-retrain"
        assert obj["metadata"]["namespace"] == "ml"
    assert sa == build_retrain_service_account(MON)
    assert sa["automountServiceAccountToken"] is False
    assert role["rules"] == [
        {"apiGroups": ["modelops.dev"], "resources": ["modelversions"], "verbs": ["create", "get"]}
    ]
    assert binding == build_retrain_role_binding(MON)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "churn-drift-retrain", "namespace": "ml"}]
    assert binding["roleRef"]["name"] == "churn-drift-retrain"


def test_retrain_rbac_reads_only_the_named_data_secret():
    role = build_retrain_role(MON, spec(dataSecretRef={"name": "s3-creds"}))
    assert role["rules"][1] == {
        "apiGroups": [""],
        "resources": ["secrets"],
        "resourceNames": ["s3-creds"],
        "verbs": ["get"],
    }
    assert len(role["rules"]) == 2


def test_no_retrain_rbac_without_a_job_template():
    assert retrain_children(MON, spec(template=None)) == []


# -- history links ------------------------------------------------------------------------------


def test_retrain_triggered_names_job_check_parent_and_planned_version():
    d = evaluate_check(MON, spec(), checked(), OBS, "s3://ref", NOW)
    assert d.job is not None
    assert _env(d.job)["MODELOPS_NEXT_VERSION"] == "3"
    assert _env(d.job)["MODELOPS_PARENT_VERSION"] == "churn-v2"
    active = d.status.active_job
    assert active == ActiveJob(
        name="churn-drift-retrain-20261130100000",
        created_at=NOW,
        check_time=CHECK,
        parent_version="churn-v2",
        next_version="3",
    )
    drift, triggered = d.status.history[-2:]
    assert (drift.event, drift.check_time) == ("DriftDetected", CHECK)
    assert (triggered.event, triggered.job, triggered.check_time) == ("RetrainTriggered", active.name, CHECK)
    assert (triggered.from_value, triggered.to_value) == ("churn-v2", "churn-v3")
    wire = d.status.to_wire()["history"][-1]
    assert wire["job"] == active.name
    assert wire["checkTime"] == "2026-11-30T10:00:00Z"
    assert (wire["from"], wire["to"]) == ("churn-v2", "churn-v3")


def _running() -> DriftMonitorStatus:
    d = evaluate_check(MON, spec(), checked(), OBS, "s3://ref", NOW)
    return d.status


def test_registered_version_is_linked_once_while_the_job_runs():
    status = _running()
    later = NOW + timedelta(seconds=20)
    seen = MonitorObservations(job_state="active", registered=("churn-v3",))
    d = track_job(status, seen, later)
    assert d.changed
    assert d.status.active_job is not None
    assert d.status.active_job.registered_version == "churn-v3"
    entry = d.status.history[-1]
    assert entry.event == "RetrainedVersionRegistered"
    assert (entry.job, entry.check_time, entry.from_value, entry.to_value) == (
        "churn-drift-retrain-20261130100000",
        CHECK,
        "churn-v2",
        "churn-v3",
    )
    assert [(e.type, e.reason) for e in d.events] == [("Normal", "RetrainedVersionRegistered")]
    again = track_job(d.status, seen, later + timedelta(seconds=30))
    assert not again.changed
    assert again.status.history == d.status.history


def test_job_success_after_registering_moves_to_last_retrain():
    status = _running()
    done = NOW + timedelta(seconds=30)
    d = track_job(status, MonitorObservations(job_state="succeeded", registered=("churn-v3",)), done)
    assert d.status.active_job is None
    last = d.status.last_retrain
    assert last is not None
    assert (last.name, last.outcome, last.registered_version, last.parent_version, last.next_version) == (
        "churn-drift-retrain-20261130100000",
        "Succeeded",
        "churn-v3",
        "churn-v2",
        "3",
    )
    assert (last.check_time, last.finished_at) == (CHECK, done)
    assert [h.event for h in d.status.history[-2:]] == ["RetrainedVersionRegistered", "RetrainSucceeded"]
    assert "registered ModelVersion churn-v3" in d.status.history[-1].message
    assert [e.reason for e in d.events] == ["RetrainedVersionRegistered", "RetrainSucceeded"]


def test_success_without_a_registered_version_says_so():
    d = track_job(_running(), MonitorObservations(job_state="succeeded"), NOW + timedelta(seconds=30))
    assert d.status.last_retrain is not None
    assert d.status.last_retrain.registered_version is None
    assert "no ModelVersion" in d.status.history[-1].message


def test_failed_job_is_recorded_as_failed():
    d = track_job(_running(), MonitorObservations(job_state="failed"), NOW + timedelta(seconds=30))
    assert d.status.last_retrain is not None
    assert d.status.last_retrain.outcome == "Failed"
    assert d.events[-1].type == "Warning"


# -- `modelops registry register` inside the Job -----------------------------------------------------

JOB_ENV = {
    "MODEL_NAME": "churn",
    "MODELOPS_NEXT_VERSION": "4",
    "MODELOPS_PARENT_VERSION": "churn-v2",
    "MODELOPS_NAMESPACE": "ml",
    "MODELOPS_DRIFT_MONITOR": "churn-drift",
    "MODELOPS_DRIFT_CHECK_TIME": "2026-11-30T10:00:00Z",
    "MODELOPS_RETRAIN_JOB": "churn-drift-retrain-20261130100000",
    "GIT_COMMIT": "0123abc",
}


def _register_args(argv: list[str]):
    full = ["registry", "register", *argv]
    return build_parser(full).parse_args(full)


def test_register_takes_name_version_and_lineage_from_the_jobs_env(monkeypatch):
    for key in ("MODELOPS_CODE_COMMIT", "MODELOPS_TRAINING_RUN", "MODELOPS_DRIFT_REPORT_URI"):
        monkeypatch.delenv(key, raising=False)
    for key, value in JOB_ENV.items():
        monkeypatch.setenv(key, value)
    args = _register_args(["m.joblib", "--uri", "s3://m/churn-v4/model.joblib", "--drift-report-uri", "s3://m/r.json"])
    obj = build_model_version(args, DIGEST)
    assert obj["metadata"]["name"] == "churn-v4"
    assert obj["metadata"]["namespace"] == "ml"
    assert obj["metadata"]["labels"] == {
        "modelops.dev/model": "churn",
        "modelops.dev/retrained-by": "churn-drift",
        "modelops.dev/retrain-job": "churn-drift-retrain-20261130100000",
    }
    assert obj["spec"]["lineage"] == {
        "codeCommit": "0123abc",
        "trainingRun": "job/churn-drift-retrain-20261130100000",
        "parentVersion": "churn-v2",
        "driftReport": {"monitor": "churn-drift", "checkTime": "2026-11-30T10:00:00Z", "uri": "s3://m/r.json"},
    }
    ModelVersionSpec.model_validate(obj["spec"])


def test_register_flags_win_over_the_env(monkeypatch):
    for key, value in JOB_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MODELOPS_CODE_COMMIT", "fff000")
    args = _register_args(
        ["m.joblib", "--name", "other", "--version", "9", "--parent", "other-v8", "-n", "team", "--code-commit", "c1"]
    )
    obj = build_model_version(args, DIGEST)
    assert (obj["metadata"]["name"], obj["metadata"]["namespace"]) == ("other-v9", "team")
    assert obj["spec"]["lineage"]["parentVersion"] == "other-v8"
    assert obj["spec"]["lineage"]["codeCommit"] == "c1"


def test_register_outside_a_job_needs_name_and_version(monkeypatch):
    for key in [*JOB_ENV, "MODELOPS_CODE_COMMIT", "MODELOPS_TRAINING_RUN", "MODELOPS_DRIFT_REPORT_URI"]:
        monkeypatch.delenv(key, raising=False)
    from modelops.errors import CLIError

    with pytest.raises(CLIError, match="--name"):
        build_model_version(_register_args(["m.joblib", "--version", "1"]), DIGEST)
    obj = build_model_version(_register_args(["m.joblib", "--name", "churn", "--version", "1"]), DIGEST)
    assert obj["metadata"]["labels"] == {"modelops.dev/model": "churn"}
    assert "lineage" not in obj["spec"]


def test_status_patch_removes_what_the_new_status_dropped():
    from modelops.handlers.driftmonitor import status_patch

    stored = {"status": {"activeJob": {"name": "j"}, "phase": "Drifted", "someoneElses": {"x": 1}}}
    patch = status_patch(stored, DriftMonitorStatus(phase="Drifted"))
    assert patch["activeJob"] is None  # a merge patch deletes a key only by null
    assert patch["phase"] == "Drifted"
    assert "someoneElses" not in patch  # fields this model does not know are left alone


def test_inside_a_pod_without_kubeconfig_the_client_uses_the_service_account(monkeypatch, tmp_path):
    """What `registry register` does in a retraining Job's pod on a cluster: in-cluster config."""
    from kubernetes.config import incluster_config

    from modelops.k8s.client import load_api_client

    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("job-token")
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))  # the kubelet's mount
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    cfg = load_api_client().configuration
    assert cfg.host == "https://10.96.0.1:443"
    assert cfg.api_key == {"BearerToken": "bearer job-token"}
    assert cfg.ssl_ca_cert == str(ca)
