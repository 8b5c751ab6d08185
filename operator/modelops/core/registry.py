"""The ModelVersion reconcile decision: verification outcome and stage policy to a new status.

Pure: observations (the digest check's outcome, the sibling versions of the same model) and
``now`` come in; the next status, the Events to record and the versions to archive come out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from modelops.api.base import Condition, HistoryEntry
from modelops.api.modelversion import ModelVersionSpec, ModelVersionStatus, Phase, Stage
from modelops.core.conditions import get_condition, kstatus_conditions, set_condition
from modelops.core.history import append_history
from modelops.core.stage_policy import SELF_APPROVAL_REFUSED, TransitionRequest, evaluate
from modelops.core.validation_gates import (
    OPERATOR_ACTOR,
    VALIDATION_FAILED,
    Champion,
    GateResult,
    PolicyRef,
    approval_waived,
    auto_promotion_target,
    gates_apply,
    self_approval_refused_by,
)
from modelops.core.validation_gates import evaluate as evaluate_gates

READY = "Ready"
STAGE_SYNCED = "StageSynced"
VALIDATED = "Validated"
"""The last evaluation of the model's ModelPolicy gates (absent when no policy applies)."""
AUTO_PROMOTED = "AutoPromoted"
OWN_EVENT_REASONS = frozenset({VALIDATION_FAILED, SELF_APPROVAL_REFUSED})
"""Refusals whose Warning Event carries the refusal's own reason (not ``TransitionRefused``)."""
ROLLED_BACK = "RolledBack"
"""History and Event reason of the stage changes a canary rollback makes in the registry."""
SUPERSEDED = "Superseded"
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 600.0

EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class DigestObservation:
    """What reading the artifact gave: its digest, or why it could not be read."""

    outcome: Literal["match", "mismatch", "unreachable"]
    actual: str | None = None
    size_bytes: int | None = None
    error: str | None = None
    reason: str = "ArtifactUnreachable"
    """Of an unreachable outcome: ``ArtifactRefused`` when the operator's artifact policy forbade the read."""


@dataclass(frozen=True)
class Sibling:
    """Another ModelVersion of the same model, as observed."""

    name: str
    requested_stage: Stage
    status: ModelVersionStatus
    resource_version: str
    metrics: Mapping[str, float] | None = None


@dataclass(frozen=True)
class Observations:
    digest: DigestObservation | None
    siblings: tuple[Sibling, ...] = ()
    policies: tuple[PolicyRef, ...] = ()
    """The model's ModelPolicies, read when a stage decision may need them (empty: no policy)."""


@dataclass(frozen=True)
class EventSpec:
    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Demotion:
    """Move another version to ``stage`` (archive a sibling that held Production; after a
    rollback, archive the failed version or restore the stable one): its status, then its spec
    stage, with the reason."""

    name: str
    resource_version: str
    status: ModelVersionStatus
    event: EventSpec
    stage: Stage = Stage.ARCHIVED


@dataclass(frozen=True)
class Decision:
    status: ModelVersionStatus
    events: tuple[EventSpec, ...] = ()
    demotions: tuple[Demotion, ...] = ()
    retry_after_seconds: float | None = None
    changed: bool = field(default=True)
    request_stage: Stage | None = None
    """Also write ``spec.stage`` (an automatic promotion), after the status."""


@dataclass(frozen=True)
class StageOutcome:
    status: ModelVersionStatus
    events: list[EventSpec] = field(default_factory=list)
    demotions: list[Demotion] = field(default_factory=list)
    request_stage: Stage | None = None


def needs_digest_check(status: ModelVersionStatus) -> bool:
    """Only a Pending version is (re)read; Verified and Failed are final for an immutable artifact."""
    return status.phase == Phase.PENDING


def reads_policies(spec: ModelVersionSpec, status: ModelVersionStatus) -> bool:
    """Whether this reconcile may evaluate the model's ModelPolicies: a gated stage change is
    requested, or the artifact is about to be verified (an automatic promotion may follow)."""
    current, target = Stage(status.stage or Stage.NONE), Stage(spec.stage)
    if current != target:
        return gates_apply(current, target)
    return target == Stage.NONE and needs_digest_check(status)


