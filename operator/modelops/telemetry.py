"""The operator's own Prometheus metrics (the model server has its own, in modelops.server)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from modelops.api.driftmonitor import DriftMonitorStatus, MonitorPhase

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILE_TOTAL = Counter(
    "modelops_reconcile_total",
    "Reconciliations by kind and result (success, retry, invalid, error).",
    ["kind", "result"],
    registry=REGISTRY,
)
RECONCILE_DURATION = Histogram(
    "modelops_reconcile_duration_seconds",
    "Time spent in one reconciliation, by kind and result.",
    ["kind", "result"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
MODEL_VERSION_INFO = Gauge(
    "modelops_model_version_info",
    "One series per ModelVersion with its effective stage and phase; value is always 1.",
    ["namespace", "name", "model", "version", "stage", "phase"],
    registry=REGISTRY,
)

LEADER = Gauge(
    "modelops_leader",
    "1 while this operator process runs the handlers (it holds the leader Lease, or runs without "
    "--leader-elect), 0 while it stands by.",
    ["identity"],
    registry=REGISTRY,
)

_info_labels: dict[tuple[str, str], tuple[str, ...]] = {}


class ReconcileOutcome:
    """Set ``result`` inside the block; exceptions count as ``error`` unless already set."""

    def __init__(self) -> None:
        self.result = "success"


@contextmanager
def observe_reconcile(kind: str) -> Iterator[ReconcileOutcome]:
    outcome = ReconcileOutcome()
    start = time.perf_counter()
    try:
        yield outcome
    except BaseException:
        if outcome.result == "success":
            outcome.result = "error"
        raise
    finally:
        RECONCILE_TOTAL.labels(kind, outcome.result).inc()
        RECONCILE_DURATION.labels(kind, outcome.result).observe(time.perf_counter() - start)


def set_model_version_info(namespace: str, name: str, model: str, version: str, stage: str, phase: str) -> None:
    """Replace the series of one ModelVersion, so a stage change leaves no stale series behind."""
    labels = (namespace, name, model, version, stage, phase)
    old = _info_labels.get((namespace, name))
    if old is not None and old != labels:
        MODEL_VERSION_INFO.remove(*old)
    MODEL_VERSION_INFO.labels(*labels).set(1)
    _info_labels[(namespace, name)] = labels


def forget_model_version(namespace: str, name: str) -> None:
    old = _info_labels.pop((namespace, name), None)
    if old is not None:
        MODEL_VERSION_INFO.remove(*old)


DRIFT_SCORE = Gauge(
    "modelops_drift_score",
    "Drift statistic of the last check per monitor, feature and test (distance or test statistic).",
    ["namespace", "monitor", "feature", "test"],
    registry=REGISTRY,
)
DRIFT_P_VALUE = Gauge(
    "modelops_drift_p_value",
    "p-value of the last check, for tests that define one (KS, chi-squared).",
    ["namespace", "monitor", "feature", "test"],
    registry=REGISTRY,
)
DRIFT_FEATURE_DRIFTED = Gauge(
    "modelops_drift_feature_drifted",
    "1 when the feature drifted in the last check, else 0.",
    ["namespace", "monitor", "feature"],
    registry=REGISTRY,
)
DRIFT_DETECTED = Gauge(
    "modelops_drift_detected",
    "1 when the last check found dataset drift, else 0.",
    ["namespace", "monitor"],
    registry=REGISTRY,
)
DRIFT_SHARE = Gauge(
    "modelops_drift_share", "Share of drifted features in the last check.", ["namespace", "monitor"], registry=REGISTRY
)
DRIFT_LAST_CHECK = Gauge(
    "modelops_drift_last_check_timestamp_seconds",
    "Unix time of the last completed drift check.",
    ["namespace", "monitor"],
    registry=REGISTRY,
)

DRIFT_MONITOR_PHASE = Gauge(
    "modelops_drift_monitor_phase",
    "1 for the current phase of a DriftMonitor (status.phase), 0 for the others.",
    ["namespace", "monitor", "phase"],
    registry=REGISTRY,
)

MODEL_PERFORMANCE = Gauge(
    "modelops_model_performance",
    "Model performance of the last check from delayed labels, per monitor and metric (accuracy, auc, "
    "rmse...); NaN when the metric is undefined on that data.",
    ["namespace", "monitor", "metric"],
    registry=REGISTRY,
)
LABEL_COVERAGE = Gauge(
    "modelops_label_coverage",
    "Share of the predictions in the last performance window that have a usable label.",
    ["namespace", "monitor"],
    registry=REGISTRY,
)

_drift_series: dict[tuple[str, str], list[tuple[Gauge, tuple[str, ...]]]] = {}


def set_drift_metrics(namespace: str, monitor: str, status: DriftMonitorStatus) -> None:
    """Export a DriftMonitorStatus; series of features no longer checked are removed."""
    forget_drift_metrics(namespace, monitor)
    result = status.last_result
    series: list[tuple[Gauge, tuple[str, ...]]] = []
    if result is not None:
        for f in result.features:
            key = (namespace, monitor, f.name, f.test)
            if f.statistic is not None:
                DRIFT_SCORE.labels(*key).set(f.statistic)
                series.append((DRIFT_SCORE, key))
            if f.p_value is not None:
                DRIFT_P_VALUE.labels(*key).set(f.p_value)
                series.append((DRIFT_P_VALUE, key))
            DRIFT_FEATURE_DRIFTED.labels(namespace, monitor, f.name).set(1 if f.drifted else 0)
            series.append((DRIFT_FEATURE_DRIFTED, (namespace, monitor, f.name)))
        DRIFT_DETECTED.labels(namespace, monitor).set(1 if result.dataset_drift else 0)
        DRIFT_SHARE.labels(namespace, monitor).set(result.drift_share)
        series += [(DRIFT_DETECTED, (namespace, monitor)), (DRIFT_SHARE, (namespace, monitor))]
        if result.performance is not None:
            for m in result.performance.metrics:
                MODEL_PERFORMANCE.labels(namespace, monitor, m.name).set(math.nan if m.value is None else m.value)
                series.append((MODEL_PERFORMANCE, (namespace, monitor, m.name)))
            LABEL_COVERAGE.labels(namespace, monitor).set(result.performance.coverage)
            series.append((LABEL_COVERAGE, (namespace, monitor)))
    if status.last_check_time is not None:
        DRIFT_LAST_CHECK.labels(namespace, monitor).set(status.last_check_time.timestamp())
        series.append((DRIFT_LAST_CHECK, (namespace, monitor)))
    for phase in MonitorPhase:
        DRIFT_MONITOR_PHASE.labels(namespace, monitor, phase.value).set(1 if phase == status.phase else 0)
        series.append((DRIFT_MONITOR_PHASE, (namespace, monitor, phase.value)))
    _drift_series[(namespace, monitor)] = series


def forget_drift_metrics(namespace: str, monitor: str) -> None:
    for gauge, labels in _drift_series.pop((namespace, monitor), []):
        with suppress(KeyError):
            gauge.remove(*labels)


ANALYSIS_MEASUREMENT = Gauge(
    "modelops_analysis_measurement",
    "Last value a canary analysis measured, per deployment, metric and track (NaN: no value).",
    ["namespace", "deployment", "metric", "track"],
    registry=REGISTRY,
)


_analysis_series: dict[tuple[str, str], set[tuple[str, str, str, str]]] = {}


def record_analysis_measurement(namespace: str, deployment: str, metric: str, track: str, value: float | None) -> None:
    labels = (namespace, deployment, metric, track)
    ANALYSIS_MEASUREMENT.labels(*labels).set(math.nan if value is None else value)
    _analysis_series.setdefault((namespace, deployment), set()).add(labels)


def forget_analysis_measurements(namespace: str, deployment: str) -> None:
    """Drop a deleted deployment's series."""
    for labels in _analysis_series.pop((namespace, deployment), set()):
        with suppress(KeyError):
            ANALYSIS_MEASUREMENT.remove(*labels)


