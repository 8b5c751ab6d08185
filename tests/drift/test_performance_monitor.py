"""Performance in the DriftMonitor loop (pure parts): the same debounce, cooldown and action as drift,
the signal recorded in history, Inconclusive holding the run, the retraining Job's report, metrics."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

from modelops.api.driftmonitor import CheckResult, DriftMonitorSpec, DriftMonitorStatus
from modelops.api.performance import PerformanceMetricResult, PerformanceResult
from modelops.core.conditions import get_condition
from modelops.core.drift_cronjob import MonitorRef, trigger_signal
from modelops.core.drift_monitor import MonitorObservations, evaluate_check
from modelops.handlers.driftmonitor import registered_metrics
from modelops.telemetry import LABEL_COVERAGE, MODEL_PERFORMANCE, forget_drift_metrics, set_drift_metrics

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
MON = MonitorRef("churn-perf", "default", "uid-1")
TEMPLATE = {"spec": {"template": {"spec": {"containers": [{"name": "train", "image": "trainer:1"}]}}}}
OBS = MonitorObservations(model_name="churn", model_version="1", parent="churn-v1", versions=("1",))


def spec(consecutive: int = 2, action: str = "retrain") -> DriftMonitorSpec:
    return DriftMonitorSpec.model_validate(
        {
            "target": {"modelVersion": "churn-v1"},
            "schedule": "@hourly",
            "policy": {"action": action, "consecutiveChecks": consecutive, "cooldown": "6h"},
            "jobTemplate": TEMPLATE,
            "performance": {"labels": {"uri": "s3://labels/"}, "task": "binary"},
        }
    )


def perf(verdict: str, accuracy: float | None = 0.71) -> PerformanceResult:
    reason = {"Healthy": "WithinThresholds", "Degraded": "PerformanceDegraded", "Inconclusive": "InsufficientLabels"}
    return PerformanceResult(
        verdict=verdict,  # type: ignore[arg-type]
        reason=reason[verdict],
        message=f"accuracy {accuracy} ({verdict})",
        task="binary",
        predictions=1000,
        labelled=800 if verdict != "Inconclusive" else 50,
        coverage=0.8 if verdict != "Inconclusive" else 0.05,
        min_coverage=0.5,
        metrics=[PerformanceMetricResult(name="accuracy", value=accuracy, min=0.8, passed=verdict == "Healthy")],
    )


def checked(status: DriftMonitorStatus, at: datetime, verdict: str, drift: bool = False) -> DriftMonitorStatus:
    result = CheckResult(
        time=at, dataset_drift=drift, drift_share=1.0 if drift else 0.0, drifted_features=int(drift), total_features=1,
        performance=perf(verdict),
    )  # fmt: skip
    return status.model_copy(update={"last_result": result, "last_check_time": at})


def run(verdicts: list[str], drift: list[bool] | None = None, consecutive: int = 2):
    status, jobs, decisions = DriftMonitorStatus(), [], []
    for i, verdict in enumerate(verdicts):
        at = NOW + timedelta(minutes=10 * i)
        d = evaluate_check(MON, spec(consecutive), checked(status, at, verdict, (drift or [])[i:i + 1] == [True]),
                           OBS, "s3://ref", at)  # fmt: skip
        status = d.status
        decisions.append(d)
        if d.job:
            jobs.append(d.job)
    return status, jobs, decisions


def env_of(job):
    return {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_degraded_performance_debounces_then_retrains_once_with_the_report():
    status, jobs, decisions = run(["Degraded", "Degraded", "Degraded"])
    assert len(jobs) == 1  # the second bad check fires; the third is inside the cooldown
    env = env_of(jobs[0])
    assert env["MODELOPS_RETRAIN_TRIGGER"] == "performance"
    report = json.loads(env["PERFORMANCE_REPORT"])
    assert (report["verdict"], report["metrics"][0]["name"]) == ("Degraded", "accuracy")
    assert json.loads(env["DRIFT_REPORT"])["performance"]["verdict"] == "Degraded"
    assert json.loads(env["PERFORMANCE_SPEC"])["labels"] == {"uri": "s3://labels/", "format": "auto",
                                                             "idColumn": "request_id", "labelColumn": "label"}  # fmt: skip
    first = get_condition(decisions[0].status.conditions, "PerformanceDegraded")
    assert first is not None
    assert (first.status, first.reason) == ("True", "Debouncing")
    assert status.phase == "Degraded"
    assert [h.event for h in status.history] == [
        "PerformanceDegraded",
        "PerformanceDegraded",
        "RetrainTriggered",
        "PerformanceDegraded",
    ]
    assert status.history[1].message.endswith("action: retrain")
    assert "trigger: performance" in status.history[2].message
    drift = get_condition(status.conditions, "DriftDetected")
    assert drift is not None
    assert (drift.status, drift.reason) == ("False", "NoDrift")
    reasons = [e.reason for d in decisions for e in d.events]
    assert reasons.count("PerformanceDegraded") == 3
    assert "DriftDetected" not in reasons


def test_both_signals_are_recorded_as_both():
    status, jobs, _ = run(["Degraded", "Degraded"], drift=[True, True])
    assert env_of(jobs[0])["MODELOPS_RETRAIN_TRIGGER"] == "both"
    assert [h.event for h in status.history][:2] == ["DriftAndPerformanceDegraded", "DriftAndPerformanceDegraded"]
    assert status.phase == "Degraded"  # degraded performance outranks drift


def test_healthy_performance_never_acts_and_resets_the_run():
    status, jobs, _ = run(["Degraded", "Healthy", "Degraded", "Healthy"])
    assert jobs == []
    assert (status.phase, status.consecutive_drifted) == ("Healthy", 0)
    cond = get_condition(status.conditions, "PerformanceDegraded")
    assert cond is not None
    assert (cond.status, cond.reason) == ("False", "WithinThresholds")


def test_inconclusive_holds_the_run_and_is_never_healthy():
    _status, jobs, decisions = run(["Degraded", "Inconclusive", "Degraded"])
    assert decisions[1].status.consecutive_drifted == 1  # held, not reset
    assert decisions[1].status.phase == "Inconclusive"
    cond = get_condition(decisions[1].status.conditions, "PerformanceDegraded")
    assert cond is not None
    assert (cond.status, cond.reason) == ("Unknown", "InsufficientLabels")
    assert len(jobs) == 1  # Degraded, (held), Degraded: two bad checks in a row


def test_alert_action_is_a_performance_alert():
    status = DriftMonitorStatus()
    d = evaluate_check(MON, spec(1, "alert"), checked(status, NOW, "Degraded"), OBS, "", NOW)
    assert [e.reason for e in d.events] == ["PerformanceDegraded", "PerformanceAlert"]


def test_trigger_signal():
    base = dict(time=NOW, drift_share=0.0, drifted_features=0, total_features=1)
    assert trigger_signal(CheckResult(dataset_drift=False, **base)) == ""
    assert trigger_signal(CheckResult(dataset_drift=True, **base)) == "data-drift"
    assert trigger_signal(CheckResult(dataset_drift=False, performance=perf("Inconclusive"), **base)) == ""


def test_registered_metrics_come_from_the_model_version():
    mv = {"spec": {"metrics": {"auc": 0.91, "accuracy": 0.86, "note": "x", "flag": True}}}
    assert registered_metrics(mv) == {"auc": 0.91, "accuracy": 0.86}
    assert registered_metrics({"spec": {}}) is None
    assert registered_metrics(None) is None


def test_metrics_export_performance_and_coverage():
    status = checked(DriftMonitorStatus(), NOW, "Degraded")
    result = status.last_result
    assert result is not None
    assert result.performance is not None
    undefined = result.performance.model_copy(
        update={"metrics": [*result.performance.metrics, PerformanceMetricResult(name="auc", note="one class")]}
    )
    status = status.model_copy(update={"last_result": result.model_copy(update={"performance": undefined})})
    set_drift_metrics("ns1", "perf-mon", status)

    def sample(gauge, **labels):
        return next(
            s.value for m in gauge.collect() for s in m.samples if all(s.labels.get(k) == v for k, v in labels.items())
        )

    assert sample(MODEL_PERFORMANCE, namespace="ns1", monitor="perf-mon", metric="accuracy") == 0.71
    assert math.isnan(sample(MODEL_PERFORMANCE, namespace="ns1", monitor="perf-mon", metric="auc"))
    assert sample(LABEL_COVERAGE, namespace="ns1", monitor="perf-mon") == 0.8
    forget_drift_metrics("ns1", "perf-mon")
    assert not [s for m in LABEL_COVERAGE.collect() for s in m.samples if s.labels.get("monitor") == "perf-mon"]


def test_the_performance_api_uses_the_crds_duration_pattern():
    from modelops.api import modeldeployment, performance

    assert performance.DURATION_PATTERN == modeldeployment.DURATION_PATTERN
