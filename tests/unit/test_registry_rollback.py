"""The registry after a canary rollback (core.registry.rollback_stage_changes): the version that
keeps serving stable traffic is the model's Production version, not the one rolled back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelops.api.base import HistoryEntry
from modelops.api.modelversion import ModelVersionStatus, Phase, Stage
from modelops.core.registry import RolledBackCanary, Sibling, rollback_stage_changes

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PROMOTED = T0  # v2 promoted to Production, v1 archived (Superseded) by it
ROLLED_BACK = T0 + timedelta(minutes=10)
NOW = T0 + timedelta(minutes=11)


def entry(at: datetime, reason: str, before: Stage, after: Stage) -> HistoryEntry:
    return HistoryEntry(time=at, event="StageChanged", reason=reason, message="", from_value=before, to_value=after)


def version(name: str, stage: Stage, *history: HistoryEntry, phase: Phase = Phase.VERIFIED) -> Sibling:
    status = ModelVersionStatus(phase=phase, stage=stage, history=list(history))
    return Sibling(name=name, requested_stage=stage, status=status, resource_version="7")


V2_PROMOTED = entry(PROMOTED, "Promoted", Stage.STAGING, Stage.PRODUCTION)
V1_SUPERSEDED = entry(PROMOTED, "Superseded", Stage.PRODUCTION, Stage.ARCHIVED)
V1_ARCHIVED_BY_HAND = entry(PROMOTED, "StageChanged", Stage.PRODUCTION, Stage.ARCHIVED)


def changes(
    failed: Sibling,
    stable: Sibling | None,
    elsewhere: bool = False,
    others: tuple[str, ...] = (),
) -> list[tuple[str, Stage]]:
    rb = RolledBackCanary("churn", failed, stable, ROLLED_BACK, "AnalysisFailed", elsewhere, others)
    return [(c.name, c.stage) for c in rollback_stage_changes(rb, NOW)]


@pytest.mark.parametrize(
    ("failed", "stable", "elsewhere", "others", "expected"),
    [
        # the usual case: v2 promoted (v1 superseded), its canary rolled back
        (
            version("v2", Stage.PRODUCTION, V2_PROMOTED),
            version("v1", Stage.ARCHIVED, V1_SUPERSEDED),
            False,
            (),
            [("v2", Stage.ARCHIVED), ("v1", Stage.PRODUCTION)],
        ),
        # applied already: nothing more
        (
            version("v2", Stage.ARCHIVED, V2_PROMOTED),
            version("v1", Stage.PRODUCTION, V1_SUPERSEDED),
            False,
            (),
            [],
        ),
        # the operator stopped between the two writes: the restore is still due
        (
            version("v2", Stage.ARCHIVED, V2_PROMOTED),
            version("v1", Stage.ARCHIVED, V1_SUPERSEDED),
            False,
            (),
            [("v1", Stage.PRODUCTION)],
        ),
        # promoted again by a person after the rollback: not overruled
        (
            version("v2", Stage.PRODUCTION, entry(NOW, "Promoted", Stage.ARCHIVED, Stage.PRODUCTION)),
            version("v1", Stage.ARCHIVED, V1_SUPERSEDED),
            False,
            (),
            [],
        ),
        # its promotion is no longer in the (bounded) history: it predates the rollback
        (
            version("v2", Stage.PRODUCTION),
            version("v1", Stage.ARCHIVED, V1_SUPERSEDED),
            False,
            (),
            [("v2", Stage.ARCHIVED), ("v1", Stage.PRODUCTION)],
        ),
        # v2 serves another deployment's stable track: the registry keeps it in Production
        (
            version("v2", Stage.PRODUCTION, V2_PROMOTED),
            version("v1", Stage.ARCHIVED, V1_SUPERSEDED),
            True,
            (),
            [],
        ),
        # v1 was archived by a person, not superseded: not restored
        (
            version("v2", Stage.PRODUCTION, V2_PROMOTED),
            version("v1", Stage.ARCHIVED, V1_ARCHIVED_BY_HAND),
            False,
            (),
            [("v2", Stage.ARCHIVED)],
        ),
        # v1 superseded after the rollback (by a later promotion): not restored
        (
            version("v2", Stage.ARCHIVED, V2_PROMOTED),
            version("v1", Stage.ARCHIVED, entry(NOW, "Superseded", Stage.PRODUCTION, Stage.ARCHIVED)),
            False,
            (),
            [],
        ),
        # another version went to Production since: no second Production version
        (
            version("v2", Stage.ARCHIVED, V2_PROMOTED),
            version("v1", Stage.ARCHIVED, V1_SUPERSEDED),
            False,
            ("v3",),
            [],
        ),
        # v1 still Production (v2 was never in Production: a Staging deployment): nothing
        (
            version("v2", Stage.STAGING),
            version("v1", Stage.PRODUCTION, V1_SUPERSEDED),
            False,
            (),
            [],
        ),
        # no stable (another model's version serves): only the demotion
        (version("v2", Stage.PRODUCTION, V2_PROMOTED), None, False, (), [("v2", Stage.ARCHIVED)]),
        # the stable is not verified: not restored
        (
            version("v2", Stage.PRODUCTION, V2_PROMOTED),
            version("v1", Stage.ARCHIVED, V1_SUPERSEDED, phase=Phase.FAILED),
            False,
            (),
            [("v2", Stage.ARCHIVED)],
        ),
    ],
)
def test_rollback_stage_changes(failed, stable, elsewhere, others, expected):
    assert changes(failed, stable, elsewhere, others) == expected


def test_the_changes_carry_history_entries_and_events_naming_the_rollback():
    failed = version("v2", Stage.PRODUCTION, V2_PROMOTED)
    stable = version("v1", Stage.ARCHIVED, V1_SUPERSEDED)
    rb = RolledBackCanary("churn", failed, stable, ROLLED_BACK, "AnalysisFailed")
    demote, restore = rollback_stage_changes(rb, NOW)
    assert (demote.status.stage, demote.resource_version) == (Stage.ARCHIVED, "7")
    last = demote.status.history[-1]
    assert (last.time, last.event, last.reason, last.from_value, last.to_value, last.actor) == (
        NOW,
        "StageChanged",
        "RolledBack",
        "Production",
        "Archived",
        "modelops-operator",
    )
    assert last.message == (
        "stage Production -> Archived: ModelDeployment churn rolled its canary back (AnalysisFailed); "
        "v1 keeps serving its stable traffic"
    )
    assert (demote.event.type, demote.event.reason, demote.event.message) == ("Warning", "RolledBack", last.message)
    assert restore.status.stage == Stage.PRODUCTION
    back = restore.status.history[-1]
    assert (back.reason, back.from_value, back.to_value) == ("RolledBack", "Archived", "Production")
    assert back.message == (
        "stage Archived -> Production: restored, it serves ModelDeployment churn's stable traffic after the "
        "canary of v2 was rolled back (AnalysisFailed)"
    )
    assert (restore.event.type, restore.event.reason) == ("Normal", "RolledBack")
    # applied, the same inputs decide nothing more
    applied = RolledBackCanary(
        "churn",
        Sibling("v2", Stage.ARCHIVED, demote.status, "8"),
        Sibling("v1", Stage.PRODUCTION, restore.status, "8"),
        ROLLED_BACK,
        "AnalysisFailed",
    )
    assert rollback_stage_changes(applied, NOW + timedelta(minutes=1)) == ()
