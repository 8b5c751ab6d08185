"""The ModelDeployment planner: ``decide(spec, status, observations, now) -> Decision``. Pure.

All rollout state is in ``status``; the live Deployments only tell how many pods are ready (and
which template they run). Each call moves the rollout as far as the observations allow and
returns the replicas each track should have, the HTTPRoute weight, the metrics to measure now,
the next status and the Events of every transition. The same inputs give the same decision;
applying a decision and deciding again on the result changes nothing (a fixpoint), which is
what makes the handler idempotent and a restarted operator resume exactly where it was.

Lifecycle:
- no stable yet: the target version is deployed straight to 100% (nothing to compare with);
- a new target (version, or server revision) starts the canary steps: ``setWeight`` waits for
  the canary's ready pods before the weight counts; ``pause`` with a clock in status, or until
  promoted; ``analysis`` measures each metric when due and judges the run;
- after the last step, promotion: the canary takes 100%, the stable Deployment is rewritten to
  the new version, then the hand-over scales the canary away as the stable's pods get ready;
- abort (by hand, failed analysis, progress deadline): canary to zero, stable to full weight,
  ``failedVersion`` remembered and not retried until ``retry`` or a spec change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from modelops.api.base import Condition, ConditionStatus, HistoryEntry
from modelops.api.modeldeployment import (
    ANALYSIS_RUNS_LIMIT,
    AnalysisMetric,
    AnalysisRun,
    CanaryStep,
    MetricResult,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    RolloutPhase,
    Tracks,
    TrackStatus,
)
from modelops.core.analysis import (
    deciding_result,
    group_measurements,
    interval_of,
    metric_due,
    metric_verdict,
    run_verdict,
)
from modelops.core.conditions import get_condition, set_condition
from modelops.core.history import append_history
from modelops.core.registry import EventSpec
from modelops.core.rollout_math import (
    RoutingMode,
    Scale,
    canary_replicas,
    handover_scale,
    handover_weight,
    next_scale,
    surge_pods,
    target_scale,
)
from modelops.core.version_selection import Selection
from modelops.drift.durations import parse_duration

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
AVAILABLE = "Available"
PROGRESSING = "Progressing"
MAX_PASSES = 70
"""Steps one decision may walk through (more than the 64 steps a spec may have)."""


# ------------------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class TrackObservation:
    """One track's live Deployment, as the rollout needs it."""

    exists: bool = False
    version: str | None = None
    """The ModelVersion its template runs (annotation ``modelops.dev/model-version``)."""
    revision: str | None = None
    """The server revision of its template (annotation ``modelops.dev/server-revision``)."""
    replicas: int = 0
    """``spec.replicas``."""
    ready: int = 0
    """Ready pods running the current template (a lower bound while the controller catches up)."""
    updated: bool = True
    """The controller has observed the latest spec and every pod runs the current template."""
    observed: bool = True
    """The controller has observed the latest spec (``status.observedGeneration``): until then
    ``ready`` is 0, as nothing is known of the new spec's pods."""


@dataclass(frozen=True)
class Blocker:
    """Something missing that a person must fix (a Secret, the HTTPRoute CRD, the Gateway):
    the rollout holds rather than moving traffic blindly."""

    reason: str
    message: str


@dataclass(frozen=True)
class RolloutObservations:
    generation: int
    selection: Selection
    server_revision: str
    stable: TrackObservation = TrackObservation()
    canary: TrackObservation = TrackObservation()
    blockers: tuple[Blocker, ...] = ()
    measurements: tuple[MetricResult, ...] = ()
    """Measurements taken just now for the running analysis step (after a decision asked)."""


# ----------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class TrackPlan:
    """Desired replicas of a track's Deployment, and the ModelVersion its template must run.

    ``version=None``: only scale; the template is not ours to rewrite now (a server-revision
    canary is running, or the track is being scaled away).
    """

    replicas: int
    version: str | None


@dataclass(frozen=True)
class Decision:
    status: ModelDeploymentStatus
    stable: TrackPlan | None = None
    canary: TrackPlan | None = None
    route_weight: int | None = None
    """The canary's HTTPRoute weight (gatewayApi routing); None: no HTTPRoute."""
    measure: tuple[str, ...] = ()
    """Analysis metrics due now: measure them and decide again with the results."""
    events: tuple[EventSpec, ...] = ()
    wait_until: datetime | None = None
    """The next time something is due (pause end, measurement, deadline) without any event."""
    changed: bool = True


@dataclass
class _Situation:
    phase: RolloutPhase
    reason: str
    message: str
    stalled: bool = False


