"""The DriftMonitor's reconcile decisions, pure: act on a new check result, track the retraining Job.

The check itself runs in the CronJob's pod and only writes ``status.lastResult``; the operator
sees the new result and decides here, with the debounce/cooldown machine of
:mod:`modelops.core.drift_policy`. ``status.evaluatedCheckTime`` makes each check count once,
even when the operator restarts between reading a result and writing its verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from modelops.api.base import HistoryEntry
from modelops.api.driftmonitor import ActiveJob, DriftMonitorSpec, DriftMonitorStatus, MonitorPhase
from modelops.core.conditions import set_condition
from modelops.core.drift_cronjob import MonitorRef, build_retrain_job
from modelops.core.drift_policy import PolicyState
from modelops.core.drift_policy import decide as policy_decide
from modelops.core.history import append_history
from modelops.core.registry import EventSpec

DRIFT_DETECTED = "DriftDetected"
RETRAINING = "Retraining"

JobState = Literal["absent", "active", "succeeded", "failed"]


@dataclass(frozen=True)
class MonitorObservations:
    """What the operator looked up: the retraining Job's state and the model being monitored."""

    job_state: JobState = "absent"
    model_name: str | None = None
    model_version: str | None = None


@dataclass(frozen=True)
class MonitorDecision:
    status: DriftMonitorStatus
    events: tuple[EventSpec, ...] = ()
    job: dict[str, Any] | None = None
    changed: bool = True


def job_state_of(job: Mapping[str, Any] | None) -> JobState:
    """A batch/v1 Job's lifecycle from its conditions (Complete / Failed), as the Job controller sets them."""
    if job is None:
        return "absent"
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "succeeded"
        if cond.get("status") == "True" and cond.get("type") in ("Failed", "FailureTarget"):
            return "failed"
    return "active"


def _entry(now: datetime, event: str, reason: str, message: str) -> HistoryEntry:
    return HistoryEntry(time=now, event=event, reason=reason, message=message)


def track_job(status: DriftMonitorStatus, obs: MonitorObservations, now: datetime) -> MonitorDecision:
    """Clear ``activeJob`` once the retraining Job has finished (or vanished), and say how it ended."""
    job = status.active_job
    if job is None or obs.job_state == "active":
        return MonitorDecision(status, changed=False)
    outcome = {"succeeded": "RetrainSucceeded", "failed": "RetrainFailed", "absent": "RetrainJobGone"}[obs.job_state]
    msg = f"retraining Job {job.name} {obs.job_state}"
    new = status.model_copy(
        update={
            "active_job": None,
            "history": append_history(status.history, _entry(now, outcome, outcome, msg)),
            "conditions": set_condition(
                status.conditions, RETRAINING, "False", outcome, msg, now, status.observed_generation
            ),
        }
    )
    ev = EventSpec("Normal" if obs.job_state == "succeeded" else "Warning", outcome, msg)
    return MonitorDecision(new, (ev,))


def _drift_summary(status: DriftMonitorStatus) -> str:
    result = status.last_result
    if result is None:
        return ""
    drifted = [f.name for f in result.features if f.drifted]
    shown = ", ".join(drifted[:8]) + (f" and {len(drifted) - 8} more" if len(drifted) > 8 else "")
    return (
        f"{result.drifted_features}/{result.total_features} features drifted "
        f"(share {result.drift_share:.2f}){': ' + shown if shown else ''}"
    )


def evaluate_check(
    monitor: MonitorRef,
    spec: DriftMonitorSpec,
    status: DriftMonitorStatus,
    obs: MonitorObservations,
    reference_uri: str,
    now: datetime,
) -> MonitorDecision:
    """Act on ``status.lastResult`` once: debounce, cooldown, then alert or a retraining Job."""
    result = status.last_result
    if result is None or status.last_check_time is None:
        return MonitorDecision(status, changed=False)
    if status.evaluated_check_time is not None and status.last_check_time <= status.evaluated_check_time:
        return MonitorDecision(status, changed=False)
    verdict = policy_decide(
        spec.policy,
        PolicyState(status.consecutive_drifted, status.last_action_time),
        result.dataset_drift,
        now,
        job_active=status.active_job is not None and obs.job_state == "active",
    )
    summary = _drift_summary(status)
    gen = status.observed_generation
    conds = set_condition(
        status.conditions,
        DRIFT_DETECTED,
        "True" if result.dataset_drift else "False",
        verdict.reason,
        f"{summary}; {verdict.message}" if result.dataset_drift else summary or verdict.message,
        now,
        gen,
    )
    events: list[EventSpec] = []
    history = status.history
    job: dict[str, Any] | None = None
    active = status.active_job
    if result.dataset_drift:
        events.append(EventSpec("Warning", "DriftDetected", f"{summary}; {verdict.message}"))
        history = append_history(
            history, _entry(now, "DriftDetected", verdict.reason, f"{summary}; action: {verdict.action}")
        )
    if verdict.action == "alert":
        events.append(EventSpec("Warning", "DriftAlert", verdict.message))
    elif verdict.action == "retrain":
        if spec.job_template is None or obs.model_name is None:
            missing = "spec.jobTemplate" if spec.job_template is None else "the target's ModelVersion"
            msg = f"retraining needed but {missing} is missing"
            events.append(EventSpec("Warning", "RetrainNotPossible", msg))
            conds = set_condition(conds, RETRAINING, "False", "RetrainNotPossible", msg, now, gen)
        else:
            try:
                job = build_retrain_job(
                    monitor,
                    spec.job_template,
                    model_name=obs.model_name,
                    model_version=obs.model_version or "",
                    result=result,
                    reference_uri=reference_uri,
                    now=status.last_check_time,
                )
            except ValueError as exc:
                events.append(EventSpec("Warning", "RetrainNotPossible", f"spec.jobTemplate: {exc}"))
                conds = set_condition(conds, RETRAINING, "False", "InvalidJobTemplate", str(exc), now, gen)
            else:
                name = job["metadata"]["name"]
                active = ActiveJob(name=name, created_at=now)
                msg = f"retraining Job {name} created for {obs.model_name} {obs.model_version or ''}".rstrip()
                events.append(EventSpec("Normal", "RetrainTriggered", msg))
                history = append_history(history, _entry(now, "RetrainTriggered", verdict.reason, msg))
                conds = set_condition(conds, RETRAINING, "True", "RetrainTriggered", msg, now, gen)
    new = status.model_copy(
        update={
            "phase": MonitorPhase.DRIFTED if result.dataset_drift else MonitorPhase.HEALTHY,
            "consecutive_drifted": verdict.state.consecutive_drifted,
            "last_action_time": verdict.state.last_action_time,
            "evaluated_check_time": status.last_check_time,
            "active_job": active,
            "conditions": conds,
            "history": history,
        }
    )
    return MonitorDecision(new, tuple(events), job)
