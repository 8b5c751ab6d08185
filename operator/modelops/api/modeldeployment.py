"""ModelDeployment: serve a ModelVersion and move between versions by gated, analysed canary steps."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, WithJsonSchema, model_validator

from modelops.api.base import Condition, HistoryEntry, KubeModel, LocalObjectReference, StatusModel, with_cel_rules
from modelops.api.modelversion import Stage

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"


class ModelRef(KubeModel):
    """Either one ModelVersion by name, or the newest eligible version of a model."""

    model_config = with_cel_rules(
        KubeModel.model_config,
        [
            {
                "rule": "has(self.versionRef) != has(self.modelName)",
                "message": "set exactly one of versionRef or modelName",
            }
        ],
    )

    version_ref: str | None = Field(default=None, max_length=253, description="A ModelVersion name.")
    model_name: str | None = Field(default=None, max_length=253, description="Track the newest eligible version.")
    stage: Stage | None = Field(
        default=None,
        description="The stage a version must be in. With modelName the default is Production; "
        "with versionRef the stage is checked only when set.",
    )
    require_approval: bool = Field(
        default=True, description="A version required to be in Production must also carry spec.approval."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelRef:
        if (self.version_ref is None) == (self.model_name is None):
            raise ValueError("set exactly one of versionRef or modelName")
        return self


class EnvVar(KubeModel):
    name: str = Field(min_length=1, max_length=253)
    value: str = Field(default="", max_length=32768)


class ServerSpec(KubeModel):
    """The model server: the built-in Open Inference Protocol v2 runtime, or any v2 image.

    What makes a server *revision* (a change rolls out by canary, like a new version): runtime,
    image, command, args, ports, probe paths, workers. Env, resources, replicas, the prediction
    log and credentials are applied to both tracks in place.
    """

    model_config = with_cel_rules(
        KubeModel.model_config,
        [
            {
                "rule": "!has(self.runtime) || self.runtime != 'custom' || has(self.image)",
                "message": "runtime custom needs an image",
            },
            {
                "rule": "(has(self.runtime) && self.runtime == 'custom') || !has(self.command)",
                "message": "command applies to runtime custom only",
            },
        ],
    )

    runtime: Literal["builtin", "custom"] = "builtin"
    image: str | None = Field(
        default=None, min_length=1, max_length=1024, description="Defaults to the operator's image (builtin)."
    )
    command: list[str] | None = Field(default=None, max_length=64, description="runtime custom: the entrypoint.")
    args: list[str] | None = Field(
        default=None,
        max_length=64,
        description="builtin: extra `modelops serve` flags; custom: the container args "
        "({{modelUri}}, {{digest}}, {{model}}, {{version}}, {{track}} are filled in).",
    )
    port: int = Field(default=8080, ge=1, le=65535)
    metrics_port: int = Field(default=8082, ge=1, le=65535, description="Scraped by Prometheus (port `metrics`).")
    readiness_path: str = Field(
        default="/v2/health/ready", pattern=r"^/", max_length=1024, description="Ready means the model is loaded."
    )
    liveness_path: str = Field(default="/v2/health/live", pattern=r"^/", max_length=1024)
    workers: int = Field(default=1, ge=1, le=64, description="builtin: server processes per pod.")
    env: list[EnvVar] | None = Field(default=None, max_length=128)
    artifact_credentials: LocalObjectReference | None = Field(
        default=None,
        description="A Secret in the namespace whose keys become environment variables of the server "
        "(AWS_*, GOOGLE_*, AZURE_* ... as fsspec reads them) for s3://, gs:// and http(s):// artifacts.",
    )
    prediction_log: str | None = Field(
        default=None,
        max_length=2048,
        description="Where the builtin server writes its prediction log: a URI (s3://, gs://, ...) or "
        "pvc://claim/path. Default: an emptyDir (lost with the pod).",
    )
    prediction_log_sample_rate: float = Field(default=0.1, ge=0.0, le=1.0)


class Resources(KubeModel):
    requests: dict[str, str] | None = None
    limits: dict[str, str] | None = None


class Pause(KubeModel):
    """Wait; without a duration, wait for `modelops promote`."""

    duration: str | None = Field(default=None, pattern=DURATION_PATTERN)


MetricKind = Literal["errorRate", "latencyP99", "predictionShift", "promql"]


class AnalysisMetric(KubeModel):
    """One measurement of the canary, compared with a threshold or with the stable track."""

    model_config = with_cel_rules(
        KubeModel.model_config,
        [
            {
                "rule": "self.kind == 'promql' ? has(self.query) : !has(self.query)",
                "message": "query is required for kind promql and only allowed there",
            },
            {
                "rule": "has(self.max) || has(self.min) || has(self.maxRatioToStable)",
                "message": "set at least one threshold: max, min or maxRatioToStable",
            },
            {
                "rule": "!has(self.maxRatioToStable) || self.kind == 'errorRate' || self.kind == 'latencyP99'",
                "message": "maxRatioToStable applies to errorRate and latencyP99 only",
            },
            {
                "rule": "!has(self.output) || self.kind == 'predictionShift'",
                "message": "output applies to predictionShift only",
            },
        ],
    )

    name: str = Field(min_length=1, max_length=63)
    kind: MetricKind
    query: str | None = Field(
        default=None,
        max_length=8192,
        description="PromQL, for kind promql; {{namespace}} {{deployment}} {{track}} {{version}} {{interval}} are filled in.",
    )
    max: float | None = Field(default=None, description="Fail when the value is above.")
    min: float | None = Field(default=None, description="Fail when the value is below.")
    max_ratio_to_stable: float | None = Field(
        default=None, gt=0, description="Fail when canary/stable is above (latency, error rate)."
    )
    output: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description="predictionShift: the model output compared; default every numeric output (the largest shift).",
    )
    interval: str = Field(default="30s", pattern=DURATION_PATTERN)
    count: int = Field(default=3, ge=1, le=1000)
    failure_limit: int = Field(default=0, ge=0, le=1000)
    inconclusive_limit: int = Field(default=1, ge=0, le=1000)
    error_limit: int = Field(
        default=2,
        ge=0,
        le=1000,
        description="Measurements that could not be taken (Prometheus unreachable, query failed) allowed before failing.",
    )
    min_samples: int = Field(
        default=50,
        ge=0,
        le=1_000_000_000,
        description="Canary requests (predictionShift: predictions per track) needed in an interval, else Inconclusive.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> AnalysisMetric:
        if (self.kind == "promql") != (self.query is not None):
            raise ValueError("query is required for kind promql and only allowed there")
        if self.max is None and self.min is None and self.max_ratio_to_stable is None:
            raise ValueError("set at least one threshold: max, min or maxRatioToStable")
        if self.max_ratio_to_stable is not None and self.kind not in ("errorRate", "latencyP99"):
            raise ValueError("maxRatioToStable applies to errorRate and latencyP99 only")
        if self.output is not None and self.kind != "predictionShift":
            raise ValueError("output applies to predictionShift only")
        return self


class Analysis(KubeModel):
    metrics: list[AnalysisMetric] = Field(min_length=1, max_length=32)


class CanaryStep(KubeModel):
    """Exactly one of setWeight, pause, analysis."""

    model_config = with_cel_rules(
        KubeModel.model_config,
        [
            {
                "rule": "(has(self.setWeight) ? 1 : 0) + (has(self.pause) ? 1 : 0) + (has(self.analysis) ? 1 : 0) == 1",
                "message": "a step sets exactly one of setWeight, pause, analysis",
            }
        ],
    )

    set_weight: int | None = Field(default=None, ge=0, le=100)
    pause: Pause | None = None
    analysis: Analysis | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> CanaryStep:
        if sum(x is not None for x in (self.set_weight, self.pause, self.analysis)) != 1:
            raise ValueError("a step sets exactly one of setWeight, pause, analysis")
        return self


class GatewayRouting(KubeModel):
    """Exact weights on a Gateway API HTTPRoute the operator owns."""

    http_route: str = Field(min_length=1, max_length=253)
    parent_refs: list[LocalObjectReference] = Field(min_length=1, max_length=16)


class TrafficRouting(KubeModel):
    gateway_api: GatewayRouting | None = None


IntOrPercent = Annotated[
    int | str,
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "x-kubernetes-validations": [
                {
                    "rule": "type(self) == int ? self >= 0 : self.matches('^[0-9]+%$')",
                    "message": "must be a count (0 or more) or a percent such as '25%'",
                }
            ],
        }
    ),
]


def resolve_int_or_percent(value: int | str, total: int) -> int:
    """A count, or a percent of ``total`` rounded up (Kubernetes' maxSurge rounding)."""
    if isinstance(value, int):
        return value
    return -(-int(value.rstrip("%")) * total // 100)


class CanaryStrategy(KubeModel):
    model_config = with_cel_rules(
        KubeModel.model_config,
        [
            {
                "rule": "self.steps.all(s, !has(s.setWeight) || (s.setWeight >= 0 && s.setWeight <= 100))",
                "message": "setWeight must be within 0..100",
                "fieldPath": ".steps",
            },
            {
                "rule": "self.steps.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted()",
                "message": "setWeight must not decrease across steps",
                "fieldPath": ".steps",
            },
        ],
    )

    steps: list[CanaryStep] = Field(min_length=1, max_length=64)
    traffic_routing: TrafficRouting | None = None
    max_surge: IntOrPercent = Field(
        default="25%",
        description="Replica budget: pods above spec.replicas a rollout may use, a count or a percent of "
        "replicas (rounded up, at least 1). The stable track scales down as the canary scales up.",
    )
    auto_rollback: bool = True
    progress_deadline: str = Field(
        default="30m",
        pattern=DURATION_PATTERN,
        description="How long a step may wait for ready pods before the rollout is aborted "
        "(pauses and analyses have their own clocks).",
    )

    @model_validator(mode="after")
    def _non_decreasing(self) -> CanaryStrategy:
        weights = [s.set_weight for s in self.steps if s.set_weight is not None]
        if weights != sorted(weights):
            raise ValueError("setWeight must not decrease across steps")
        surge = self.max_surge
        if isinstance(surge, bool) or (isinstance(surge, int) and surge < 0):
            raise ValueError("maxSurge must be a count (0 or more) or a percent such as '25%'")
        if isinstance(surge, str) and (not surge.endswith("%") or not surge[:-1].isdigit()):
            raise ValueError("maxSurge must be a count (0 or more) or a percent such as '25%'")
        return self


class Strategy(KubeModel):
    canary: CanaryStrategy | None = None


class PrometheusSpec(KubeModel):
    address: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="Prometheus for this deployment's analysis; unset: the operator's --prometheus-url "
        "(MODELOPS_PROMETHEUS_URL).",
    )


class ModelDeploymentSpec(KubeModel):
    model: ModelRef
    server: ServerSpec = Field(default_factory=ServerSpec)
    replicas: int = Field(default=1, ge=0, le=1000)
    resources: Resources | None = None
    strategy: Strategy = Field(default_factory=Strategy)
    prometheus: PrometheusSpec = Field(default_factory=PrometheusSpec)
    paused: bool = Field(default=False, description="Hold the rollout at its current step (GitOps-friendly pause).")


class RolloutPhase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    HEALTHY = "Healthy"
    DEGRADED = "Degraded"
    ROLLED_BACK = "RolledBack"


class MetricResult(StatusModel):
    """One measurement: the canary's value (for predictionShift the PSI), and what it was judged."""

    name: str
    value: float | None = None
    stable_value: float | None = Field(default=None, description="The stable track's value, when compared.")
    samples: int | None = Field(default=None, description="Canary requests (predictionShift: predictions) counted.")
    phase: Literal["Successful", "Failed", "Inconclusive", "Error"]
    message: str = ""
    time: datetime | None = None


class AnalysisRun(StatusModel):
    """The measurements of one analysis step; its clock (startedAt) survives restarts."""

    step_index: int
    started_at: datetime
    phase: Literal["Running", "Successful", "Failed", "Inconclusive"] = "Running"
    version: str | None = Field(default=None, description="The canary ModelVersion analysed.")
    message: str = ""
    measurements: list[MetricResult] = Field(default_factory=list)


ANALYSIS_RUNS_LIMIT = 10
"""Finished analysis runs kept in status (the running one is always kept whole)."""


class TrackStatus(StatusModel):
    """What one track (its Deployment) runs and how many of its pods are ready."""

    version: str | None = Field(default=None, description="The ModelVersion name this track serves.")
    revision: str | None = Field(default=None, description="Hash of the server settings (image, args, ports).")
    replicas: int = 0
    ready_replicas: int = 0


class Tracks(StatusModel):
    stable: TrackStatus | None = None
    canary: TrackStatus | None = None


class ModelDeploymentStatus(StatusModel):
    """All rollout state lives here, so a restarted operator resumes exactly where it was.

    The operator writes everything except the control fields. ``abort``, ``promoteFull``,
    ``promoteStep``, ``pausedByUser`` (and ``failedVersion: null`` for retry) are written by
    ``modelops rollout`` through the status subresource and consumed by the operator.
    """

    phase: RolloutPhase = RolloutPhase.PENDING
    observed_generation: int | None = None
    stable_version: str | None = Field(default=None, description="ModelVersion name serving as stable.")
    canary_version: str | None = Field(default=None, description="ModelVersion name in canary, if a rollout runs.")
    current_step_index: int | None = Field(
        default=None,
        description="Index of the canary step in progress; len(steps) while promoting; unset without a canary.",
    )
    canary_weight: int = Field(default=0, description="Percent of traffic the canary receives (reached, not asked).")
    step_started_at: datetime | None = None
    pause_started_at: datetime | None = None
    message: str | None = None
    tracks: Tracks = Field(default_factory=Tracks)
    failed_version: str | None = Field(
        default=None, description="Rolled back; not rolled out again until retry or a spec change."
    )
    analysis_runs: list[AnalysisRun] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)
    # Control fields (written by `modelops rollout`, consumed here).
    abort: bool = Field(default=False, description="Control: roll the canary back now (consumed).")
    promote_full: bool = Field(default=False, description="Control: skip the remaining steps (consumed).")
    promote_step: int | None = Field(
        default=None, description="Control: advance past this step index once, if it is the current one (consumed)."
    )
    paused_by_user: bool = Field(default=False, description="Control: hold at the current step until false.")