@dataclass
class _Plan:
    """The decision under construction (local to one ``decide`` call)."""

    spec: ModelDeploymentSpec
    obs: RolloutObservations
    now: datetime
    status: ModelDeploymentStatus
    steps: Sequence[CanaryStep]
    mode: RoutingMode
    surge: int
    stable: TrackPlan | None = None
    canary: TrackPlan | None = None
    route_weight: int = 0
    measure: tuple[str, ...] = ()
    events: list[EventSpec] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    wait_until: datetime | None = None
    situation: _Situation = field(default_factory=lambda: _Situation(RolloutPhase.PENDING, "", ""))

    @property
    def replicas(self) -> int:
        return self.spec.replicas

    def update(self, **changes: object) -> None:
        self.status = self.status.model_copy(update=changes)

    def event(
        self,
        type_: Literal["Normal", "Warning"],
        reason: str,
        message: str,
        history: bool = False,
        history_reason: str | None = None,
        stable_change: tuple[str | None, str] | None = None,
    ) -> None:
        """``stable_change``: (from, to) stable version, recorded in the history entry (what
        `modelops rollout undo` goes back by)."""
        self.events.append(EventSpec(type_, reason, message))
        if history:
            self.remember(reason, message, history_reason, stable_change)

    def remember(
        self,
        event: str,
        message: str,
        reason: str | None = None,
        stable_change: tuple[str | None, str] | None = None,
    ) -> None:
        """A history entry (no Event)."""
        before, after = stable_change or (None, None)
        self.history.append(
            HistoryEntry(
                time=self.now,
                event=event,
                reason=reason or event,
                message=message,
                from_value=before,
                to_value=after,
            )
        )

    def wake(self, at: datetime) -> None:
        self.wait_until = at if self.wait_until is None else min(self.wait_until, at)

    def situate(self, phase: RolloutPhase, reason: str, message: str, stalled: bool = False) -> None:
        self.situation = _Situation(phase, reason, message, stalled)


# ----------------------------------------------------------------------------- helpers


def routing_mode(spec: ModelDeploymentSpec) -> RoutingMode:
    canary = spec.strategy.canary
    if canary is not None and canary.traffic_routing is not None and canary.traffic_routing.gateway_api is not None:
        return "gatewayApi"
    return "replicas"


def _deadline_text(spec: ModelDeploymentSpec) -> str:
    return spec.strategy.canary.progress_deadline if spec.strategy.canary is not None else "30m"


def _deadline(spec: ModelDeploymentSpec) -> timedelta:
    return parse_duration(_deadline_text(spec))


def _auto_rollback(spec: ModelDeploymentSpec) -> bool:
    return spec.strategy.canary.auto_rollback if spec.strategy.canary is not None else True


def _observed_scale(obs: RolloutObservations) -> Scale:
    return Scale(obs.stable.replicas if obs.stable.exists else 0, obs.canary.replicas if obs.canary.exists else 0)


def _ready_running(track: TrackObservation, version: str | None, revision: str | None) -> int:
    """Ready pods of ``track`` that run exactly (version, revision); 0 when the template differs."""
    if not track.exists or track.version != version or track.revision != revision:
        return 0
    return track.ready


def _stable_template(p: _Plan) -> str | None:
    """The stable's template is rewritten only when it runs the spec's server revision (or when
    its Deployment is gone: recreated with the spec's server rather than left missing)."""
    stable = p.status.tracks.stable
    if not p.status.stable_version:
        return None
    if (stable is not None and stable.revision == p.obs.server_revision) or not p.obs.stable.exists:
        return p.status.stable_version
    return None


def _step_label(step: CanaryStep) -> str:
    if step.set_weight is not None:
        return f"setWeight {step.set_weight}"
    if step.pause is not None:
        return f"pause {step.pause.duration}" if step.pause.duration else "pause"
    return "analysis"


def _fmt_scale(scale: Scale) -> str:
    return f"stable {scale.stable}, canary {scale.canary} pods"


# ------------------------------------------------------------------------- the decision


def decide(
    spec: ModelDeploymentSpec, status: ModelDeploymentStatus, obs: RolloutObservations, now: datetime
) -> Decision:
    """The next action of a ModelDeployment and its new status (see the module docstring)."""
    steps = spec.strategy.canary.steps if spec.strategy.canary is not None else []
    surge_setting = spec.strategy.canary.max_surge if spec.strategy.canary is not None else "25%"
    p = _Plan(
        spec=spec,
        obs=obs,
        now=now,
        status=status,
        steps=steps,
        mode=routing_mode(spec),
        surge=surge_pods(surge_setting, spec.replicas),
    )
    _on_generation(p)
    if p.status.stable_version is not None or _first_deploy(p):
        for _ in range(MAX_PASSES):
            if p.status.canary_version is not None:
                if _canary(p):
                    continue  # a step was done: work on the next one now
                if p.status.canary_version is not None:
                    break
            if not _steady(p):  # the canary ended (promoted, rolled back) or there was none
                break
    _consume_stale_controls(p)
    return _finish(status, p)


def _on_generation(p: _Plan) -> None:
    """A spec change clears the memory of a failed version (and restarts the deadline clock)."""
    previous = p.status.observed_generation
    if previous is not None and previous != p.obs.generation:
        if p.status.failed_version is not None:
            p.event("Normal", "RetryAllowed", f"spec changed: {p.status.failed_version} may be rolled out again")
            p.update(failed_version=None)
        if p.status.canary_version is None:
            p.update(step_started_at=p.now)
    p.update(observed_generation=p.obs.generation)


