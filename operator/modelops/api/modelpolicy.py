"""ModelPolicy: the validation gates every version of one model must pass to enter Staging or Production.

A namespaced resource per model rather than a field of ModelDeployment: the registry itself refuses
a promotion that fails the gates, whoever asks for it (``modelops registry promote``, ``kubectl``,
GitOps, an automatic promotion), and any number of ModelDeployments may track the model. See
docs/registry.md.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from modelops.api.base import Condition, KubeModel, StatusModel, with_cel_rules
from modelops.api.modelversion import NAME_PATTERN

GateOp = Literal[">=", ">", "<=", "<"]


class MetricGate(KubeModel):
    """A bound on one offline metric of the candidate, e.g. {metric: auc, op: ">=", value: 0.85}."""

    metric: str = Field(min_length=1, max_length=253, description="A key of the ModelVersion's spec.metrics.")
    op: GateOp = Field(default=">=", description="How the candidate's value must compare with `value`.")
    value: float = Field(description="The bound.")


class ChampionMetric(KubeModel):
    """One metric on which the candidate is compared with the current Production version."""

    metric: str = Field(min_length=1, max_length=253, description="A key of both versions' spec.metrics.")
    tolerance: float = Field(
        default=0.0, ge=0, description="How much worse than Production the candidate may be (absolute, >= 0)."
    )
    higher_is_better: bool = Field(default=True, description="false for losses, errors, latencies.")


class ChampionChallenger(KubeModel):
    """The candidate may be worse than the model's current Production version by at most each tolerance."""

    metrics: list[ChampionMetric] = Field(min_length=1, max_length=64)


class ProductionApproval(StrEnum):
    """Whether stage Production still needs spec.approval (the registry's rule) under this policy."""

    REQUIRED = "Required"
    WAIVED = "Waived"


class SelfApproval(StrEnum):
    """Whether the approval a ModelVersion was created with counts for Production (docs/registry.md)."""

    REFUSED = "Refused"
    ALLOWED = "Allowed"


_CEL_RULES = [
    {
        "rule": "self.modelName == oldSelf.modelName",
        "message": "modelName is immutable: create another ModelPolicy instead",
        "fieldPath": ".modelName",
    },
    {
        "rule": "!has(self.autoPromoteToProduction) || !self.autoPromoteToProduction || "
        "(has(self.productionApproval) && self.productionApproval == 'Waived')",
        "message": "autoPromoteToProduction needs productionApproval: Waived",
        "fieldPath": ".autoPromoteToProduction",
    },
]


class ModelPolicySpec(KubeModel):
    """Gates for every version of modelName in this namespace; all must pass (a missing metric fails)."""

    model_config = with_cel_rules(KubeModel.model_config, _CEL_RULES)

    model_name: str = Field(min_length=1, max_length=253, pattern=NAME_PATTERN)
    gates: list[MetricGate] = Field(default_factory=list, max_length=64, description="Bounds on offline metrics.")
    champion_challenger: ChampionChallenger | None = Field(
        default=None, description="Compare with the current Production version of the model."
    )
    auto_promote_to_staging: bool = Field(
        default=False, description="Move a newly verified version that passes the gates to Staging, without a person."
    )
    auto_promote_to_production: bool = Field(
        default=False,
        description="Move a newly verified version that passes the gates straight to Production "
        "(needs productionApproval: Waived).",
    )
    production_approval: ProductionApproval = Field(
        default=ProductionApproval.REQUIRED,
        description="Required: stage Production needs spec.approval, as without a policy. Waived: it does not.",
    )
    self_approval: SelfApproval = Field(
        default=SelfApproval.REFUSED,
        description="Refused: a spec.approval the version already had when it was created (written by whoever "
        "registered it, e.g. a retraining Job) does not count; the approval must be written after registration, "
        "by someone allowed to update ModelVersions. Allowed: it counts.",
    )

    @model_validator(mode="after")
    def _production_needs_waiver(self) -> ModelPolicySpec:
        if self.auto_promote_to_production and self.production_approval != ProductionApproval.WAIVED:
            raise ValueError("autoPromoteToProduction needs productionApproval: Waived")
        return self


class ModelPolicyStatus(StatusModel):
    """What the operator made of the policy."""

    observed_generation: int | None = None
    message: str | None = Field(default=None, description="The policy in one line, or why it is invalid.")
    conditions: list[Condition] = Field(default_factory=list)


__all__ = [
    "ChampionChallenger",
    "ChampionMetric",
    "GateOp",
    "MetricGate",
    "ModelPolicySpec",
    "ModelPolicyStatus",
    "ProductionApproval",
    "SelfApproval",
]
