"""Self-approval: the approval a ModelVersion was registered with does not count for Production
under a ModelPolicy with ``selfApproval: Refused`` (the default). Pure tables over the stage policy,
the policies' verdict and the registry decision that records ``status.registeredApproval``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelops.api.base import HistoryEntry
from modelops.api.modelpolicy import ModelPolicySpec, SelfApproval
from modelops.api.modelversion import Approval, ModelVersionSpec, ModelVersionStatus, Phase, Stage
from modelops.core.conditions import get_condition
from modelops.core.registry import Observations, decide
from modelops.core.stage_policy import OK, SELF_APPROVAL_REFUSED, TransitionRequest, Verdict, evaluate
from modelops.core.validation_gates import PolicyRef, describe, self_approval_refused_by

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64
JOB = Approval(approved_by="alice@example.com", approved_at=NOW - timedelta(hours=2), reason="looks good")
PERSON = Approval(approved_by="dana@example.com", approved_at=NOW - timedelta(hours=1), reason="reviewed")
SAME_AS_JOB = Approval(approved_by="alice@example.com", approved_at=NOW - timedelta(hours=2), reason="looks good")
JOB_REDATED = Approval(approved_by="alice@example.com", approved_at=NOW - timedelta(minutes=5), reason="looks good")
REFUSED_BY = ("churn",)

SELF_MESSAGE = (
    "spec.approval (approvedBy alice@example.com) was already set when the version was registered, so it is its "
    "registrant's own and does not count (ModelPolicy churn: selfApproval Refused); an approver must write a new "
    "spec.approval (modelops registry promote --to Production --approved-by ... --reason ...)"
)


def request(
    target: Stage = Stage.PRODUCTION,
    approval: Approval | None = JOB,
    registered: Approval | None = JOB,
    refused_by: tuple[str, ...] = REFUSED_BY,
    waived: bool = False,
    current: Stage = Stage.NONE,
) -> TransitionRequest:
    return TransitionRequest(
        current,
        target,
        Phase.VERIFIED,
        approval,
        NOW,
        approval_waived=waived,
        registered_approval=registered,
        self_approval_refused_by=refused_by,
    )


SELF = Verdict(SELF_APPROVAL_REFUSED, SELF_MESSAGE, True)


@pytest.mark.parametrize(
    ("req", "expected"),
    [
        pytest.param(request(), SELF, id="registered-approval-refused"),
        pytest.param(request(approval=SAME_AS_JOB), SELF, id="an-equal-approval-is-the-same-approval"),
        pytest.param(request(approval=PERSON), OK, id="an-approval-written-later-counts"),
        pytest.param(request(approval=JOB_REDATED), OK, id="a-rewritten-approval-counts"),
        pytest.param(request(registered=None, approval=PERSON), OK, id="registered-without-approval"),
        pytest.param(request(registered=None), OK, id="no-record-an-older-operator-saw-it-first"),
        pytest.param(request(refused_by=()), OK, id="every-policy-allows-self-approval"),
        pytest.param(request(waived=True), OK, id="approval-waived"),
        pytest.param(request(target=Stage.STAGING), OK, id="staging-needs-no-approval"),
        pytest.param(request(target=Stage.ARCHIVED), OK, id="archiving"),
        pytest.param(request(current=Stage.PRODUCTION), OK, id="already-production"),
        pytest.param(
            request(approval=None),
            Verdict(
                "ApprovalRequired",
                "stage Production requires spec.approval with approvedBy, approvedAt and reason",
                True,
            ),
            id="no-approval-at-all",
        ),
        pytest.param(
            request(refused_by=("churn", "churn-strict")),
            Verdict(
                SELF_APPROVAL_REFUSED,
                SELF_MESSAGE.replace(
                    "(ModelPolicy churn: selfApproval", "(ModelPolicy churn, ModelPolicy churn-strict: selfApproval"
                ),
                True,
            ),
            id="names-every-refusing-policy",
        ),
    ],
)
def test_stage_policy_verdict(req: TransitionRequest, expected: Verdict) -> None:
    assert evaluate(req) == expected


def policy(name: str, **spec: Any) -> PolicyRef:
    return PolicyRef(name, ModelPolicySpec.model_validate({"modelName": "churn", **spec}))


@pytest.mark.parametrize(
    ("policies", "expected"),
    [
        pytest.param([], (), id="no-policy"),
        pytest.param([policy("churn")], ("churn",), id="default-refused"),
        pytest.param([policy("churn", selfApproval="Allowed")], (), id="allowed"),
        pytest.param(
            [policy("b", selfApproval="Refused"), policy("a", selfApproval="Allowed"), policy("c")],
            ("b", "c"),
            id="any-refusing-policy-sorted",
        ),
        pytest.param([PolicyRef("broken", None, "spec.gates: bad")], (), id="invalid-policy-refuses-by-its-gates"),
    ],
)
def test_policies_that_refuse_self_approval(policies: list[PolicyRef], expected: tuple[str, ...]) -> None:
    assert self_approval_refused_by(policies) == expected


def test_the_default_is_refused_and_only_allowed_is_described() -> None:
    assert ModelPolicySpec.model_validate({"modelName": "churn"}).self_approval == SelfApproval.REFUSED
    assert describe(ModelPolicySpec.model_validate({"modelName": "churn"})) == (
        "model churn: no metric bounds; Production needs spec.approval"
    )
    allowed = ModelPolicySpec.model_validate({"modelName": "churn", "selfApproval": "Allowed"})
    assert describe(allowed) == (
        "model churn: no metric bounds; Production needs spec.approval; an approval set at registration counts"
    )
    waived = ModelPolicySpec.model_validate(
        {"modelName": "churn", "selfApproval": "Allowed", "productionApproval": "Waived"}
    )
    assert describe(waived) == "model churn: no metric bounds; Production approval waived"


# ------------------------------------------------------------------ the registry decision


def spec(stage: Stage = Stage.PRODUCTION, approval: Approval | None = JOB) -> ModelVersionSpec:
    return ModelVersionSpec.model_validate(
        {
            "modelName": "churn",
            "version": "9",
            "artifact": {"uri": "file:///m9.joblib", "digest": DIGEST},
            "metrics": {"auc": 0.93},
            "stage": stage,
            "approval": approval.model_dump(by_alias=True) if approval else None,
        }
    )


FIRST_SIGHT = ModelVersionStatus(phase=Phase.VERIFIED, stage=Stage.NONE)
SEEN = FIRST_SIGHT.model_copy(
    update={"history": [HistoryEntry(time=NOW - timedelta(days=1), event="Registered", reason="Created")]}
)
SEEN_WITH_JOB = SEEN.model_copy(update={"registered_approval": JOB})


@pytest.mark.parametrize(
    ("mv", "status", "generation", "policies", "stage", "reason", "recorded"),
    [
        pytest.param(spec(), FIRST_SIGHT, 1, [policy("churn")], Stage.NONE, SELF_APPROVAL_REFUSED, JOB, id="created"),
        pytest.param(
            spec(), FIRST_SIGHT, 3, [policy("churn")], Stage.NONE, SELF_APPROVAL_REFUSED, JOB, id="first-seen-late"
        ),
        pytest.param(spec(), SEEN_WITH_JOB, 2, [policy("churn")], Stage.NONE, SELF_APPROVAL_REFUSED, JOB, id="kept"),
        pytest.param(
            spec(approval=PERSON),
            SEEN_WITH_JOB,
            2,
            [policy("churn")],
            Stage.PRODUCTION,
            "StageApplied",
            JOB,
            id="re-approved",
        ),
        pytest.param(
            spec(approval=PERSON),
            SEEN,
            2,
            [policy("churn")],
            Stage.PRODUCTION,
            "StageApplied",
            None,
            id="approved-after-registration",
        ),
        pytest.param(
            spec(),
            FIRST_SIGHT,
            1,
            [policy("churn", selfApproval="Allowed")],
            Stage.PRODUCTION,
            "StageApplied",
            JOB,
            id="allowed",
        ),
        pytest.param(spec(), FIRST_SIGHT, 1, [], Stage.PRODUCTION, "StageApplied", JOB, id="no-policy"),
        pytest.param(
            spec(Stage.NONE, None),
            FIRST_SIGHT,
            1,
            [policy("churn")],
            Stage.NONE,
            "StageApplied",
            None,
            id="registered-without-approval",
        ),
    ],
)
def test_registry_records_the_registration_approval_and_refuses_it(
    mv: ModelVersionSpec,
    status: ModelVersionStatus,
    generation: int,
    policies: list[PolicyRef],
    stage: Stage,
    reason: str,
    recorded: Approval | None,
) -> None:
    d = decide("churn-v9", generation, mv, status, Observations(None, (), tuple(policies)), NOW)
    synced = get_condition(d.status.conditions, "StageSynced")
    assert synced is not None
    assert (d.status.stage, synced.reason, d.status.registered_approval) == (stage, reason, recorded)
    expected = [("Warning", SELF_APPROVAL_REFUSED)] if reason == SELF_APPROVAL_REFUSED else []
    if stage == Stage.PRODUCTION:
        expected = [("Normal", "StageChanged")]
    assert [(e.type, e.reason) for e in d.events] == expected