def _selection_problem(p: _Plan, phase: RolloutPhase) -> bool:
    """Report why no version is selected (``phase``: what the serving track is in); True if so."""
    sel = p.obs.selection
    if sel.version is not None:
        return False
    p.situate(phase, sel.reason, sel.message, stalled=not sel.transient)
    return True


def _blocked(p: _Plan) -> Blocker | None:
    return p.obs.blockers[0] if p.obs.blockers else None


def _held(p: _Plan) -> tuple[str, str, bool] | None:
    """Why steps must not advance now (reason, message, stalled): a blocker, a user or spec pause."""
    blocker = _blocked(p)
    if blocker is not None:
        return blocker.reason, blocker.message, True
    if p.status.paused_by_user:
        return "PausedByUser", "paused by `modelops rollout pause`; `resume` continues", False
    if p.spec.paused:
        return "SpecPaused", "spec.paused is true", False
    return None


# ---------------------------------------------------------------------- first deploy


def _first_deploy(p: _Plan) -> bool:
    """Deploy the target straight to 100%; False when there is nothing to deploy yet."""
    if _selection_problem(p, RolloutPhase.PENDING):
        return False
    blocker = _blocked(p)
    if blocker is not None:
        p.situate(RolloutPhase.PENDING, blocker.reason, blocker.message, stalled=True)
        return False
    target = p.obs.selection.version
    assert target is not None
    p.update(
        stable_version=target.name,
        tracks=Tracks(stable=TrackStatus(version=target.name, revision=p.obs.server_revision)),
        step_started_at=p.now,
        phase=RolloutPhase.PROGRESSING,
    )
    p.event(
        "Normal",
        "Deploying",
        f"first deploy: {target.name} on {p.replicas} replicas at 100% (nothing to compare a canary with)",
        history=True,
        stable_change=(None, target.name),
    )
    return True


# ---------------------------------------------------------------------- steady state


def _steady(p: _Plan) -> bool:
    """Stable serves 100%: keep it at full size, scale leftovers of a canary away; start a rollout
    (and return True) when the target differs from what the stable runs."""
    obs, st = p.obs, p.status
    target = obs.selection.version
    stable_rev = st.tracks.stable.revision if st.tracks.stable else None
    _hold_steady(p)
    if target is not None and (target.name, obs.server_revision) != (st.stable_version, stable_rev):
        if target.name == st.failed_version:
            _still_rolled_back(p, f"{target.name} is not retried until `modelops rollout retry` or a spec change")
            return False
        held = _held(p)
        if held is None:
            _start_canary(p, target.name)
            return True
        p.update(phase=RolloutPhase.PAUSED)
        p.situate(RolloutPhase.PAUSED, held[0], f"rollout of {target.name} waits: {held[1]}", stalled=held[2])
        return False
    if st.phase == RolloutPhase.ROLLED_BACK and st.failed_version is not None:
        # The target is the stable again, or there is none (the registry archived the failed
        # version): the rollback stays on record (Stalled, the RolledBack phase and its alert)
        # until a person acknowledges it with `modelops rollout retry` or a spec change.
        now_target = (
            f"the target is {st.stable_version} again, which serves 100%"
            if target is not None
            else f"{st.stable_version} serves 100%, no version to roll out: {obs.selection.message}"
        )
        _still_rolled_back(p, f"{now_target}; `modelops rollout retry` or a spec change clears this")
        return False
    ready = _ready_running(obs.stable, st.stable_version, stable_rev) if _stable_template(p) else obs.stable.ready
    message = f"{st.stable_version}: {_reported(st.tracks.stable, obs.stable, ready)}/{p.replicas} pods ready"
    if ready >= p.replicas and obs.stable.updated and obs.stable.replicas == p.replicas:
        if st.phase != RolloutPhase.HEALTHY:
            p.event("Normal", "Available", f"{st.stable_version}: {ready}/{p.replicas} pods ready, 100% of traffic")
        p.situate(RolloutPhase.HEALTHY, "Healthy", f"{st.stable_version} serves 100% on {ready} ready pods")
    else:
        started = st.step_started_at or p.now
        if p.now - started >= _deadline(p.spec):
            if st.phase != RolloutPhase.DEGRADED:
                p.event("Warning", "ProgressDeadlineExceeded", f"{message} after {_deadline_text(p.spec)}")
            p.situate(RolloutPhase.DEGRADED, "ProgressDeadlineExceeded", message, stalled=True)
        else:
            p.wake(started + _deadline(p.spec))
            p.situate(RolloutPhase.PROGRESSING, "Progressing", message)
    p.update(phase=p.situation.phase)
    _selection_problem(p, p.situation.phase)
    return False


def _last_rollback(history: Sequence[HistoryEntry]) -> HistoryEntry | None:
    return next((h for h in reversed(history) if h.event == "RolledBack"), None)