def awaits_policy(spec: ModelVersionSpec, status: ModelVersionStatus) -> bool:
    """A verified version whose requested stage is not granted yet: a ModelPolicy change re-evaluates it."""
    current, target = Stage(status.stage or Stage.NONE), Stage(spec.stage)
    return status.phase == Phase.VERIFIED and current != target and gates_apply(current, target)


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff for unreachable artifacts: 5 s, 10 s, 20 s ... capped at 10 minutes."""
    return float(min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1)))


def _entry(now: datetime, event: str, reason: str, message: str, **kw: str | None) -> HistoryEntry:
    return HistoryEntry.model_validate(
        {"time": now, "event": event, "reason": reason, "message": message, **{k: v for k, v in kw.items() if v}}
    )


def _apply_digest(
    spec: ModelVersionSpec, status: ModelVersionStatus, obs: DigestObservation, generation: int, now: datetime
) -> tuple[ModelVersionStatus, list[EventSpec], float | None]:
    conds = status.conditions
    if obs.outcome == "unreachable":
        attempts = (status.verify_attempts or 0) + 1
        delay = backoff_seconds(attempts)
        msg = f"cannot read artifact (attempt {attempts}, retrying in {delay:.0f}s): {obs.error}"
        pending = status.model_copy(
            update={
                "phase": Phase.PENDING,
                "verify_attempts": attempts,
                "message": msg,
                "conditions": set_condition(conds, READY, "False", obs.reason, msg, now, generation),
            }
        )
        return pending, [EventSpec("Warning", obs.reason, msg)], delay
    verified = obs.outcome == "match"
    if verified:
        phase, reason, event = Phase.VERIFIED, "ArtifactVerified", "Verified"
        msg = f"artifact {spec.artifact.uri} matches {spec.artifact.digest}"
        extra = {"verified_digest": obs.actual, "verified_at": now, "artifact_size_bytes": obs.size_bytes}
    else:
        phase, reason, event = Phase.FAILED, "DigestMismatch", "Failed"
        msg = f"artifact {spec.artifact.uri} hashes to {obs.actual}, spec.artifact.digest is {spec.artifact.digest}"
        extra = {}
    final = status.model_copy(
        update={
            "phase": phase,
            "message": msg,
            "conditions": set_condition(conds, READY, "True" if verified else "False", reason, msg, now, generation),
            "history": append_history(status.history, _entry(now, event, reason, msg, to_value=phase)),
            **extra,
        }
    )
    return final, [EventSpec("Normal" if verified else "Warning", reason, msg)], None


def _archive_sibling(sibling: Sibling, promoted: str, now: datetime) -> Demotion:
    msg = f"archived: {promoted} was promoted to Production"
    return _move(sibling, Stage.ARCHIVED, SUPERSEDED, msg, now, "Normal")


def _move(
    sibling: Sibling,
    stage: Stage,
    reason: str,
    msg: str,
    now: datetime,
    event_type: Literal["Normal", "Warning"],
    actor: str | None = None,
) -> Demotion:
    """Another version to ``stage``: its status with a StageChanged history entry, and its Event."""
    status = sibling.status.model_copy(
        update={
            "stage": stage,
            "history": append_history(
                sibling.status.history,
                _entry(
                    now,
                    "StageChanged",
                    reason,
                    msg,
                    from_value=sibling.status.stage or Stage.NONE,
                    to_value=stage,
                    actor=actor,
                ),
            ),
        }
    )
    return Demotion(sibling.name, sibling.resource_version, status, EventSpec(event_type, reason, msg), stage)


def _champions(siblings: Sequence[Sibling], name: str) -> list[Champion]:
    """The model's current Production versions other than ``name``: what a challenger faces."""
    return [
        Champion(s.name, s.metrics or {}) for s in siblings if s.name != name and s.status.stage == Stage.PRODUCTION
    ]


def _with_validated(
    conds: list[Condition], result: GateResult | None, generation: int, now: datetime
) -> list[Condition]:
    """Condition ``Validated``: the last gate evaluation; dropped when no ModelPolicy applies."""
    if result is None or not result.applies:
        return [c for c in conds if c.type != VALIDATED]
    verdict = result.verdict()
    return set_condition(
        conds, VALIDATED, "False" if verdict.failed else "True", verdict.reason, verdict.message, now, generation
    )


