"""The DriftMonitor's pure decisions: each check counted once, debounce, retrain Job, job tracking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelops.api.driftmonitor import ActiveJob, CheckResult, DriftMonitorSpec, DriftMonitorStatus, FeatureResult
from modelops.core.drift_cronjob import MonitorRef
from modelops.core.drift_monitor import MonitorObservations, evaluate_check, job_state_of, track_job

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
MON = MonitorRef("churn-drift", "default", "uid-1")
TEMPLATE = {"spec": {"template": {"spec": {"containers": [{"name": "train", "image": "trainer:1"}]}}}}


def spec(action="retrain", consecutive=2, cooldown="1h", template=TEMPLATE):
    return DriftMonitorSpec.model_validate(
        {
            "target": {"modelVersion": "churn-v1"},
            "schedule": "@hourly",
            "policy": {"action": action, "consecutiveChecks": consecutive, "cooldown": cooldown},
            "jobTemplate": template,
        }
    )


def result(drift: bool, at: datetime) -> CheckResult:
    f = FeatureResult(
        name="tenure",
        test="ks",
        statistic=0.4 if drift else 0.01,
        p_value=1e-9 if drift else 0.8,
        threshold=0.05,
        drifted=drift,
        n_reference=1000,
        n_current=1000,
    )
    return CheckResult(
        time=at,
        dataset_drift=drift,
        drift_share=1.0 if drift else 0.0,
        drifted_features=int(drift),
        total_features=1,
        features=[f],
    )


OBS = MonitorObservations(model_name="churn", model_version="1")


def checked(status: DriftMonitorStatus, drift: bool, at: datetime) -> DriftMonitorStatus:
    """What the CronJob's check writes."""
    return status.model_copy(update={"last_result": result(drift, at), "last_check_time": at})


def test_each_check_counts_once():
    s = checked(DriftMonitorStatus(), True, NOW)
    d1 = evaluate_check(MON, spec(), s, OBS, "s3://ref", NOW)
    assert d1.status.consecutive_drifted == 1
    d2 = evaluate_check(MON, spec(), d1.status, OBS, "s3://ref", NOW + timedelta(seconds=5))
    assert not d2.changed
    assert d2.status.consecutive_drifted == 1


def test_debounce_then_exactly_one_retrain_job():
    s = DriftMonitorStatus()
    jobs = []
    for i, drift in enumerate([True, True, True]):
        at = NOW + timedelta(minutes=10 * i)
        d = evaluate_check(
            MON, spec(), checked(s, drift, at), MonitorObservations("active", "churn", "1"), "s3://ref", at
        )
        s = d.status
        if d.job:
            jobs.append(d.job)
    assert len(jobs) == 1, "second drifted check fires; third is inside the cooldown"
    job = jobs[0]
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODEL_NAME"] == "churn"
    assert env["MODEL_VERSION"] == "1"
    assert env["REFERENCE_URI"] == "s3://ref"
    assert '"datasetDrift":true' in env["DRIFT_REPORT"]
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert s.active_job is not None
    assert s.active_job.name == job["metadata"]["name"]
    assert [h.event for h in s.history] == ["DriftDetected", "DriftDetected", "RetrainTriggered", "DriftDetected"]


def test_clean_check_resets_and_marks_healthy():
    s = checked(DriftMonitorStatus(consecutive_drifted=1), False, NOW)
    d = evaluate_check(MON, spec(), s, OBS, "", NOW)
    assert d.status.consecutive_drifted == 0
    assert d.status.phase == "Healthy"
    assert d.job is None
    assert [e.reason for e in d.events] == []


@pytest.mark.parametrize(
    ("action", "reasons"), [("alert", ["DriftDetected", "DriftAlert"]), ("none", ["DriftDetected"])]
)
def test_alert_and_none_actions(action, reasons):
    d = evaluate_check(MON, spec(action=action, consecutive=1), checked(DriftMonitorStatus(), True, NOW), OBS, "", NOW)
    assert [e.reason for e in d.events] == reasons
    assert d.job is None
    assert d.status.phase == "Drifted"


def test_retrain_without_template_says_so():
    d = evaluate_check(MON, spec(consecutive=1, template=None), checked(DriftMonitorStatus(), True, NOW), OBS, "", NOW)
    assert d.job is None
    assert "RetrainNotPossible" in [e.reason for e in d.events]


def test_never_two_retrain_jobs_at_once():
    s = checked(
        DriftMonitorStatus(
            active_job=ActiveJob(name="j1", created_at=NOW - timedelta(hours=5)),
            last_action_time=NOW - timedelta(hours=5),
            consecutive_drifted=3,
        ),
        True,
        NOW,
    )
    d = evaluate_check(MON, spec(consecutive=1), s, MonitorObservations("active", "churn", "1"), "", NOW)
    assert d.job is None
    assert d.status.active_job is not None
    assert d.status.active_job.name == "j1"


@pytest.mark.parametrize(
    ("job", "state"),
    [
        (None, "absent"),
        ({"status": {}}, "active"),
        ({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}, "succeeded"),
        ({"status": {"conditions": [{"type": "Failed", "status": "True"}]}}, "failed"),
        ({"status": {"conditions": [{"type": "Failed", "status": "False"}]}}, "active"),
    ],
)
def test_job_state(job, state):
    assert job_state_of(job) == state


def test_finished_job_is_cleared_with_history():
    s = DriftMonitorStatus(active_job=ActiveJob(name="j1", created_at=NOW))
    d = track_job(s, MonitorObservations("succeeded"), NOW)
    assert d.status.active_job is None
    assert d.status.history[-1].event == "RetrainSucceeded"
    assert d.events[0].type == "Normal"
    assert not track_job(s, MonitorObservations("active"), NOW).changed