def _still_rolled_back(p: _Plan, then: str) -> None:
    """Phase RolledBack, Stalled with the reason and message of the last rollback, and ``then``."""
    st = p.status
    last = _last_rollback(p.history or st.history)
    why = last.message if last is not None else f"{st.failed_version} was rolled back"
    p.update(phase=RolloutPhase.ROLLED_BACK)
    p.situate(
        RolloutPhase.ROLLED_BACK, last.reason if last is not None else "RolledBack", f"{why}; {then}", stalled=True
    )


def rolled_back_at(status: ModelDeploymentStatus) -> tuple[datetime, str] | None:
    """When and why ``status.failedVersion`` was rolled back (its last RolledBack history entry)."""
    if status.failed_version is None:
        return None
    last = _last_rollback(status.history)
    return (last.time, last.reason or "RolledBack") if last is not None else None


def _hold_steady(p: _Plan) -> None:
    st = p.status
    p.stable = TrackPlan(p.replicas, _stable_template(p))
    p.canary = TrackPlan(0, None) if p.obs.canary.exists else None
    p.route_weight = 0
    stable_rev = st.tracks.stable.revision if st.tracks.stable else None
    p.update(
        tracks=Tracks(
            stable=TrackStatus(
                version=st.stable_version,
                revision=stable_rev,
                replicas=p.replicas,
                ready_replicas=_reported(st.tracks.stable, p.obs.stable, p.obs.stable.ready),
            ),
            canary=_canary_track_status(p, 0) if st.tracks.canary is not None else None,
        ),
        canary_weight=0,
    )


def _canary_track_status(p: _Plan, replicas: int) -> TrackStatus:
    prev = p.status.tracks.canary or TrackStatus()
    return prev.model_copy(
        update={"replicas": replicas, "ready_replicas": _reported(prev, p.obs.canary, p.obs.canary.ready)}
    )


def _reported(previous: TrackStatus | None, track: TrackObservation, ready: int) -> int:
    """Ready pods as status reports them. While the controller has not yet observed a change we
    made (a scale: no pod changed), the count last reported stands, capped at the new size, rather
    than a 0 that would flip Available off and back; ``ready`` (what decisions use) stays 0."""
    if (
        previous is not None
        and track.exists
        and not track.observed
        and (previous.version, previous.revision) == (track.version, track.revision)
    ):
        return min(previous.ready_replicas, track.replicas)
    return ready


def _start_canary(p: _Plan, version: str) -> None:
    p.update(
        canary_version=version,
        current_step_index=0,
        canary_weight=0,
        step_started_at=p.now,
        pause_started_at=None,
        phase=RolloutPhase.PROGRESSING,
        tracks=p.status.tracks.model_copy(
            update={"canary": TrackStatus(version=version, revision=p.obs.server_revision)}
        ),
    )
    what = "new server settings" if version == p.status.stable_version else f"{p.status.stable_version} -> {version}"
    p.event("Normal", "RolloutStarted", f"canary rollout {what}: {len(p.steps)} steps", history=True)


# ------------------------------------------------------------------------------ canary


def _canary(p: _Plan) -> bool:
    """Work on the running canary; True when it moved to a new step (decide again at once)."""
    st, obs = p.status, p.obs
    cv = st.canary_version
    crev = st.tracks.canary.revision if st.tracks.canary else None
    assert cv is not None
    if _in_handover(p, cv, crev):
        _handover(p, cv, crev)
        return False
    target = obs.selection.version
    desired = (target.name, obs.server_revision) if target is not None else None
    if desired != (cv, crev):
        stable_rev = st.tracks.stable.revision if st.tracks.stable else None
        if desired == (st.stable_version, stable_rev):
            _cancel(p, "RolloutCancelled", f"the target is {st.stable_version} again: canary {cv} scaled away")
        elif target is None:
            _cancel(p, obs.selection.reason, f"canary {cv} stopped: {obs.selection.message}", warning=True)
        elif target.name == st.failed_version:
            _cancel(p, "RolloutCancelled", f"the target {target.name} was rolled back before: canary {cv} stopped")
        else:
            p.event("Normal", "CanarySuperseded", f"canary {cv} superseded by {target.name}", history=True)
            _start_canary(p, target.name)
            return True
        return False
    if st.abort:
        _abort(p, "Aborted", f"canary {cv} aborted by request")
        return False
    index = st.current_step_index or 0
    if st.promote_full and index < len(p.steps):
        p.event("Normal", "PromotedFull", f"remaining steps of {cv} skipped by request")
        p.update(promote_full=False, current_step_index=len(p.steps), step_started_at=p.now, pause_started_at=None)
        return True
    if st.promote_step is not None and st.promote_step == index and index < len(p.steps):
        p.event("Normal", "StepPromoted", f"step {index} ({_step_label(p.steps[index])}) of {cv} promoted by request")
        _advance(p, index)
        p.update(promote_step=None)
        return True
    held = _held(p)
    if held is not None:
        _keep_weight(p, cv, crev)
        p.update(phase=RolloutPhase.PAUSED)
        p.situate(RolloutPhase.PAUSED, held[0], f"canary {cv} held at {st.canary_weight}%: {held[1]}", held[2])
        return False
    if index >= len(p.steps):
        return _promote(p, cv, crev)
    step = p.steps[index]
    if step.set_weight is not None:
        return _set_weight(p, cv, crev, index, step.set_weight)
    if step.pause is not None:
        return _pause(p, cv, crev, index, step.pause.duration)
    assert step.analysis is not None
    return _analysis(p, cv, crev, index, step.analysis.metrics)