def _unwritten_auto_promotion(spec: ModelVersionSpec, status: ModelVersionStatus, generation: int) -> Stage | None:
    """An automatic promotion whose status was written but whose ``spec.stage`` write was not
    (the operator stopped in between): the spec write is redone, the stage is not undone."""
    synced = get_condition(status.conditions, STAGE_SYNCED)
    current = Stage(status.stage or Stage.NONE)
    if (
        spec.stage == Stage.NONE
        and current in (Stage.STAGING, Stage.PRODUCTION)
        and synced is not None
        and synced.reason == AUTO_PROMOTED
        and synced.observed_generation == generation
    ):
        return current
    return None


def _production_demotions(name: str, siblings: Sequence[Sibling], now: datetime) -> list[Demotion]:
    return [
        _archive_sibling(s, name, now)
        for s in siblings
        if s.name != name and (s.status.stage == Stage.PRODUCTION or s.requested_stage == Stage.PRODUCTION)
    ]


def _auto_promote(
    name: str,
    spec: ModelVersionSpec,
    status: ModelVersionStatus,
    siblings: Sequence[Sibling],
    policies: Sequence[PolicyRef],
    generation: int,
    now: datetime,
) -> StageOutcome | None:
    """A newly verified version, no stage requested: the policy may move it without a person."""
    target = auto_promotion_target(policies)
    if target is None:
        return None
    result = evaluate_gates(policies, spec.metrics, _champions(siblings, name))
    gates = result.verdict()
    conds = _with_validated(status.conditions, result, generation, now)
    waived = approval_waived(policies)
    verdict = evaluate(
        TransitionRequest(Stage.NONE, target, Phase(status.phase), spec.approval, now, gates, approval_waived=waived)
    )
    if verdict.failed:
        msg = f"automatic promotion to {target} refused: {verdict.message}"
        refused = status.model_copy(
            update={
                "conditions": conds,
                "history": append_history(
                    status.history,
                    _entry(
                        now,
                        "AutoPromotionRefused",
                        verdict.reason,
                        msg,
                        from_value=Stage.NONE,
                        to_value=target,
                        actor=OPERATOR_ACTOR,
                    ),
                ),
            }
        )
        return StageOutcome(refused, [EventSpec("Warning", verdict.reason, msg)])
    demotions = _production_demotions(name, siblings, now) if target == Stage.PRODUCTION else []
    msg = f"stage {Stage.NONE} -> {target}: {gates.message}"
    if target == Stage.PRODUCTION:
        msg += f"; Production approval waived by {result.source}"
    if demotions:
        msg += f"; archived {', '.join(d.name for d in demotions)}"
    promoted = status.model_copy(
        update={
            "stage": target,
            "conditions": set_condition(conds, STAGE_SYNCED, "True", AUTO_PROMOTED, msg, now, generation),
            "history": append_history(
                status.history,
                _entry(
                    now,
                    "StageChanged",
                    AUTO_PROMOTED,
                    msg,
                    from_value=Stage.NONE,
                    to_value=target,
                    actor=OPERATOR_ACTOR,
                ),
            ),
        }
    )
    return StageOutcome(promoted, [EventSpec("Normal", AUTO_PROMOTED, msg)], demotions, request_stage=target)


