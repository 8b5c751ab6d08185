"""The performance part of the DriftMonitor API: ``spec.performance`` and ``status.lastResult.performance``.

Its own module so that ``modelops performance check`` validates its settings without building
every other CRD model (the CLI's start-up time); :mod:`modelops.api.driftmonitor` uses these.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from modelops.api.base import KubeModel, StatusModel

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
"""The same pattern as ``modelops.api.modeldeployment.DURATION_PATTERN`` (a test keeps them equal)."""
DataFormat = Literal["auto", "parquet", "csv", "jsonl"]


PerformanceMetricName = Literal["accuracy", "precision", "recall", "f1", "auc", "logLoss", "mae", "rmse", "r2"]
PerformanceTask = Literal["binary", "multiclass", "regression"]


class LabelsSource(KubeModel):
    """Ground truth that arrives later: a file, directory or glob of Parquet/CSV/JSONL (path or fsspec URI)."""

    uri: str = Field(min_length=1, max_length=2048)
    format: DataFormat = "auto"
    id_column: str = Field(default="request_id", min_length=1, max_length=253)
    label_column: str = Field(default="label", min_length=1, max_length=253)
    event_time_column: str | None = Field(
        default=None,
        max_length=253,
        description="When each label became known: the latest label per id wins, labels after the check are ignored.",
    )


class PerformanceMetric(KubeModel):
    """A metric to report, and optionally judge: absolute bounds and/or a drop relative to the registered value."""

    name: PerformanceMetricName
    min: float | None = Field(default=None, description="Degraded below this value (e.g. auc 0.80).")
    max: float | None = Field(default=None, description="Degraded above this value (e.g. logLoss 0.5).")
    max_relative_drop: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Degraded when worse than the ModelVersion's registered spec.metrics value by more than "
        "this fraction (below it for scores, above it for losses and errors).",
    )
    registered_name: str | None = Field(
        default=None,
        max_length=253,
        description="Key in the ModelVersion's spec.metrics; default the metric name or an alias (roc_auc, log_loss...).",
    )


class PerformanceSettings(KubeModel):
    """Model performance from delayed labels joined to the prediction log (spec.current.uri)."""

    labels: LabelsSource
    task: PerformanceTask
    join_key: str = Field(
        default="request_id",
        min_length=1,
        max_length=253,
        description="The prediction-log column the label ids match: request_id, or an input (e.g. customer_id).",
    )
    prediction_output: str = Field(default="predict", min_length=1, max_length=253)
    probability_output: str = Field(
        default="predict_proba",
        min_length=1,
        max_length=253,
        description="Logged as <name>_<j> per class j (the server's layout); used for auc, logLoss and estimates.",
    )
    classes: list[str] | None = Field(
        default=None, max_length=1000, description="Class labels in probability-column order; default inferred."
    )
    positive_class: str | None = Field(default=None, max_length=253, description="Binary: default the last class.")
    window: str = Field(default="24h", pattern=DURATION_PATTERN, description="Predictions judged by one check.")
    label_delay: str = Field(
        default="0s", pattern=DURATION_PATTERN, description="The window ends this long before the check."
    )
    chunk: str | None = Field(
        default=None, pattern=DURATION_PATTERN, description="Also report metrics per chunk of the window."
    )
    min_coverage: float = Field(
        default=0.5, gt=0, le=1, description="Below this share of labelled predictions the result is Inconclusive."
    )
    min_labels: int = Field(default=100, ge=1, description="Fewer labelled predictions is Inconclusive.")
    metrics: list[PerformanceMetric] | None = Field(
        default=None, max_length=9, description="Default: every metric of the task, reported without thresholds."
    )
    estimate: bool = Field(
        default=False, description="Also estimate accuracy (and AUC) from the probabilities alone (CBPE)."
    )


PerformanceVerdict = Literal["Healthy", "Degraded", "Inconclusive"]


class PerformanceMetricResult(StatusModel):
    name: str
    value: float | None = Field(default=None, description="Unset when undefined on this data (see note).")
    note: str | None = None
    min: float | None = Field(
        default=None, description="Effective lower bound (absolute or from the registered value)."
    )
    max: float | None = Field(default=None, description="Effective upper bound.")
    registered: float | None = Field(default=None, description="The ModelVersion's registered offline value.")
    passed: bool | None = Field(default=None, description="Unset without a threshold or a value.")


class LabelQuality(StatusModel):
    """What the join of labels to predictions saw; every row left out is counted here."""

    missing_keys: int = 0
    duplicate_prediction_rows: int = 0
    missing_labels: int = 0
    duplicate_label_ids: int = 0
    conflicting_label_ids: int = 0
    future_labels: int = 0
    labels_without_predictions: int = 0
    labels_outside_window: int = 0
    unknown_classes: int = 0
    unknown_class_values: list[str] | None = Field(default=None, max_length=10)
    mistyped_labels: int = 0
    invalid_predictions: int = 0


class PerformanceEstimate(StatusModel):
    """Confidence-based estimate (CBPE) from the predicted probabilities alone, next to the realised values."""

    accuracy: float | None = None
    auc: float | None = None
    rows: int = 0
    realised_accuracy: float | None = None
    realised_auc: float | None = None
    assumptions: str = ""


class WindowMetric(StatusModel):
    name: str
    value: float | None = None


class PerformanceWindow(StatusModel):
    start: datetime
    end: datetime
    predictions: int
    labelled: int
    metrics: list[WindowMetric] = Field(default_factory=list)


class PerformanceResult(StatusModel):
    verdict: PerformanceVerdict
    reason: str
    message: str = ""
    task: str
    window_start: datetime | None = None
    window_end: datetime | None = None
    predictions: int = 0
    labelled: int = 0
    coverage: float = 0.0
    min_coverage: float = 0.0
    median_label_delay_seconds: float | None = Field(
        default=None, description="Median time from prediction to label event (with labels.eventTimeColumn)."
    )
    metrics: list[PerformanceMetricResult] = Field(default_factory=list)
    quality: LabelQuality = Field(default_factory=LabelQuality)
    estimate: PerformanceEstimate | None = None
    windows: list[PerformanceWindow] | None = Field(default=None, max_length=60)
