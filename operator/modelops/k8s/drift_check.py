"""`modelops drift check --monitor NS/NAME`: what the DriftMonitor's CronJob runs.

Reads the monitor (through its status subresource: the job's Role allows nothing else), loads
the reference and the current window, computes, and writes ``status.lastResult`` with an
Event. Bad data is a status condition and a Warning Event, never a silent "no drift", and not a
failed Job: the exit code is non-zero only when the infrastructure fails (API, permissions).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from kubernetes import client

from modelops.api.driftmonitor import CheckResult, DriftMonitorSpec, DriftMonitorStatus, MonitorPhase
from modelops.api.performance import PerformanceResult
from modelops.core.conditions import set_condition
from modelops.core.drift_monitor import result_phase
from modelops.drift.durations import parse_duration
from modelops.drift.engine import run_check
from modelops.drift.errors import DriftDataError
from modelops.drift.predlog import LogFilter, read_prediction_log
from modelops.drift.readers import load_frame, load_reference
from modelops.k8s.events import redact
from modelops.k8s.resources import DRIFT_MONITOR, Conflict, CustomObjects

log = logging.getLogger(__name__)
CHECK_CONDITION = "CheckSucceeded"


def compute(spec: DriftMonitorSpec, status: DriftMonitorStatus, now: dt.datetime) -> CheckResult:
    """Load both sides and run the engine; raises DriftDataError for data it cannot judge."""
    reference_uri = spec.reference.profile or spec.reference.uri or status.resolved_reference
    if not reference_uri:
        raise DriftDataError(
            "InvalidConfig",
            "no reference: set spec.reference.profile or .uri, or a referenceProfile on the ModelVersion",
        )
    reference = load_reference(reference_uri, spec.reference.format, spec.column_mapping)
    if not spec.current.uri:
        raise DriftDataError("InvalidConfig", "spec.current.uri is required (the data or prediction-log location)")
    if spec.current.source == "predictionLog":
        window = parse_duration(spec.current.window)
        current, stats = read_prediction_log(
            spec.current.uri, LogFilter(start=now - window, end=now), spec.current.format
        )
        log.info(
            "prediction log: %d files, %d rows in window, %d malformed",
            stats.files,
            stats.rows_matched,
            stats.malformed,
        )
    else:
        current = load_frame(spec.current.uri, spec.current.format, spec.column_mapping)
    result = run_check(reference, current, spec.drift, spec.column_mapping, now, min_rows=spec.current.min_rows)
    if spec.performance is not None:
        result = result.model_copy(update={"performance": compute_performance(spec, status, now)})
    return result


def compute_performance(spec: DriftMonitorSpec, status: DriftMonitorStatus, now: dt.datetime) -> PerformanceResult:
    """Delayed labels joined to the prediction log (spec.current.uri) over the performance window."""
    from modelops.drift.performance import check_performance, check_window

    settings = spec.performance
    assert settings is not None
    if not spec.current.uri:
        raise DriftDataError("InvalidConfig", "spec.current.uri is required (the prediction log the labels join)")
    try:
        start, end = check_window(settings, now)
        return check_performance(
            settings,
            spec.current.uri,
            spec.current.format,
            now=now,
            start=start,
            end=end,
            registered=status.registered_metrics,
        )
    except DriftDataError as exc:
        raise DriftDataError(exc.reason, f"performance: {exc.message}") from exc


def _event(
    core: client.CoreV1Api, obj: dict[str, Any], type_: str, reason: str, message: str, now: dt.datetime
) -> None:
    meta = obj["metadata"]
    stamp = now.isoformat().replace("+00:00", "Z")
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion", "modelops.dev/v1alpha1"),
            "kind": "DriftMonitor",
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": type_,
        "reason": reason,
        "message": redact(message)[:1024],
        "source": {"component": "modelops-drift-check"},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
    try:
        core.create_namespaced_event(meta["namespace"], body)  # type: ignore[arg-type]
    except Exception as exc:  # an Event is best effort; the status already says it all
        log.warning("could not record Event %s: %s", reason, exc)


def run_monitor_check(api: CustomObjects, namespace: str, name: str, now: dt.datetime | None = None) -> int:
    """One scheduled check; returns the process exit code."""
    now = now or dt.datetime.now(dt.UTC)
    obj = api.get_status(DRIFT_MONITOR, namespace, name)
    spec = DriftMonitorSpec.model_validate(obj.get("spec") or {})
    status = DriftMonitorStatus.model_validate(obj.get("status") or {})
    generation = int(obj["metadata"].get("generation", 1))
    try:
        result: CheckResult | None = compute(spec, status, now)
        error: DriftDataError | None = None
    except DriftDataError as exc:
        result, error = None, exc
    core = client.CoreV1Api(api.api)
    for _attempt in range(5):
        if result is not None:
            drifted = [f.name for f in result.features if f.drifted]
            message = (
                f"{result.drifted_features}/{result.total_features} features drifted (share {result.drift_share:.2f}, "
                f"dataset drift: {'yes' if result.dataset_drift else 'no'})"
                + (
                    f"; performance {result.performance.verdict}: {result.performance.message}"
                    if result.performance is not None
                    else ""
                )
                + (f": {', '.join(drifted[:10])}" if drifted else "")
            )
            update: dict[str, Any] = {
                "last_result": result,
                "last_check_time": now,
                "conditions": set_condition(
                    status.conditions, CHECK_CONDITION, "True", "Checked", message, now, generation
                ),
            }
            if status.phase in (MonitorPhase.PENDING, MonitorPhase.ERROR):
                update["phase"] = result_phase(result)
        else:
            assert error is not None
            message = f"{error.reason}: {error.message}"
            update = {
                "phase": MonitorPhase.ERROR,
                "conditions": set_condition(
                    status.conditions, CHECK_CONDITION, "False", error.reason, message, now, generation
                ),
            }
        new = status.model_copy(update=update)
        try:
            written = api.patch_status(
                DRIFT_MONITOR, namespace, name, new.to_wire(), str(obj["metadata"].get("resourceVersion") or "") or None
            )
            break
        except Conflict:
            obj = api.get_status(DRIFT_MONITOR, namespace, name)
            status = DriftMonitorStatus.model_validate(obj.get("status") or {})
    else:
        raise Conflict(f"DriftMonitor {namespace}/{name}: status kept changing; gave up after 5 attempts")
    if result is None:
        _event(core, written, "Warning", "DriftCheckFailed", message, now)
        log.warning("drift check of %s/%s could not judge the data: %s", namespace, name, message)
    elif result.dataset_drift:
        _event(core, written, "Warning", "DriftDetected", message, now)
    elif result.performance is not None and result.performance.verdict == "Degraded":
        _event(core, written, "Warning", "PerformanceDegraded", message, now)
    else:
        _event(core, written, "Normal", "DriftChecked", message, now)
    print(message)
    return 0