def _apply_stage(
    name: str,
    spec: ModelVersionSpec,
    status: ModelVersionStatus,
    siblings: Sequence[Sibling],
    generation: int,
    now: datetime,
    policies: Sequence[PolicyRef] = (),
    just_verified: bool = False,
) -> StageOutcome:
    current = Stage(status.stage or Stage.NONE)
    target = Stage(spec.stage)
    conds = status.conditions
    unwritten = _unwritten_auto_promotion(spec, status, generation)
    if unwritten is not None:
        return StageOutcome(status, request_stage=unwritten)
    if current == target:
        refusal: list[EventSpec] = []
        if just_verified and target == Stage.NONE and policies:
            auto = _auto_promote(name, spec, status, siblings, policies, generation, now)
            if auto is not None and auto.request_stage is not None:
                return auto
            if auto is not None:  # refused: recorded, and the version stays where it was asked to be
                status, conds, refusal = auto.status, auto.status.conditions, auto.events
        msg = f"stage is {target}"
        return StageOutcome(
            status.model_copy(
                update={
                    "stage": target,
                    "conditions": set_condition(conds, STAGE_SYNCED, "True", "StageApplied", msg, now, generation),
                }
            ),
            refusal,
        )
    result = (
        evaluate_gates(policies, spec.metrics, _champions(siblings, name)) if gates_apply(current, target) else None
    )
    conds = _with_validated(conds, result, generation, now)
    waived = approval_waived(policies)
    gates = result.verdict() if result is not None and result.applies else None
    verdict = evaluate(
        TransitionRequest(
            current,
            target,
            Phase(status.phase),
            spec.approval,
            now,
            gates,
            approval_waived=waived,
            registered_approval=status.registered_approval,
            self_approval_refused_by=self_approval_refused_by(policies),
        )
    )
    if verdict.failed:
        msg = f"transition {current} -> {target} refused: {verdict.message}"
        if verdict.reason == "WaitingForVerification":
            msg = f"transition {current} -> {target} waits: {verdict.message}"
        previous = get_condition(conds, STAGE_SYNCED)
        repeated = (
            previous is not None
            and previous.reason == verdict.reason
            and previous.message == msg
            and previous.observed_generation == generation
        )
        event_reason = verdict.reason if verdict.reason in OWN_EVENT_REASONS else "TransitionRefused"
        quiet = repeated or verdict.reason == "WaitingForVerification"
        events = [] if quiet else [EventSpec("Warning", event_reason, msg)]
        history = status.history
        if events:
            history = append_history(
                history,
                _entry(now, "TransitionRefused", verdict.reason, msg, from_value=current, to_value=target),
            )
        return StageOutcome(
            status.model_copy(
                update={
                    "stage": current,
                    "history": history,
                    "conditions": set_condition(conds, STAGE_SYNCED, "False", verdict.reason, msg, now, generation),
                }
            ),
            events,
        )
    demotions: list[Demotion] = []
    if target == Stage.PRODUCTION:
        demotions = _production_demotions(name, siblings, now)
    approver = spec.approval.approved_by if spec.approval and target == Stage.PRODUCTION else None
    msg = f"stage {current} -> {target}"
    if approver and spec.approval:
        msg += f", approved by {approver}: {spec.approval.reason}"
    elif target == Stage.PRODUCTION and waived and result is not None:
        msg += f", approval waived by {result.source}"
    if gates is not None:
        msg += f"; {gates.message}"
    if demotions:
        msg += f"; archived {', '.join(d.name for d in demotions)}"
    return StageOutcome(
        status.model_copy(
            update={
                "stage": target,
                "conditions": set_condition(conds, STAGE_SYNCED, "True", "StageApplied", msg, now, generation),
                "history": append_history(
                    status.history,
                    _entry(
                        now,
                        "StageChanged",
                        "Promoted" if target == Stage.PRODUCTION else "StageChanged",
                        msg,
                        from_value=current,
                        to_value=target,
                        actor=approver,
                    ),
                ),
            }
        ),
        [EventSpec("Normal", "StageChanged", msg)],
        demotions,
    )


def decide(
    name: str,
    generation: int,
    spec: ModelVersionSpec,
    status: ModelVersionStatus,
    obs: Observations,
    now: datetime,
) -> Decision:
    """The next status of ModelVersion ``name``, its Events, and the siblings to archive."""
    events: list[EventSpec] = []
    retry: float | None = None
    new = status
    if not status.history:  # the first reconcile: the approval it finds is the registrant's (stage_policy)
        new = new.model_copy(
            update={
                "history": [_entry(now, "Registered", "Created", f"{spec.model_name} {spec.version} registered")],
                "registered_approval": spec.approval,
            }
        )
    if needs_digest_check(new) and obs.digest is not None:
        new, evs, retry = _apply_digest(spec, new, obs.digest, generation, now)
        events += evs
    just_verified = status.phase != Phase.VERIFIED and new.phase == Phase.VERIFIED
    stage = _apply_stage(name, spec, new, obs.siblings, generation, now, obs.policies, just_verified)
    new, demotions = stage.status, stage.demotions
    events += stage.events
    new = new.model_copy(update={"observed_generation": generation, "conditions": _kstatus(new, generation, now)})
    return Decision(
        new, tuple(events), tuple(demotions), retry, changed=new != status, request_stage=stage.request_stage
    )


