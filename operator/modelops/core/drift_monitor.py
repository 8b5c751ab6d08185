"""The DriftMonitor's reconcile decisions, pure: act on a new check result, track the retraining Job.

The check itself runs in the CronJob's pod and only writes ``status.lastResult``; the operator
sees the new result and decides here, with the debounce/cooldown machine of
:mod:`modelops.core.drift_policy`. ``status.evaluatedCheckTime`` makes each check count once,
even when the operator restarts between reading a result and writing its verdict.

The history links the loop's steps: ``DriftDetected`` and ``RetrainTriggered`` carry the check's
time, ``RetrainTriggered`` the Job (and from/to: the parent version and the version the Job was
told to register), ``RetrainedVersionRegistered`` the ModelVersion the Job registered (seen by its
``modelops.dev/retrain-job`` label), and ``RetrainSucceeded``/``RetrainFailed`` how the Job ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from modelops.api.driftmonitor import (
    ActiveJob,
    CheckResult,
    DriftMonitorSpec,
    DriftMonitorStatus,
    MonitorHistoryEntry,
    MonitorPhase,
    RetrainRecord,
)
from modelops.core.conditions import kstatus_conditions, set_condition
from modelops.core.drift_cronjob import (
    MonitorRef,
    RetrainContext,
    build_retrain_job,
    cronjob_name,
    next_version,
    trigger_signal,
)
from modelops.core.drift_policy import PolicyState
from modelops.core.drift_policy import decide as policy_decide
from modelops.core.history import append_history
from modelops.core.naming import model_version_name
from modelops.core.registry import EventSpec

DRIFT_DETECTED = "DriftDetected"
PERFORMANCE_DEGRADED = "PerformanceDegraded"
RETRAINING = "Retraining"
SIGNAL_WORDS = {
    "data-drift": "dataset drift",
    "performance": "performance degradation",
    "both": "dataset drift and performance degradation",
}
"""How messages name the signal that made a check bad (see ``trigger_signal``)."""
SIGNAL_EVENTS = {
    "data-drift": "DriftDetected",
    "performance": "PerformanceDegraded",
    "both": "DriftAndPerformanceDegraded",
}
"""The history event of a bad check: which signal fired."""

JobState = Literal["absent", "active", "succeeded", "failed"]


@dataclass(frozen=True)
class MonitorObservations:
    """What the operator looked up: the retraining Job's state and the model being monitored.

    ``parent`` is the monitored ModelVersion's object name; ``versions`` the version strings of
    every ModelVersion of the model (for the next version's number); ``registered`` the
    ModelVersions labelled as registered by the active retraining Job, oldest first.
    """

    job_state: JobState = "absent"
    model_name: str | None = None
    model_version: str | None = None
    parent: str | None = None
    versions: tuple[str, ...] = ()
    registered: tuple[str, ...] = ()


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


def _entry(
    now: datetime,
    event: str,
    reason: str,
    message: str,
    *,
    job: str | None = None,
    check_time: datetime | None = None,
    from_value: str | None = None,
    to_value: str | None = None,
) -> MonitorHistoryEntry:
    return MonitorHistoryEntry(
        time=now,
        event=event,
        reason=reason,
        message=message,
        job=job,
        check_time=check_time,
        from_value=from_value,
        to_value=to_value,
    )


REGISTERED = "RetrainedVersionRegistered"
_OUTCOMES: dict[str, tuple[str, Literal["Succeeded", "Failed", "Gone"]]] = {
    "succeeded": ("RetrainSucceeded", "Succeeded"),
    "failed": ("RetrainFailed", "Failed"),
    "absent": ("RetrainJobGone", "Gone"),
}


def track_job(status: DriftMonitorStatus, obs: MonitorObservations, now: datetime) -> MonitorDecision:
    """Follow the retraining Job: record the ModelVersion it registered, and once it has finished
    (or vanished) clear ``activeJob`` into ``lastRetrain`` and say how it ended."""
    job = status.active_job
    if job is None:
        return MonitorDecision(status, changed=False)
    events: list[EventSpec] = []
    history = status.history
    linked = job.registered_version is None and bool(obs.registered)
    if linked:
        version = obs.registered[0]
        job = job.model_copy(update={"registered_version": version})
        msg = f"retraining Job {job.name} registered ModelVersion {version}" + (
            f" (parent {job.parent_version})" if job.parent_version else ""
        )
        events.append(EventSpec("Normal", REGISTERED, msg))
        history = append_history(
            history,
            _entry(
                now,
                REGISTERED,
                REGISTERED,
                msg,
                job=job.name,
                check_time=job.check_time,
                from_value=job.parent_version,
                to_value=version,
            ),
        )
    if obs.job_state == "active":
        if not linked:
            return MonitorDecision(status, changed=False)
        return MonitorDecision(status.model_copy(update={"active_job": job, "history": history}), tuple(events))
    reason, outcome = _OUTCOMES[obs.job_state]
    msg = f"retraining Job {job.name} {obs.job_state}"
    if job.registered_version:
        msg += f"; it registered ModelVersion {job.registered_version}"
    elif obs.job_state == "succeeded":
        msg += "; no ModelVersion labelled as registered by it was seen"
    record = RetrainRecord(
        name=job.name,
        created_at=job.created_at,
        check_time=job.check_time,
        parent_version=job.parent_version,
        next_version=job.next_version,
        registered_version=job.registered_version,
        outcome=outcome,
        finished_at=now,
    )
    new = status.model_copy(
        update={
            "active_job": None,
            "last_retrain": record,
            "history": append_history(
                history, _entry(now, reason, reason, msg, job=job.name, check_time=job.check_time)
            ),
            "conditions": set_condition(
                status.conditions, RETRAINING, "False", reason, msg, now, status.observed_generation
            ),
        }
    )
    events.append(EventSpec("Normal" if obs.job_state == "succeeded" else "Warning", reason, msg))
    return MonitorDecision(new, tuple(events))


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


def result_phase(result: CheckResult) -> MonitorPhase:
    """Degraded performance outranks data drift; a check that could not judge performance (and
    found no drift) is Inconclusive, never Healthy."""
    perf = result.performance
    if perf is not None and perf.verdict == "Degraded":
        return MonitorPhase.DEGRADED
    if result.dataset_drift:
        return MonitorPhase.DRIFTED
    if perf is not None and perf.verdict == "Inconclusive":
        return MonitorPhase.INCONCLUSIVE
    return MonitorPhase.HEALTHY


def retrain_context(spec: DriftMonitorSpec, obs: MonitorObservations, check_time: datetime) -> RetrainContext:
    """What the retraining Job is told: parent, next version (from every known version), data, check."""
    known = (*obs.versions, *((obs.model_version,) if obs.model_version else ()))
    return RetrainContext(
        model_name=obs.model_name or "",
        parent=obs.parent,
        next_version=next_version(known),
        current=spec.current,
        check_time=check_time,
        performance=spec.performance,
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
    perf = result.performance
    signal = trigger_signal(result)  # "" when nothing is bad
    verdict = policy_decide(
        spec.policy,
        PolicyState(status.consecutive_drifted, status.last_action_time),
        bool(signal),
        now,
        job_active=status.active_job is not None and obs.job_state == "active",
        signal=SIGNAL_WORDS.get(signal, "dataset drift"),
        hold=perf is not None and perf.verdict == "Inconclusive",
    )
    summary = _drift_summary(status)
    gen = status.observed_generation
    conds = set_condition(
        status.conditions,
        DRIFT_DETECTED,
        "True" if result.dataset_drift else "False",
        verdict.reason if result.dataset_drift else "NoDrift",
        f"{summary}; {verdict.message}" if result.dataset_drift else summary or "no dataset drift",
        now,
        gen,
    )
    if perf is not None:
        degraded = perf.verdict == "Degraded"
        conds = set_condition(
            conds,
            PERFORMANCE_DEGRADED,
            "True" if degraded else "Unknown" if perf.verdict == "Inconclusive" else "False",
            verdict.reason if degraded else perf.reason,
            f"{perf.message}; {verdict.message}" if degraded else perf.message,
            now,
            gen,
        )
    events: list[EventSpec] = []
    history = status.history
    job: dict[str, Any] | None = None
    active = status.active_job
    check_time = status.last_check_time
    if result.dataset_drift:
        events.append(EventSpec("Warning", "DriftDetected", f"{summary}; {verdict.message}"))
    if perf is not None and perf.verdict == "Degraded":
        events.append(EventSpec("Warning", "PerformanceDegraded", f"{perf.message}; {verdict.message}"))
    if signal:
        what = "; ".join(
            part
            for part in (
                summary if result.dataset_drift else "",
                f"performance: {perf.message}" if perf is not None and perf.verdict == "Degraded" else "",
            )
            if part
        )
        history = append_history(
            history,
            _entry(
                now, SIGNAL_EVENTS[signal], verdict.reason, f"{what}; action: {verdict.action}", check_time=check_time
            ),
        )
    if verdict.action == "alert":
        events.append(
            EventSpec("Warning", "DriftAlert" if result.dataset_drift else "PerformanceAlert", verdict.message)
        )
    elif verdict.action == "retrain":
        if spec.job_template is None or obs.model_name is None:
            missing = "spec.jobTemplate" if spec.job_template is None else "the target's ModelVersion"
            msg = f"retraining needed but {missing} is missing"
            events.append(EventSpec("Warning", "RetrainNotPossible", msg))
            conds = set_condition(conds, RETRAINING, "False", "RetrainNotPossible", msg, now, gen)
        else:
            context = retrain_context(spec, obs, check_time)
            try:
                job = build_retrain_job(
                    monitor,
                    spec.job_template,
                    model_name=obs.model_name,
                    model_version=obs.model_version or "",
                    result=result,
                    reference_uri=reference_uri,
                    now=check_time,
                    context=context,
                )
            except ValueError as exc:
                events.append(EventSpec("Warning", "RetrainNotPossible", f"spec.jobTemplate: {exc}"))
                conds = set_condition(conds, RETRAINING, "False", "InvalidJobTemplate", str(exc), now, gen)
            else:
                name = job["metadata"]["name"]
                planned = model_version_name(obs.model_name, context.next_version or "")
                active = ActiveJob(
                    name=name,
                    created_at=now,
                    check_time=check_time,
                    parent_version=obs.parent,
                    next_version=context.next_version,
                )
                msg = (
                    f"retraining Job {name} created for {obs.model_name} {obs.model_version or ''}".rstrip()
                    + f"; it registers version {context.next_version} ({planned}); trigger: {signal}"
                )
                events.append(EventSpec("Normal", "RetrainTriggered", msg))
                history = append_history(
                    history,
                    _entry(
                        now,
                        "RetrainTriggered",
                        verdict.reason,
                        msg,
                        job=name,
                        check_time=check_time,
                        from_value=obs.parent,
                        to_value=planned,
                    ),
                )
                conds = set_condition(conds, RETRAINING, "True", "RetrainTriggered", msg, now, gen)
    new = status.model_copy(
        update={
            "phase": result_phase(result),
            "consecutive_drifted": verdict.state.consecutive_drifted,
            "last_action_time": verdict.state.last_action_time,
            "evaluated_check_time": status.last_check_time,
            "active_job": active,
            "conditions": conds,
            "history": history,
        }
    )
    return MonitorDecision(new, tuple(events), job)


# ------------------------------------------------------------------ the monitored target


@dataclass(frozen=True)
class ResolvedTarget:
    """The monitored ModelVersion as the operator resolved it (pinned, or the target deployment's
    stable version): whether it exists, the reference it yields and its offline metrics."""

    found: bool
    reference: str | None
    registered_metrics: Mapping[str, float] | None = None
    version: str | None = None
    """The ModelVersion's name (for messages)."""


@dataclass(frozen=True)
class TargetDecision:
    status: DriftMonitorStatus
    ready: tuple[Literal["True", "False"], str, str]
    waiting: bool
    """No reference and no target yet: the target may still appear (look again later)."""
    changed: bool
    events: tuple[EventSpec, ...] = ()


def decide_target(
    monitor: MonitorRef,
    spec: DriftMonitorSpec,
    status: DriftMonitorStatus,
    target: ResolvedTarget,
    generation: int,
    now: datetime,
) -> TargetDecision:
    """``status.resolvedReference``, ``status.registeredMetrics`` and the Ready/Stalled/Reconciling
    conditions from the resolved target. ``changed`` is False when the status is as it was
    (nothing to write); an Event names a reference that moved to another value."""
    ready: tuple[Literal["True", "False"], str, str]
    waiting = not target.reference and not target.found
    if target.reference:
        ready = ("True", "CronJobReady", f"CronJob {cronjob_name(monitor)} runs on '{spec.schedule}'")
    elif waiting:
        what = spec.target.model_version or f"the stable version of ModelDeployment {spec.target.deployment}"
        ready = ("False", "WaitingForTarget", f"waiting for {what} to exist: its referenceProfile is the reference")
    else:
        ready = (
            "False",
            "NoReference",
            "no reference data: set spec.reference.profile or .uri, or give the target ModelVersion a referenceProfile",
        )
    conds = kstatus_conditions(
        set_condition(status.conditions, "Ready", ready[0], ready[1], ready[2], now, generation),
        stalled=(ready[1], ready[2]) if ready[0] == "False" and not waiting else None,
        reconciling=ready[2] if waiting else None,
        idle_reason=ready[1],
        now=now,
        observed_generation=generation,
    )
    registered = dict(target.registered_metrics) if target.registered_metrics else None
    new = status.model_copy(
        update={
            "observed_generation": generation,
            "resolved_reference": target.reference,
            "registered_metrics": registered,
            "conditions": conds,
            "phase": MonitorPhase.PENDING if status.last_check_time is None else status.phase,
        }
    )
    events: tuple[EventSpec, ...] = ()
    if status.resolved_reference and target.reference and status.resolved_reference != target.reference:
        of = f" (ModelVersion {target.version})" if target.version else ""
        events = (
            EventSpec(
                "Normal",
                "ReferenceChanged",
                f"reference {status.resolved_reference} -> {target.reference}{of}",
            ),
        )
    return TargetDecision(new, ready, waiting, new != status, events)
