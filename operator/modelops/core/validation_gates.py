"""Validation gates: does a candidate ModelVersion pass its model's ModelPolicies? Pure.

Each gate is one check returning a :class:`~modelops.core.stage_policy.Verdict`
``(reason, message, failed)``, in the style of cert-manager's certificate policies. Unlike the
stage-policy chain, every check runs: a refusal lists every failing metric, not only the first.

- A bound (``auc >= 0.85``) fails when the candidate's value is on the wrong side of it. A value
  exactly at the bound passes ``>=`` and ``<=``.
- A **missing** metric (absent from ``spec.metrics``, or not a finite number) is a refusal, never
  a pass: the policy asked for evidence the version does not carry.
- Champion/challenger: the candidate may be worse than the model's current Production version by
  at most ``tolerance`` on each named metric (direction from ``higherIsBetter``). A shortfall
  beyond the tolerance by no more than float rounding (1e-9 of the values' magnitude) counts as
  at the tolerance, so ``0.86`` against ``0.87`` with tolerance ``0.01`` passes. With no Production version there is nothing
  to compare and the check passes; a Production version without the metric is a refusal.
- Several ModelPolicies for one model all apply; automatic promotion and a waived approval need
  every one of them to say so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from modelops.api.modelpolicy import ChampionMetric, MetricGate, ModelPolicySpec, ProductionApproval, SelfApproval
from modelops.api.modelversion import Stage
from modelops.core.stage_policy import Verdict

GATES_PASSED = "GatesPassed"
VALIDATION_FAILED = "ValidationFailed"

# Reasons of single checks.
WITHIN_BOUND = "WithinBound"
OUT_OF_BOUND = "OutOfBound"
METRIC_MISSING = "MetricMissing"
NOT_WORSE = "NotWorseThanProduction"
WORSE = "WorseThanProduction"
NO_CHAMPION = "NoProductionVersion"
CHAMPION_METRIC_MISSING = "ProductionMetricMissing"
INVALID_POLICY = "InvalidPolicy"

OPERATOR_ACTOR = "modelops-operator"
"""Who an automatic promotion is attributed to in the audit history."""

_HOLDS = {
    ">=": lambda v, b: v >= b,
    ">": lambda v, b: v > b,
    "<=": lambda v, b: v <= b,
    "<": lambda v, b: v < b,
}
_NEGATION = {">=": "<", ">": "<=", "<=": ">", "<": ">="}
_REL_SLACK, _ABS_SLACK = 1e-9, 1e-12


@dataclass(frozen=True)
class PolicyRef:
    """A ModelPolicy as observed: its name and parsed spec, or why it could not be parsed."""

    name: str
    spec: ModelPolicySpec | None
    error: str = ""


@dataclass(frozen=True)
class Champion:
    """The model's current Production version: what a challenger is compared with."""

    name: str
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class GateResult:
    """Every check of every policy, and what the policies allow beyond them."""

    policies: tuple[str, ...]
    checks: tuple[Verdict, ...]

    @property
    def applies(self) -> bool:
        return bool(self.policies)

    @property
    def failures(self) -> tuple[Verdict, ...]:
        return tuple(c for c in self.checks if c.failed)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def source(self) -> str:
        """``ModelPolicy churn`` (or ``ModelPolicies a, b``): for messages."""
        return ("ModelPolicy " if len(self.policies) == 1 else "ModelPolicies ") + ", ".join(self.policies)

    def verdict(self) -> Verdict:
        """One verdict for a condition: ValidationFailed naming every failing check, or GatesPassed."""
        if self.failures:
            return Verdict(VALIDATION_FAILED, "; ".join(c.message for c in self.failures), True)
        passed = [c.message for c in self.checks if c.message]
        detail = f" ({'; '.join(passed)})" if passed else ""
        return Verdict(GATES_PASSED, f"{self.source}: gates passed{detail}", False)