ROLLOUT_PHASE = Gauge(
    "modelops_rollout_phase",
    "1 for the current rollout phase of a ModelDeployment, 0 for the others (one series per phase).",
    ["namespace", "deployment", "phase"],
    registry=REGISTRY,
)
ROLLOUT_CANARY_WEIGHT = Gauge(
    "modelops_rollout_canary_weight",
    "Percent of traffic the canary receives (the weight reached, not the one asked for).",
    ["namespace", "deployment"],
    registry=REGISTRY,
)
ROLLOUT_STEP = Gauge(
    "modelops_rollout_step",
    "Index of the canary step in progress (the number of steps while promoting; -1 without a canary).",
    ["namespace", "deployment"],
    registry=REGISTRY,
)
ROLLOUT_PHASES = ("Pending", "Progressing", "Paused", "Healthy", "Degraded", "RolledBack")


def set_rollout_metrics(namespace: str, deployment: str, phase: str, canary_weight: int, step: int | None) -> None:
    for known in ROLLOUT_PHASES:
        ROLLOUT_PHASE.labels(namespace, deployment, known).set(1 if known == phase else 0)
    ROLLOUT_CANARY_WEIGHT.labels(namespace, deployment).set(canary_weight)
    ROLLOUT_STEP.labels(namespace, deployment).set(-1 if step is None else step)


def forget_rollout_metrics(namespace: str, deployment: str) -> None:
    for known in ROLLOUT_PHASES:
        with suppress(KeyError):
            ROLLOUT_PHASE.remove(namespace, deployment, known)
    for gauge in (ROLLOUT_CANARY_WEIGHT, ROLLOUT_STEP):
        with suppress(KeyError):
            gauge.remove(namespace, deployment)