def _in_handover(p: _Plan, cv: str, crev: str | None) -> bool:
    """The stable already runs the canary's version: promotion is past the point of no return.

    Read from status, or from the live stable Deployment when the operator died between
    rewriting the stable's template and recording it (nothing else ever gives the stable track
    the canary's version and revision).
    """
    st = p.status
    stable_rev = st.tracks.stable.revision if st.tracks.stable else None
    if (st.stable_version, stable_rev) == (cv, crev):
        return True
    live = p.obs.stable
    return live.exists and (live.version, live.revision) == (cv, crev)


def _advance(p: _Plan, index: int) -> None:
    p.update(current_step_index=index + 1, step_started_at=p.now, pause_started_at=None)


def _keep_weight(p: _Plan, cv: str, crev: str | None) -> Scale:
    """Hold the canary at its reached weight (following replica changes)."""
    return _scale_towards(p, cv, crev, p.status.canary_weight)


def _scale_towards(p: _Plan, cv: str, crev: str | None, weight: int) -> Scale:
    ready = _ready_running(p.obs.canary, cv, crev)
    scale = next_scale(weight, p.replicas, p.surge, p.mode, _observed_scale(p.obs), ready)
    p.stable = TrackPlan(scale.stable, _stable_template(p))
    p.canary = TrackPlan(scale.canary, cv)
    p.route_weight = p.status.canary_weight
    stable, canary = p.status.tracks.stable or TrackStatus(), p.status.tracks.canary or TrackStatus()
    p.update(
        tracks=p.status.tracks.model_copy(
            update={
                "stable": stable.model_copy(
                    update={
                        "replicas": scale.stable,
                        "ready_replicas": _reported(stable, p.obs.stable, p.obs.stable.ready),
                    }
                ),
                "canary": canary.model_copy(
                    update={"replicas": scale.canary, "ready_replicas": _reported(canary, p.obs.canary, ready)}
                ),
            }
        )
    )
    return scale


def _weight_reached(p: _Plan, cv: str, crev: str | None, weight: int) -> bool:
    target = target_scale(weight, p.replicas, p.surge, p.mode)
    ready = _ready_running(p.obs.canary, cv, crev)
    return _observed_scale(p.obs) == target and ready >= target.canary and (target.canary == 0 or p.obs.canary.updated)


def _waiting(p: _Plan, cv: str, what: str) -> bool:
    """Waiting for pods: Progressing until the deadline, then abort (or stall without autoRollback)."""
    started = p.status.step_started_at or p.now
    deadline = _deadline(p.spec)
    if p.now - started >= deadline:
        message = f"canary {cv}: {what} after {_deadline_text(p.spec)}"
        if _auto_rollback(p.spec):
            _abort(p, "ProgressDeadlineExceeded", message)
        else:
            p.update(phase=RolloutPhase.DEGRADED)
            p.situate(RolloutPhase.DEGRADED, "ProgressDeadlineExceeded", message, stalled=True)
        return False
    p.wake(started + deadline)
    p.update(phase=RolloutPhase.PROGRESSING)
    p.situate(RolloutPhase.PROGRESSING, "Progressing", f"canary {cv}: {what}")
    return False


def _set_weight(p: _Plan, cv: str, crev: str | None, index: int, weight: int) -> bool:
    if _weight_reached(p, cv, crev, weight):
        target = target_scale(weight, p.replicas, p.surge, p.mode)
        if p.status.canary_weight != weight:
            p.event("Normal", "WeightSet", f"canary {cv} at {weight}% ({_fmt_scale(target)})")
        p.update(canary_weight=weight)
        _scale_towards(p, cv, crev, weight)
        p.route_weight = weight
        _advance(p, index)
        return True
    scale = _scale_towards(p, cv, crev, weight)
    ready = _ready_running(p.obs.canary, cv, crev)
    need = canary_replicas(weight, p.replicas)
    return _waiting(p, cv, f"step {index} setWeight {weight}: {ready}/{need} canary pods ready ({_fmt_scale(scale)})")