def fmt(x: float) -> str:
    """A metric value as people write it: 0.85, 0.03 (not 0.030000000000000027), 12, nan."""
    return f"{x:.10g}"


def _value(metrics: Mapping[str, float] | None, name: str) -> float | None:
    """The metric as a finite float, or None when it is missing or not a number."""
    raw = (metrics or {}).get(name)
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def gate_check(policy: str, gate: MetricGate, metrics: Mapping[str, float] | None) -> Verdict:
    """``auc >= 0.85``: passes, fails naming value and bound, or fails because the metric is missing."""
    bound = f"{gate.metric} {gate.op} {fmt(gate.value)}"
    value = _value(metrics, gate.metric)
    if value is None:
        raw = (metrics or {}).get(gate.metric)
        what = "missing from spec.metrics" if raw is None else f"{raw!r} is not a number"
        return Verdict(METRIC_MISSING, f"{gate.metric} {what} (ModelPolicy {policy} requires {bound})", True)
    if not _HOLDS[gate.op](value, gate.value):
        return Verdict(
            OUT_OF_BOUND,
            f"{gate.metric} {fmt(value)} {_NEGATION[gate.op]} {fmt(gate.value)} (ModelPolicy {policy})",
            True,
        )
    return Verdict(WITHIN_BOUND, f"{gate.metric} {fmt(value)} {gate.op} {fmt(gate.value)}", False)


def shortfall(candidate: float, champion: float, higher_is_better: bool) -> float:
    """How much worse the candidate is than the champion (negative: better)."""
    return champion - candidate if higher_is_better else candidate - champion


def exceeds(short: float, tolerance: float, *values: float) -> bool:
    """``short > tolerance``, except by float rounding: 1e-9 of the largest magnitude involved."""
    scale = max((abs(v) for v in (short, tolerance, *values)), default=0.0)
    return short > tolerance + _REL_SLACK * scale + _ABS_SLACK


def champion_check(
    policy: str, cm: ChampionMetric, metrics: Mapping[str, float] | None, champion: Champion | None
) -> Verdict:
    """Not worse than Production by more than the tolerance."""
    value = _value(metrics, cm.metric)
    if value is None:
        return Verdict(
            METRIC_MISSING,
            f"{cm.metric} missing from spec.metrics (ModelPolicy {policy} compares it with Production)",
            True,
        )
    if champion is None:
        return Verdict(NO_CHAMPION, "", False)
    best = _value(champion.metrics, cm.metric)
    if best is None:
        return Verdict(
            CHAMPION_METRIC_MISSING,
            f"Production {champion.name} has no {cm.metric} to compare with (ModelPolicy {policy})",
            True,
        )
    short = shortfall(value, best, cm.higher_is_better)
    if exceeds(short, cm.tolerance, value, best):
        direction = "below" if cm.higher_is_better else "above"
        return Verdict(
            WORSE,
            f"{cm.metric} {fmt(value)} is {fmt(short)} {direction} Production {champion.name} ({fmt(best)}), "
            f"tolerance {fmt(cm.tolerance)} (ModelPolicy {policy})",
            True,
        )
    return Verdict(NOT_WORSE, f"{cm.metric} {fmt(value)} vs Production {champion.name} {fmt(best)}", False)


def policy_checks(
    policy: PolicyRef, metrics: Mapping[str, float] | None, champions: Sequence[Champion]
) -> list[Verdict]:
    """Every check of one policy. An unreadable policy is one failing check: the gate stays closed."""
    if policy.spec is None:
        return [Verdict(INVALID_POLICY, f"ModelPolicy {policy.name} is invalid: {policy.error}", True)]
    checks = [gate_check(policy.name, gate, metrics) for gate in policy.spec.gates]
    if policy.spec.champion_challenger is not None:
        for cm in policy.spec.champion_challenger.metrics:
            if champions:
                checks += [champion_check(policy.name, cm, metrics, c) for c in champions]
            else:
                checks.append(champion_check(policy.name, cm, metrics, None))
    return checks


