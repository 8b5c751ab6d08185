"""ModelVersion: one immutable, digest-verified model artifact with lineage, stage and approval."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from modelops.api.base import Condition, HistoryEntry, KubeModel, StatusModel, with_cel_rules

DIGEST_PATTERN = r"^sha256:[a-f0-9]{64}$"
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$"


class Stage(StrEnum):
    """Registry stages, as MLflow users know them."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


class Phase(StrEnum):
    """Verification lifecycle of the artifact."""

    PENDING = "Pending"
    VERIFIED = "Verified"
    FAILED = "Failed"


ArtifactFormat = Literal["joblib", "pickle", "onnx", "savedmodel", "torchscript", "xgboost", "lightgbm", "other"]
Datatype = Literal["BOOL", "UINT8", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"]


class Artifact(KubeModel):
    """Where the model file lives and what its bytes must hash to."""

    uri: str = Field(min_length=1, max_length=2048, description="file://, http(s)://, or any fsspec URI.")
    digest: str = Field(
        pattern=DIGEST_PATTERN,
        description="sha256:<64 hex>; verified before use.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.matches('^sha256:[a-f0-9]{64}$')",
                    "message": "must be sha256: followed by 64 hex digits",
                }
            ]
        },
    )
    format: ArtifactFormat = "joblib"


class TensorSpec(KubeModel):
    """One named input or output tensor, in Open Inference Protocol v2 terms."""

    name: str = Field(min_length=1, max_length=253)
    datatype: Datatype = "FP64"
    shape: list[int] = Field(default_factory=list, max_length=8)


class DatasetRef(KubeModel):
    """The training data, pinned by digest so lineage survives a re-upload."""

    uri: str = Field(min_length=1, max_length=2048)
    digest: str | None = Field(default=None, pattern=DIGEST_PATTERN)


class DriftReportRef(KubeModel):
    """The drift check that triggered a retraining: its DriftMonitor, the check's time, a report URI."""

    monitor: str = Field(min_length=1, max_length=253, description="Name of the DriftMonitor (same namespace).")
    check_time: datetime | None = Field(default=None, description="The check's status.lastCheckTime.")
    uri: str | None = Field(default=None, max_length=2048, description="Where the report was written, if anywhere.")


class Lineage(KubeModel):
    """Where a version came from: data, code, run, and the version it was retrained from."""

    dataset: DatasetRef | None = None
    code_commit: str | None = Field(default=None, max_length=256)
    training_run: str | None = Field(default=None, max_length=512)
    parent_version: str | None = Field(
        default=None, max_length=253, description="Name of the ModelVersion this one was retrained from."
    )
    drift_report: DriftReportRef | None = Field(default=None, description="The drift check that triggered it.")


class Approval(KubeModel):
    """Who approved this version for Production, when, and why."""

    approved_by: str = Field(min_length=1, max_length=253)
    approved_at: datetime
    reason: str = Field(min_length=1, max_length=2048)


IMMUTABLE_REQUIRED = ("modelName", "version", "artifact")
IMMUTABLE_OPTIONAL = ("framework", "inputSchema", "outputSchema", "metrics", "params", "lineage", "referenceProfile")


def _immutability_rules() -> list[dict[str, str]]:
    """CEL transition rules: a registered version can change only its stage and approval."""
    rules = [
        {
            "rule": f"self.{field} == oldSelf.{field}",
            "message": f"{field} is immutable: register a new ModelVersion instead",
            "fieldPath": f".{field}",
        }
        for field in IMMUTABLE_REQUIRED
    ]
    rules += [
        {
            "rule": f"has(self.{field}) == has(oldSelf.{field}) && (!has(self.{field}) || self.{field} == oldSelf.{field})",
            "message": f"{field} is immutable: register a new ModelVersion instead",
            "fieldPath": f".{field}",
        }
        for field in IMMUTABLE_OPTIONAL
    ]
    return rules


class ModelVersionSpec(KubeModel):
    """Everything but ``stage`` and ``approval`` is immutable once created."""

    model_config = with_cel_rules(KubeModel.model_config, _immutability_rules())

    model_name: str = Field(min_length=1, max_length=253, pattern=NAME_PATTERN)
    version: str = Field(min_length=1, max_length=128)
    artifact: Artifact
    framework: str = Field(default="sklearn", max_length=64)
    input_schema: list[TensorSpec] | None = Field(default=None, max_length=1024)
    output_schema: list[TensorSpec] | None = Field(default=None, max_length=1024)
    metrics: dict[str, float] | None = Field(default=None, description="Offline evaluation metrics.")
    params: dict[str, str] | None = Field(default=None, description="Training hyper-parameters.")
    lineage: Lineage | None = None
    reference_profile: str | None = Field(
        default=None, max_length=2048, description="URI of a drift reference profile built from the training data."
    )
    stage: Stage = Stage.NONE
    approval: Approval | None = None


class Deployment(StatusModel):
    """A ModelDeployment currently serving this version."""

    namespace: str
    name: str
    track: Literal["stable", "canary"]
    weight: int | None = Field(default=None, description="Percent of the deployment's traffic on this track.")


class ModelVersionStatus(StatusModel):
    """What the operator observed: verification result, effective stage, where deployed, audit."""

    phase: Phase = Phase.PENDING
    stage: Stage | None = Field(default=None, description="The effective stage; spec.stage is the request.")
    observed_generation: int | None = None
    verified_digest: str | None = None
    verified_at: datetime | None = None
    artifact_size_bytes: int | None = None
    verify_attempts: int | None = None
    message: str | None = None
    registered_approval: Approval | None = Field(
        default=None,
        description="spec.approval as the operator first saw the version: written by whoever registered it. "
        "Under a ModelPolicy with selfApproval: Refused it never counts as the Production approval.",
    )
    conditions: list[Condition] = Field(default_factory=list)
    deployments: list[Deployment] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)