def _pause(p: _Plan, cv: str, crev: str | None, index: int, duration: str | None) -> bool:
    _keep_weight(p, cv, crev)
    started = p.status.pause_started_at
    if started is None:
        started = p.now
        p.update(pause_started_at=started)
        p.event(
            "Normal",
            "Paused",
            f"canary {cv} at {p.status.canary_weight}%: step {index} pause {duration or 'until promoted'}",
        )
    if duration is None:
        p.update(phase=RolloutPhase.PAUSED)
        p.situate(
            RolloutPhase.PAUSED,
            "PausedAtStep",
            f"canary {cv} at {p.status.canary_weight}%: paused at step {index} until promoted "
            "(`modelops rollout promote`)",
        )
        return False
    end = started + parse_duration(duration)
    if p.now >= end:
        _advance(p, index)
        return True
    p.wake(end)
    p.update(phase=RolloutPhase.PAUSED)
    p.situate(
        RolloutPhase.PAUSED,
        "PausedAtStep",
        f"canary {cv} at {p.status.canary_weight}%: step {index} pause {duration} until {end.isoformat()}",
    )
    return False


def _current_run(p: _Plan, cv: str, index: int) -> AnalysisRun | None:
    runs = p.status.analysis_runs
    if not runs:
        return None
    last = runs[-1]
    started = p.status.step_started_at
    if last.step_index == index and last.version == cv and (started is None or last.started_at >= started):
        return last
    return None


def _with_run(p: _Plan, run: AnalysisRun, replace_last: bool) -> None:
    runs = list(p.status.analysis_runs)
    if replace_last:
        runs[-1] = run
    else:
        runs.append(run)
        finished = runs[:-1][-(ANALYSIS_RUNS_LIMIT - 1) :] if ANALYSIS_RUNS_LIMIT > 1 else []
        runs = [*finished, run]
    p.update(analysis_runs=runs)


def _analysis(p: _Plan, cv: str, crev: str | None, index: int, metrics: Sequence[AnalysisMetric]) -> bool:
    _keep_weight(p, cv, crev)
    run = _current_run(p, cv, index)
    if run is None:
        run = AnalysisRun(step_index=index, started_at=p.now, version=cv)
        _with_run(p, run, replace_last=False)
        p.event(
            "Normal",
            "AnalysisStarted",
            f"canary {cv} at {p.status.canary_weight}%: step {index} analysis of {', '.join(m.name for m in metrics)}",
        )
    was = run.phase
    names = {m.name for m in metrics}
    fresh = [m for m in p.obs.measurements if m.name in names]
    if fresh:
        run = run.model_copy(update={"measurements": [*run.measurements, *fresh]})
    grouped = group_measurements(run.measurements)
    verdict = run_verdict(metrics, grouped)
    message = run.message
    if verdict in ("Failed", "Inconclusive"):
        deciding = deciding_result(metrics, grouped)
        message = deciding.message if deciding is not None and deciding.message else f"analysis {verdict.lower()}"
    run = run.model_copy(update={"phase": verdict, "message": message})
    _with_run(p, run, replace_last=True)
    if verdict == "Successful":
        p.event("Normal", "AnalysisSuccessful", f"canary {cv}: step {index} analysis passed")
        _advance(p, index)
        return True
    if verdict == "Failed":
        if _auto_rollback(p.spec):
            _abort(p, "AnalysisFailed", f"canary {cv} failed analysis: {message}")
        else:
            if was != "Failed":
                p.event("Warning", "AnalysisFailed", f"canary {cv}: {message} (autoRollback is off)")
            p.update(phase=RolloutPhase.DEGRADED)
            p.situate(RolloutPhase.DEGRADED, "AnalysisFailed", f"canary {cv}: {message}; abort or promote", True)
        return False
    if verdict == "Inconclusive":
        if was != "Inconclusive":
            p.event("Warning", "AnalysisInconclusive", f"canary {cv} paused: {message}")
        p.update(phase=RolloutPhase.PAUSED)
        p.situate(
            RolloutPhase.PAUSED,
            "AnalysisInconclusive",
            f"canary {cv} paused at step {index}: {message}; `promote` to accept or `abort`",
            stalled=True,
        )
        return False
    due = [m for m in metrics if m.name not in {f.name for f in fresh}]
    p.measure = tuple(m.name for m in due if metric_due(m, grouped.get(m.name, ()), run.started_at, p.now))
    for m in metrics:
        taken = grouped.get(m.name, [])
        if metric_verdict(m, taken) == "Running":
            last = taken[-1].time if taken and taken[-1].time is not None else run.started_at
            p.wake(last + interval_of(m))
    p.update(phase=RolloutPhase.PROGRESSING)
    p.situate(
        RolloutPhase.PROGRESSING,
        "Analysing",
        f"canary {cv} at {p.status.canary_weight}%: step {index} analysis, {len(run.measurements)} measurements",
    )
    return False


# --------------------------------------------------------------------------- promotion