def evaluate(
    policies: Sequence[PolicyRef], metrics: Mapping[str, float] | None, champions: Sequence[Champion] = ()
) -> GateResult:
    """All checks of all policies of the model for a candidate with ``metrics``.

    ``champions`` are the model's current Production versions other than the candidate (normally
    zero or one; the candidate must not be worse than any of them).
    """
    ordered = sorted(policies, key=lambda p: p.name)
    checks = [check for p in ordered for check in policy_checks(p, metrics, champions)]
    return GateResult(tuple(p.name for p in ordered), tuple(checks))


def auto_promotion_target(policies: Sequence[PolicyRef]) -> Stage | None:
    """Where a newly verified version that passes the gates goes without a person, if anywhere.

    Production only when every policy says so (and waives the approval), else Staging when every
    policy allows at least Staging, else nowhere. No policy: nowhere.
    """
    specs = [p.spec for p in policies]
    if not specs or any(s is None for s in specs):
        return None
    if all(s.auto_promote_to_production and s.production_approval == ProductionApproval.WAIVED for s in specs if s):
        return Stage.PRODUCTION
    if all(s.auto_promote_to_staging or s.auto_promote_to_production for s in specs if s):
        return Stage.STAGING
    return None


def approval_waived(policies: Sequence[PolicyRef]) -> bool:
    """True when there is a policy and every one waives the Production approval explicitly."""
    specs = [p.spec for p in policies]
    return bool(specs) and all(s is not None and s.production_approval == ProductionApproval.WAIVED for s in specs)


def self_approval_refused_by(policies: Sequence[PolicyRef]) -> tuple[str, ...]:
    """The policies (by name) under which a version's registered approval does not count.

    An invalid policy is not named here: its gates already refuse every promotion."""
    return tuple(
        p.name
        for p in sorted(policies, key=lambda p: p.name)
        if p.spec is not None and p.spec.self_approval == SelfApproval.REFUSED
    )


def gates_apply(current: Stage, target: Stage) -> bool:
    """Entering Staging or Production is gated; leaving Production for Staging (a demotion) is not."""
    return target in (Stage.STAGING, Stage.PRODUCTION) and not (current == Stage.PRODUCTION and target == Stage.STAGING)


def describe(spec: ModelPolicySpec) -> str:
    """The policy in one line, for its status: what a version must show and what happens then."""
    parts = [", ".join(f"{g.metric} {g.op} {fmt(g.value)}" for g in spec.gates) or "no metric bounds"]
    if spec.champion_challenger is not None:
        parts.append(
            "not worse than Production on "
            + ", ".join(
                f"{m.metric} (tolerance {fmt(m.tolerance)}{'' if m.higher_is_better else ', lower is better'})"
                for m in spec.champion_challenger.metrics
            )
        )
    if spec.auto_promote_to_production:
        parts.append("passing versions go to Production automatically")
    elif spec.auto_promote_to_staging:
        parts.append("passing versions go to Staging automatically")
    parts.append(
        "Production approval waived"
        if spec.production_approval == ProductionApproval.WAIVED
        else "Production needs spec.approval"
    )
    if spec.self_approval == SelfApproval.ALLOWED and spec.production_approval != ProductionApproval.WAIVED:
        parts.append("an approval set at registration counts")
    return f"model {spec.model_name}: " + "; ".join(parts)


__all__ = [
    "GATES_PASSED",
    "OPERATOR_ACTOR",
    "VALIDATION_FAILED",
    "Champion",
    "GateResult",
    "PolicyRef",
    "approval_waived",
    "auto_promotion_target",
    "champion_check",
    "describe",
    "evaluate",
    "exceeds",
    "fmt",
    "gate_check",
    "gates_apply",
    "policy_checks",
    "self_approval_refused_by",
    "shortfall",
]
