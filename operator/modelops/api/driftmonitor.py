"""DriftMonitor: scheduled drift checks of a deployment's traffic, debounced into alerts or retraining."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from modelops.api.base import Condition, HistoryEntry, KubeModel, LocalObjectReference, StatusModel
from modelops.api.modeldeployment import DURATION_PATTERN
from modelops.api.performance import PerformanceResult, PerformanceSettings

CRON_PATTERN = r"^(@(yearly|annually|monthly|weekly|daily|hourly)|\S+\s+\S+\s+\S+\s+\S+\s+\S+)$"

DriftMethod = Literal["auto", "ks", "chi2", "psi", "wasserstein", "jensenshannon"]
DataFormat = Literal["auto", "parquet", "csv", "jsonl"]


class Target(KubeModel):
    """What is monitored: a ModelDeployment, and optionally a pinned ModelVersion."""

    deployment: str | None = Field(default=None, max_length=253)
    model_version: str | None = Field(default=None, max_length=253)


class ReferenceData(KubeModel):
    """The baseline: raw data, or a compact profile from `modelops drift profile`.

    Unset: the reference profile of the target's ModelVersion.
    """

    uri: str | None = Field(default=None, max_length=2048)
    profile: str | None = Field(default=None, max_length=2048)
    format: DataFormat = "auto"


class CurrentData(KubeModel):
    """The data under test: the server's prediction log over a window, or a URI."""

    source: Literal["predictionLog", "uri"] = "predictionLog"
    uri: str | None = Field(default=None, max_length=2048)
    format: DataFormat = "auto"
    window: str = Field(default="24h", pattern=DURATION_PATTERN)
    min_rows: int = Field(
        default=100,
        ge=1,
        description="Fewer current rows is bad data (EmptyData), not a verdict: drift tests on a handful of rows "
        "cannot tell drift from noise.",
    )


class ColumnMapping(KubeModel):
    numerical: list[str] | None = Field(default=None, max_length=4096)
    categorical: list[str] | None = Field(default=None, max_length=4096)
    rename: dict[str, str] | None = Field(default=None, description="current column -> reference column")


class FeatureTest(KubeModel):
    name: str = Field(min_length=1, max_length=253)
    method: DriftMethod = "auto"
    threshold: float | None = Field(default=None, ge=0)


class DriftSettings(KubeModel):
    method: DriftMethod = "auto"
    threshold: float | None = Field(default=None, ge=0)
    correction: Literal["none", "bonferroni", "benjamini-hochberg"] = "none"
    drift_share: float = Field(default=0.5, gt=0, le=1)
    features: list[FeatureTest] | None = Field(default=None, max_length=4096)


class Policy(KubeModel):
    action: Literal["none", "alert", "retrain"] = "alert"
    consecutive_checks: int = Field(default=1, ge=1, le=100, description="Debounce: drifted checks in a row.")
    cooldown: str = Field(default="6h", pattern=DURATION_PATTERN)


class DriftMonitorSpec(KubeModel):
    target: Target
    schedule: str = Field(
        min_length=1,
        max_length=256,
        pattern=CRON_PATTERN,
        json_schema_extra={
            "x-kubernetes-validations": [{"rule": "size(self) > 0", "message": "schedule must not be empty"}]
        },
    )
    suspend: bool = False
    reference: ReferenceData = Field(default_factory=ReferenceData)
    current: CurrentData = Field(default_factory=CurrentData)
    column_mapping: ColumnMapping | None = None
    drift: DriftSettings = Field(default_factory=DriftSettings)
    policy: Policy = Field(default_factory=Policy)
    job_template: dict[str, Any] | None = Field(
        default=None,
        description="A batch/v1 JobTemplateSpec for retraining.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    data_secret_ref: LocalObjectReference | None = None
    image: str | None = Field(default=None, max_length=1024, description="Check image; defaults to the operator's.")
    performance: PerformanceSettings | None = Field(
        default=None, description="Model performance from delayed labels (ground truth) joined to the predictions."
    )


class MonitorPhase(StrEnum):
    PENDING = "Pending"
    HEALTHY = "Healthy"
    DRIFTED = "Drifted"
    DEGRADED = "Degraded"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


class FeatureResult(StatusModel):
    name: str
    test: str
    statistic: float | None = None
    p_value: float | None = None
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    nan_current: int = 0
    nan_reference: int = 0
    unseen_categories: list[str] | None = Field(
        default=None, max_length=20, description="Current categories absent from the reference (first 20)."
    )


class CheckResult(StatusModel):
    time: datetime
    dataset_drift: bool
    drift_share: float
    drifted_features: int
    total_features: int
    features: list[FeatureResult] = Field(default_factory=list)
    performance: PerformanceResult | None = None


class ActiveJob(StatusModel):
    """A retraining Job: what triggered it, what it was told to register, what it registered."""

    name: str
    created_at: datetime
    check_time: datetime | None = Field(default=None, description="The drift check that triggered it.")
    parent_version: str | None = Field(default=None, description="The ModelVersion it retrains (its parent).")
    next_version: str | None = Field(default=None, description="The version it was told to register.")
    registered_version: str | None = Field(default=None, description="The ModelVersion it registered, once seen.")


class RetrainRecord(ActiveJob):
    """The last retraining Job, once finished."""

    outcome: Literal["Succeeded", "Failed", "Gone"]
    finished_at: datetime


class MonitorHistoryEntry(HistoryEntry):
    """A history entry that can name the retraining Job and the check it links to."""

    job: str | None = Field(default=None, description="The retraining Job this entry is about.")
    check_time: datetime | None = Field(default=None, description="The drift check this entry is about.")


class DriftMonitorStatus(StatusModel):
    phase: MonitorPhase = MonitorPhase.PENDING
    observed_generation: int | None = None
    last_check_time: datetime | None = None
    last_result: CheckResult | None = None
    evaluated_check_time: datetime | None = Field(
        default=None, description="The check the operator last acted on (debounce counts each check once)."
    )
    resolved_reference: str | None = Field(
        default=None, description="Reference profile or data URI, resolved by the operator for the check job."
    )
    registered_metrics: dict[str, float] | None = Field(
        default=None, description="The target ModelVersion's spec.metrics, for relative performance thresholds."
    )
    consecutive_drifted: int = 0
    last_action_time: datetime | None = None
    active_job: ActiveJob | None = None
    last_retrain: RetrainRecord | None = None
    conditions: list[Condition] = Field(default_factory=list)
    history: list[MonitorHistoryEntry] = Field(default_factory=list)