def _promote(p: _Plan, cv: str, crev: str | None) -> bool:
    """After the last step: the canary takes 100%, then the stable's template becomes the canary's."""
    if not _weight_reached(p, cv, crev, 100):
        scale = _scale_towards(p, cv, crev, 100)
        ready = _ready_running(p.obs.canary, cv, crev)
        return _waiting(p, cv, f"promoting: {ready}/{p.replicas} canary pods ready ({_fmt_scale(scale)})")
    if p.status.canary_weight != 100:
        p.event("Normal", "WeightSet", f"canary {cv} at 100%")
    observed = _observed_scale(p.obs)
    tracks = p.status.tracks
    previous = p.status.stable_version
    p.update(
        canary_weight=100,
        stable_version=cv,
        step_started_at=p.now,
        tracks=tracks.model_copy(
            update={"stable": TrackStatus(version=cv, revision=crev, replicas=observed.stable, ready_replicas=0)}
        ),
    )
    p.event(
        "Normal",
        "Promoting",
        f"{cv} carries 100%: stable track updated to {cv}",
        history=True,
        stable_change=(previous, cv),
    )
    _handover(p, cv, crev)
    return False


def _handover(p: _Plan, cv: str, crev: str | None) -> None:
    """Both tracks run the new version: grow the stable, shrink the canary, never below full capacity."""
    st = p.status
    if (st.stable_version, (st.tracks.stable.revision if st.tracks.stable else None)) != (cv, crev):
        # Resumed after the stable's template was rewritten but before status recorded it: the
        # Promoting history entry was lost with that write (its Event was sent), recorded now.
        p.update(
            stable_version=cv,
            tracks=st.tracks.model_copy(update={"stable": TrackStatus(version=cv, revision=crev)}),
        )
        p.remember("Promoting", f"{cv} carries 100%: stable track updated to {cv}", None, (st.stable_version, cv))
    if st.abort or st.promote_full or st.promote_step is not None:
        if st.abort:
            p.event("Warning", "AbortIgnored", f"{cv} is already promoted; use `modelops rollout undo`")
        p.update(abort=False, promote_full=False, promote_step=None)
    stable_ready = _ready_running(p.obs.stable, cv, crev)
    # While the stable's own rolling update still runs pods of the old version, its Services route
    # to them too: no traffic moves to the stable, and the canary keeps its pods, until it is done.
    movable = stable_ready if p.obs.stable.updated else 0
    scale = handover_scale(p.replicas, p.surge, _observed_scale(p.obs), movable)
    p.stable = TrackPlan(scale.stable, cv)
    p.canary = TrackPlan(scale.canary, cv)
    p.route_weight = handover_weight(p.replicas, movable)
    done = _observed_scale(p.obs) == Scale(p.replicas, 0) and stable_ready >= p.replicas and p.obs.stable.updated
    if done:
        p.route_weight = 0
        p.update(
            canary_version=None,
            current_step_index=None,
            canary_weight=0,
            pause_started_at=None,
            step_started_at=p.now,
            phase=RolloutPhase.HEALTHY,
        )
        p.event(
            "Normal",
            "Promoted",
            f"{cv} is the stable version, serving 100%",
            history=True,
            stable_change=(_promoted_from(p, cv), cv),
        )
        return
    stable, canary = p.status.tracks.stable or TrackStatus(), p.status.tracks.canary or TrackStatus()
    p.update(
        tracks=p.status.tracks.model_copy(
            update={
                "stable": stable.model_copy(
                    update={"replicas": scale.stable, "ready_replicas": _reported(stable, p.obs.stable, stable_ready)}
                ),
                "canary": canary.model_copy(
                    update={
                        "replicas": scale.canary,
                        "ready_replicas": _reported(canary, p.obs.canary, p.obs.canary.ready),
                    }
                ),
            }
        ),
        phase=RolloutPhase.PROGRESSING,
    )
    p.situate(
        RolloutPhase.PROGRESSING,
        "Promoting",
        f"promoting {cv}: stable {stable_ready}/{p.replicas} ready, canary scaling to {scale.canary}",
    )


def _promoted_from(p: _Plan, cv: str) -> str | None:
    """The stable version ``cv`` replaced, from its Promoting history entry."""
    for entry in reversed([*p.status.history, *p.history]):
        if entry.event == "Promoting" and entry.to_value == cv:
            return entry.from_value if entry.from_value != cv else None
    return None


# ------------------------------------------------------------------------- abort/cancel


def _abort(p: _Plan, reason: str, message: str) -> None:
    """Canary to zero, stable to full weight; the version is remembered as failed.

    The reason and message go to history, where the steady state reads them back for the
    conditions on every later reconcile."""
    cv = p.status.canary_version
    p.update(failed_version=cv)
    _stop_canary(p)
    p.update(phase=RolloutPhase.ROLLED_BACK)
    p.event("Warning", "RolledBack", f"{message}; 100% back on {p.status.stable_version}", True, reason)


def _cancel(p: _Plan, reason: str, message: str, warning: bool = False) -> None:
    """Stop a canary that is no longer wanted (not a failure: nothing is remembered)."""
    _stop_canary(p)
    p.update(phase=RolloutPhase.PROGRESSING)
    p.event("Warning" if warning else "Normal", reason, message, history=True)


def _stop_canary(p: _Plan) -> None:
    p.update(
        canary_version=None,
        current_step_index=None,
        canary_weight=0,
        step_started_at=p.now,
        pause_started_at=None,
        abort=False,
        promote_full=False,
        promote_step=None,
    )
    p.stable = TrackPlan(p.replicas, _stable_template(p))
    p.canary = TrackPlan(0, None)
    p.route_weight = 0


