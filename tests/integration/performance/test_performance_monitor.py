"""Performance monitoring end to end, all real processes: the DriftMonitor's CronJob runs the check as a
pod every (1-second) cron minute; labels showing degraded accuracy trigger the retraining Job once
(debounced by two checks, then held by the cooldown), labels showing good accuracy never do."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from modelops.k8s.resources import DRIFT_MONITOR
from modelops.telemetry import LABEL_COVERAGE, MODEL_PERFORMANCE
from tests.integration.drift.conftest import wait
from tests.integration.performance.conftest import NS, labels_csv, monitor, prediction_log, reference_csv

BATCH = f"/apis/batch/v1/namespaces/{NS}"


def status(custom_objects: Any, name: str) -> dict[str, Any]:
    return dict(custom_objects.get(DRIFT_MONITOR, NS, name).get("status") or {})


def pod_logs(state: Path) -> str:
    logs = sorted((state / "pods").glob("*/*/*.log"))
    return "\n".join(f"--- {p.parent.name}/{p.name}:\n" + "\n".join(p.read_text().splitlines()[-15:]) for p in logs)


def within(state: Path, fn: Any, what: str, timeout: float = 180) -> Any:
    """``wait`` with the pods' output on failure (each check is a process importing SciPy: seconds on a
    loaded machine, so the timeout bounds liveness only)."""
    try:
        return wait(fn, what, timeout=timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{pod_logs(state)}") from None


def retrain_jobs(k8s_api_client: Any, name: str) -> list[Any]:
    from kubernetes import client

    jobs = client.BatchV1Api(k8s_api_client).list_namespaced_job(
        NS, label_selector=f"modelops.dev/drift-monitor={name},app.kubernetes.io/component=retrain"
    )
    return list(jobs.items)


@pytest.mark.usefixtures("operator", "model_version", "runner")
def test_degraded_labels_retrain_once_good_labels_never(custom_objects, k8s_api_client, tmp_path):
    log, pred = prediction_log(tmp_path / "log", datetime.now(UTC))
    reference = reference_csv(tmp_path / "reference.csv")
    bad = labels_csv(tmp_path / "bad-labels.csv", pred, wrong_share=0.4, seed=1)  # accuracy ~0.6
    good = labels_csv(tmp_path / "good-labels.csv", pred, wrong_share=0.03, seed=2)  # accuracy ~0.97
    custom_objects.create(DRIFT_MONITOR, NS, monitor("churn-bad", log, reference, bad))
    custom_objects.create(DRIFT_MONITOR, NS, monitor("churn-good", log, reference, good))
    state = tmp_path / "state"

    def bad_checks(name: str) -> list[dict[str, Any]]:
        return [h for h in status(custom_objects, name).get("history") or [] if h["event"] == "PerformanceDegraded"]

    def good_checks_acted_on() -> bool:
        """Two checks of the good monitor written (Events) and the last one acted on."""
        from kubernetes import client

        events = client.CoreV1Api(k8s_api_client).list_namespaced_event(
            NS, field_selector="involvedObject.name=churn-good"
        )
        st = status(custom_objects, "churn-good")
        written = sum(e.reason == "DriftChecked" for e in events.items)
        return written >= 2 and st.get("evaluatedCheckTime") == st.get("lastCheckTime")

    # Two good checks could have fired (consecutiveChecks: 2); then the good monitor is suspended so
    # the degraded one's checks have the machine to themselves.
    within(state, good_checks_acted_on, "two good checks acted on")
    custom_objects.patch(DRIFT_MONITOR, NS, "churn-good", {"spec": {"suspend": True}})

    # Three degraded checks: the first debounces, the second retrains, the third is in the cooldown.
    within(state, lambda: len(bad_checks("churn-bad")) >= 3, "three degraded checks acted on")
    st = status(custom_objects, "churn-bad")
    assert [h["reason"] for h in bad_checks("churn-bad")][:3] == ["Debouncing", "RetrainTriggered", "CoolingDown"]
    assert [h["event"] for h in st["history"]].count("RetrainTriggered") == 1
    jobs = retrain_jobs(k8s_api_client, "churn-bad")
    assert len(jobs) == 1
    env = {e.name: e.value for e in jobs[0].spec.template.spec.containers[0].env}
    assert env["MODELOPS_RETRAIN_TRIGGER"] == "performance"
    assert '"verdict":"Degraded"' in env["PERFORMANCE_REPORT"]
    perf = st["lastResult"]["performance"]
    accuracy = next(m for m in perf["metrics"] if m["name"] == "accuracy")
    assert accuracy["registered"] == 0.95  # the ModelVersion's spec.metrics, resolved by the operator
    assert accuracy["min"] == pytest.approx(0.855)
    assert accuracy["value"] < 0.7
    assert accuracy["passed"] is False
    assert perf["labelled"] == 540
    assert perf["predictions"] == 600
    assert st["lastResult"]["datasetDrift"] is False
    assert st["phase"] == "Degraded"
    cond = next(c for c in st["conditions"] if c["type"] == "PerformanceDegraded")
    assert cond["status"] == "True"

    # The good monitor never acted.
    good_status = status(custom_objects, "churn-good")
    assert good_status["phase"] == "Healthy"
    assert good_status["lastResult"]["performance"]["verdict"] == "Healthy"
    assert good_status.get("history", []) == []
    assert retrain_jobs(k8s_api_client, "churn-good") == []
    cond = next(c for c in good_status["conditions"] if c["type"] == "PerformanceDegraded")
    assert (cond["status"], cond["reason"]) == ("False", "WithinThresholds")

    # The operator's metrics.
    coverage = {s.labels["monitor"]: s.value for m in LABEL_COVERAGE.collect() for s in m.samples}
    assert coverage.get("churn-bad") == pytest.approx(0.9)
    accuracy_series = {
        s.labels["monitor"]: s.value
        for m in MODEL_PERFORMANCE.collect()
        for s in m.samples
        if s.labels["metric"] == "accuracy"
    }
    assert accuracy_series["churn-good"] > 0.9 > 0.7 > accuracy_series["churn-bad"]