def _kstatus(status: ModelVersionStatus, generation: int, now: datetime) -> list[Condition]:
    """Reconciling while the artifact cannot be read yet (or a stage waits for it); Stalled on a
    digest mismatch, an artifact the operator's policy refuses, or a refused stage transition: a
    person must register a new version, change the policy or approve."""
    ready = get_condition(status.conditions, READY)
    synced = get_condition(status.conditions, STAGE_SYNCED)
    stalled: tuple[str, str] | None = None
    reconciling: str | None = None
    if status.phase == Phase.FAILED:
        stalled = (ready.reason, ready.message) if ready is not None else ("Failed", status.message or "")
    elif ready is not None and ready.reason == "ArtifactRefused":  # the operator's policy: a person must act
        stalled = (ready.reason, ready.message)
    elif synced is not None and synced.status == "False" and synced.reason != "WaitingForVerification":
        stalled = (synced.reason, synced.message)
    elif status.phase == Phase.PENDING:
        reconciling = ready.message if ready is not None else "waiting for the artifact digest check"
    return kstatus_conditions(
        status.conditions,
        stalled=stalled,
        reconciling=reconciling,
        idle_reason=ready.reason if ready is not None else "Reconciled",
        now=now,
        observed_generation=generation,
    )


# ------------------------------------------------------------------ canary rolled back


@dataclass(frozen=True)
class RolledBackCanary:
    """A ModelDeployment whose canary of ``failed`` was rolled back (its ``status.failedVersion``),
    as the registry needs it. ``stable`` is the version its stable track kept serving."""

    deployment: str
    failed: Sibling
    stable: Sibling | None
    rolled_back_at: datetime
    """The deployment's last ``RolledBack`` history entry."""
    cause: str
    """Why: ``AnalysisFailed``, ``ProgressDeadlineExceeded`` or ``Aborted``."""
    serves_stable_elsewhere: bool = False
    """``failed`` serves another deployment's stable track: the registry cannot say both."""
    other_production: tuple[str, ...] = ()
    """Versions of the model other than these two in Production (a promotion after the rollback)."""


def _last_stage_change(status: ModelVersionStatus) -> HistoryEntry | None:
    return next((h for h in reversed(status.history) if h.event == "StageChanged"), None)


def _promoted_at(status: ModelVersionStatus) -> datetime | None:
    """When the version last entered Production (None: not in its history any more)."""
    entry = next((h for h in reversed(status.history) if h.to_value == Stage.PRODUCTION), None)
    return entry.time if entry is not None else None


def rollback_stage_changes(rb: RolledBackCanary, now: datetime) -> tuple[Demotion, ...]:
    """The registry after a canary rollback: the version serving stable traffic is the model's
    Production version, not the one rolled back.

    - The failed version, if it is in Production and was put there no later than the rollback,
      goes to Archived (a person who promotes it again after the rollback is not overruled).
    - The stable version, if Production was taken from it by a promotion (``Superseded``) no
      later than the rollback, and no version of the model is in Production any more, goes back
      to Production (the stage it held before the version that failed).

    A version that serves another deployment's stable track keeps Production: nothing changes.
    Idempotent: applied, the next call returns nothing; stage changes a person makes after the
    rollback are never undone. Returned in the order to apply: the failed version first, so a
    model never has two Production versions.
    """
    failed, stable = rb.failed, rb.stable
    if rb.serves_stable_elsewhere or (stable is not None and stable.name == failed.name):
        return ()
    out: list[Demotion] = []
    failed_stage = Stage(failed.status.stage or Stage.NONE)
    promoted = _promoted_at(failed.status)
    if failed_stage == Stage.PRODUCTION and (promoted is None or promoted <= rb.rolled_back_at):
        msg = f"stage Production -> Archived: ModelDeployment {rb.deployment} rolled its canary back ({rb.cause})"
        if stable is not None:
            msg += f"; {stable.name} keeps serving its stable traffic"
        out.append(_move(failed, Stage.ARCHIVED, ROLLED_BACK, msg, now, "Warning", OPERATOR_ACTOR))
        failed_stage = Stage.ARCHIVED
    if stable is None or failed_stage == Stage.PRODUCTION or rb.other_production:
        return tuple(out)
    if stable.status.phase != Phase.VERIFIED:
        return tuple(out)
    last = _last_stage_change(stable.status)
    if (
        Stage(stable.status.stage or Stage.NONE) == Stage.ARCHIVED
        and last is not None
        and last.reason == SUPERSEDED
        and last.time <= rb.rolled_back_at
    ):
        msg = (
            f"stage Archived -> Production: restored, it serves ModelDeployment {rb.deployment}'s stable traffic "
            f"after the canary of {failed.name} was rolled back ({rb.cause})"
        )
        out.append(_move(stable, Stage.PRODUCTION, ROLLED_BACK, msg, now, "Normal", OPERATOR_ACTOR))
    return tuple(out)
