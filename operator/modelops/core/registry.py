"""The ModelVersion reconcile decision: verification outcome and stage policy to a new status.

Pure: observations (the digest check's outcome, the sibling versions of the same model) and
``now`` come in; the next status, the Events to record and the versions to archive come out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from modelops.api.base import HistoryEntry
from modelops.api.modelversion import ModelVersionSpec, ModelVersionStatus, Phase, Stage
from modelops.core.conditions import get_condition, set_condition
from modelops.core.history import append_history
from modelops.core.stage_policy import TransitionRequest, evaluate

READY = "Ready"
STAGE_SYNCED = "StageSynced"
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


@dataclass(frozen=True)
class Observations:
    digest: DigestObservation | None
    siblings: tuple[Sibling, ...] = ()


@dataclass(frozen=True)
class EventSpec:
    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Demotion:
    """Archive a sibling that held Production: its spec stage and its status, with the reason."""

    name: str
    resource_version: str
    status: ModelVersionStatus
    event: EventSpec


@dataclass(frozen=True)
class Decision:
    status: ModelVersionStatus
    events: tuple[EventSpec, ...] = ()
    demotions: tuple[Demotion, ...] = ()
    retry_after_seconds: float | None = None
    changed: bool = field(default=True)


def needs_digest_check(status: ModelVersionStatus) -> bool:
    """Only a Pending version is (re)read; Verified and Failed are final for an immutable artifact."""
    return status.phase == Phase.PENDING


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
    old_stage = sibling.status.stage or Stage.NONE
    msg = f"archived: {promoted} was promoted to Production"
    status = sibling.status.model_copy(
        update={
            "stage": Stage.ARCHIVED,
            "history": append_history(
                sibling.status.history,
                _entry(now, "StageChanged", "Superseded", msg, from_value=old_stage, to_value=Stage.ARCHIVED),
            ),
        }
    )
    return Demotion(sibling.name, sibling.resource_version, status, EventSpec("Normal", "Superseded", msg))


def _apply_stage(
    name: str,
    spec: ModelVersionSpec,
    status: ModelVersionStatus,
    siblings: Sequence[Sibling],
    generation: int,
    now: datetime,
) -> tuple[ModelVersionStatus, list[EventSpec], list[Demotion]]:
    current = Stage(status.stage or Stage.NONE)
    target = Stage(spec.stage)
    conds = status.conditions
    if current == target:
        msg = f"stage is {target}"
        return (
            status.model_copy(
                update={
                    "stage": target,
                    "conditions": set_condition(conds, STAGE_SYNCED, "True", "StageApplied", msg, now, generation),
                }
            ),
            [],
            [],
        )
    verdict = evaluate(TransitionRequest(current, target, Phase(status.phase), spec.approval, now))
    if verdict.failed:
        msg = f"transition {current} -> {target} refused: {verdict.message}"
        if verdict.reason == "WaitingForVerification":
            msg = f"transition {current} -> {target} waits: {verdict.message}"
        previous = get_condition(conds, STAGE_SYNCED)
        repeated = (
            previous is not None and previous.reason == verdict.reason and previous.observed_generation == generation
        )
        events = (
            []
            if repeated or verdict.reason == "WaitingForVerification"
            else [EventSpec("Warning", "TransitionRefused", msg)]
        )
        history = status.history
        if events:
            history = append_history(
                history,
                _entry(now, "TransitionRefused", verdict.reason, msg, from_value=current, to_value=target),
            )
        return (
            status.model_copy(
                update={
                    "stage": current,
                    "history": history,
                    "conditions": set_condition(conds, STAGE_SYNCED, "False", verdict.reason, msg, now, generation),
                }
            ),
            events,
            [],
        )
    demotions: list[Demotion] = []
    if target == Stage.PRODUCTION:
        demotions = [
            _archive_sibling(s, name, now)
            for s in siblings
            if s.name != name and (s.status.stage == Stage.PRODUCTION or s.requested_stage == Stage.PRODUCTION)
        ]
    approver = spec.approval.approved_by if spec.approval and target == Stage.PRODUCTION else None
    msg = f"stage {current} -> {target}"
    if approver and spec.approval:
        msg += f", approved by {approver}: {spec.approval.reason}"
    if demotions:
        msg += f"; archived {', '.join(d.name for d in demotions)}"
    return (
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
    if not status.history:
        new = new.model_copy(
            update={"history": [_entry(now, "Registered", "Created", f"{spec.model_name} {spec.version} registered")]}
        )
    if needs_digest_check(new) and obs.digest is not None:
        new, evs, retry = _apply_digest(spec, new, obs.digest, generation, now)
        events += evs
    new, evs, demotions = _apply_stage(name, spec, new, obs.siblings, generation, now)
    events += evs
    new = new.model_copy(update={"observed_generation": generation})
    return Decision(new, tuple(events), tuple(demotions), retry, changed=new != status)
