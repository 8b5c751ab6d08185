"""Which stage transitions a ModelVersion may make: a chain of pure checks.

Each check returns a :class:`Verdict` ``(reason, message, failed)``, in the style of cert-manager's
certificate policies; the first failure is the answer. Adding a gate is adding a function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from modelops.api.modelversion import Approval, Phase, Stage

CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class TransitionRequest:
    current: Stage
    target: Stage
    phase: Phase
    approval: Approval | None
    now: datetime
    gates: Verdict | None = None
    """The model's validation gates (:mod:`modelops.core.validation_gates`); None: no ModelPolicy."""
    approval_waived: bool = False
    """Every ModelPolicy of the model waives the Production approval."""
    registered_approval: Approval | None = None
    """``status.registeredApproval``: the approval the version had when the operator first saw it."""
    self_approval_refused_by: tuple[str, ...] = ()
    """The model's ModelPolicies with ``selfApproval: Refused``: the registered approval does not count."""


@dataclass(frozen=True)
class Verdict:
    reason: str
    message: str
    failed: bool


OK = Verdict("", "", failed=False)
Check = Callable[[TransitionRequest], Verdict]

_NEEDS_VERIFIED = (Stage.STAGING, Stage.PRODUCTION)


def waiting_for_verification(req: TransitionRequest) -> Verdict:
    """Not a refusal yet: the digest check has not finished."""
    if req.target in _NEEDS_VERIFIED and req.phase == Phase.PENDING:
        return Verdict("WaitingForVerification", f"stage {req.target} waits for the artifact digest check", True)
    return OK


def requires_verified(req: TransitionRequest) -> Verdict:
    if req.target in _NEEDS_VERIFIED and req.phase != Phase.VERIFIED:
        return Verdict(
            "NotVerified",
            f"stage {req.target} requires a verified artifact, but phase is {req.phase}",
            True,
        )
    return OK


def passes_validation(req: TransitionRequest) -> Verdict:
    """The ModelPolicy gates (metric bounds, champion/challenger), evaluated by the caller."""
    if req.gates is not None and req.gates.failed:
        return req.gates
    return OK


def requires_approval(req: TransitionRequest) -> Verdict:
    if req.target != Stage.PRODUCTION or req.approval_waived:
        return OK
    if req.approval is None:
        return Verdict(
            "ApprovalRequired",
            "stage Production requires spec.approval with approvedBy, approvedAt and reason",
            True,
        )
    if req.approval.approved_at > req.now + CLOCK_SKEW:
        return Verdict(
            "ApprovalInFuture",
            f"spec.approval.approvedAt {req.approval.approved_at.isoformat()} is in the future",
            True,
        )
    return OK


SELF_APPROVAL_REFUSED = "SelfApprovalRefused"


def refuses_self_approval(req: TransitionRequest) -> Verdict:
    """The approval must not be the one the version was registered with, where a policy says so.

    Whoever may create a ModelVersion may write its ``spec.approval`` at creation, and ``create``
    cannot be limited by name (a retraining Job's Role has it). An approval written later needs
    ``update``/``patch`` on ModelVersions: the approvers' right. So an approval equal to
    ``status.registeredApproval`` is the registrant's own and counts as absent.
    """
    if req.target != Stage.PRODUCTION or req.approval_waived or not req.self_approval_refused_by:
        return OK
    if req.approval is None or req.approval != req.registered_approval:
        return OK
    policies = ", ".join(f"ModelPolicy {p}" for p in req.self_approval_refused_by)
    return Verdict(
        SELF_APPROVAL_REFUSED,
        f"spec.approval (approvedBy {req.approval.approved_by}) was already set when the version was registered, "
        f"so it is its registrant's own and does not count ({policies}: selfApproval Refused); an approver must "
        "write a new spec.approval (modelops registry promote --to Production --approved-by ... --reason ...)",
        True,
    )


DEFAULT_CHECKS: tuple[Check, ...] = (
    waiting_for_verification,
    requires_verified,
    passes_validation,
    requires_approval,
    refuses_self_approval,
)


def evaluate(req: TransitionRequest, checks: Sequence[Check] = DEFAULT_CHECKS) -> Verdict:
    """The first failing check, or OK. Moving to the current stage or to Archived always passes."""
    if req.target == req.current:
        return OK
    for check in checks:
        verdict = check(req)
        if verdict.failed:
            return verdict
    return OK