def _consume_stale_controls(p: _Plan) -> None:
    """Control requests that cannot apply are cleared, so they never act on a later state."""
    st = p.status
    updates: dict[str, object] = {}
    if st.canary_version is None:
        if st.abort:
            updates["abort"] = False
        if st.promote_full:
            updates["promote_full"] = False
    if st.promote_step is not None and (st.canary_version is None or st.promote_step != st.current_step_index):
        updates["promote_step"] = None
    if updates:
        p.update(**updates)


# ----------------------------------------------------------------------------- status


def _conditions(p: _Plan, previous: ModelDeploymentStatus) -> list[Condition]:
    s, gen, now = p.situation, p.obs.generation, p.now
    conds = list(previous.conditions)
    healthy = s.phase == RolloutPhase.HEALTHY and s.reason in ("", "Healthy")
    ready: tuple[ConditionStatus, str, str] = (
        ("True", "Healthy", s.message) if healthy else ("False", s.reason or str(s.phase), s.message)
    )
    conds = set_condition(conds, READY, ready[0], ready[1], ready[2], now, gen)
    working = s.phase in (RolloutPhase.PROGRESSING, RolloutPhase.PAUSED) or (
        s.phase == RolloutPhase.PENDING and not s.stalled
    )
    reconciling = working and not s.stalled
    conds = set_condition(
        conds,
        RECONCILING,
        "True" if reconciling else "False",
        "Progressing" if reconciling else s.reason or str(s.phase),  # kstatus/Flux: the reason while True
        s.message,
        now,
        gen,
    )
    conds = set_condition(
        conds,
        STALLED,
        "True" if s.stalled else "False",
        s.reason or str(s.phase),
        s.message if s.stalled else "",
        now,
        gen,
    )
    st = p.status
    stable_ready = st.tracks.stable.ready_replicas if st.tracks.stable else 0
    canary_ready = st.tracks.canary.ready_replicas if st.tracks.canary and st.canary_version else 0
    total = stable_ready + canary_ready
    available: ConditionStatus = "True" if total >= p.replicas and (p.replicas == 0 or st.stable_version) else "False"
    conds = set_condition(
        conds,
        AVAILABLE,
        available,
        "MinimumReplicasAvailable" if available == "True" else "ReplicasUnavailable",
        f"{total}/{p.replicas} pods ready",
        now,
        gen,
    )
    progressing: tuple[ConditionStatus, str]
    if s.phase == RolloutPhase.ROLLED_BACK:
        progressing = ("False", "RolledBack")
    elif s.reason == "ProgressDeadlineExceeded":
        progressing = ("False", "ProgressDeadlineExceeded")
    elif s.phase == RolloutPhase.PAUSED:
        progressing = ("Unknown", "Paused")
    elif s.phase == RolloutPhase.HEALTHY:
        progressing = ("True", "RolloutCompleted")
    elif s.phase == RolloutPhase.PENDING:
        progressing = ("Unknown", s.reason or "Pending")
    else:
        progressing = ("True", "NewVersionProgressing")
    conds = set_condition(conds, PROGRESSING, progressing[0], progressing[1], s.message, now, gen)
    return conds


def _finish(previous: ModelDeploymentStatus, p: _Plan) -> Decision:
    s = p.situation
    old_ready = get_condition(previous.conditions, READY)
    if s.stalled and s.reason and (old_ready is None or old_ready.reason != s.reason):
        already = any(e.type == "Warning" for e in p.events)
        if not already:
            p.event("Warning", s.reason, s.message)
    updates: dict[str, object] = {
        "message": s.message or None,
        "phase": s.phase,
        "conditions": _conditions(p, previous),
    }
    if p.history:
        updates["history"] = append_history(p.status.history, *p.history)
    p.update(**updates)
    status = p.status
    return Decision(
        status=status,
        stable=p.stable,
        canary=p.canary,
        route_weight=p.route_weight if p.mode == "gatewayApi" else None,
        measure=p.measure,
        events=tuple(p.events),
        wait_until=p.wait_until,
        changed=status != previous,
    )


def serving(status: ModelDeploymentStatus) -> list[tuple[str, Literal["stable", "canary"], int]]:
    """(ModelVersion, track, weight) for every version this deployment serves: what each
    ModelVersion's ``status.deployments`` records."""
    out: list[tuple[str, Literal["stable", "canary"], int]] = []
    if status.stable_version is not None:
        out.append((status.stable_version, "stable", 100 - status.canary_weight if status.canary_version else 100))
    if status.canary_version is not None:
        out.append((status.canary_version, "canary", status.canary_weight))
    return out


__all__ = [
    "Blocker",
    "Decision",
    "RolloutObservations",
    "TrackObservation",
    "TrackPlan",
    "decide",
    "rolled_back_at",
    "routing_mode",
    "serving",
]
