"""A tiny stand-in for the cluster under the pure planner: it carries out a Decision the way the
handler and the Deployment controller would (templates, replicas, ready pods), so table and
property tests can walk a whole rollout through ``decide`` without I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from modelops.api.modeldeployment import MetricResult, ModelDeploymentSpec, ModelDeploymentStatus
from modelops.api.modelversion import Phase, Stage
from modelops.core.rollout import Decision, RolloutObservations, TrackObservation, TrackPlan, decide
from modelops.core.version_selection import Selection, VersionInfo

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
REV = "rev1"


def version(name: str, created_minute: int = 0) -> VersionInfo:
    return VersionInfo(
        name=name,
        model_name="churn",
        version=name.rsplit("-v", 1)[-1],
        uri=f"file:///models/{name}.joblib",
        digest="sha256:" + "a" * 64,
        phase=Phase.VERIFIED,
        stage=Stage.PRODUCTION,
        approved=True,
        created=T0 + timedelta(minutes=created_minute),
    )


def spec(steps: list[dict], replicas: int = 4, **canary: object) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {"model": {"versionRef": "churn-v1"}, "replicas": replicas, "strategy": {"canary": {"steps": steps, **canary}}}
    )


@dataclass
class Track:
    exists: bool = False
    version: str | None = None
    revision: str | None = None
    replicas: int = 0
    ready: int = 0

    def observe(self) -> TrackObservation:
        return TrackObservation(self.exists, self.version, self.revision, self.replicas, self.ready, True)


@dataclass
class Sim:
    spec: ModelDeploymentSpec
    target: str | None = "churn-v1"
    status: ModelDeploymentStatus = field(default_factory=ModelDeploymentStatus)
    stable: Track = field(default_factory=Track)
    canary: Track = field(default_factory=Track)
    now: datetime = T0
    generation: int = 1
    revision: str = REV
    auto_ready: bool = True
    """Pods become ready as soon as they exist (a controller and kubelet that never fail)."""
    decisions: list[Decision] = field(default_factory=list)
    measurer: Callable[[str, datetime], MetricResult] = field(
        default=lambda name, now: MetricResult(name=name, value=0.0, phase="Successful", time=now)
    )

    def observations(self, measurements: tuple[MetricResult, ...] = ()) -> RolloutObservations:
        sel = Selection(version(self.target)) if self.target else Selection(None, "NotFound", "missing")
        return RolloutObservations(
            generation=self.generation,
            selection=sel,
            server_revision=self.revision,
            stable=self.stable.observe(),
            canary=self.canary.observe(),
            measurements=measurements,
        )

    def decide(self, measurements: tuple[MetricResult, ...] = ()) -> Decision:
        return decide(self.spec, self.status, self.observations(measurements), self.now)

    def _apply_track(self, track: Track, plan: TrackPlan | None) -> None:
        if plan is None:
            return
        if plan.version is not None and (plan.version, self.revision) != (track.version, track.revision):
            track.version, track.revision, track.ready = plan.version, self.revision, 0
        track.exists = True
        track.replicas = plan.replicas
        track.ready = min(track.ready, plan.replicas)

    def apply(self, d: Decision) -> None:
        self._apply_track(self.stable, d.stable)
        self._apply_track(self.canary, d.canary)
        self.status = d.status
        self.decisions.append(d)

    def settle(self) -> None:
        """The controller and kubelets: every desired pod becomes ready."""
        if self.auto_ready:
            for t in (self.stable, self.canary):
                t.ready = t.replicas

    def step(self) -> Decision:
        """One reconcile as the handler does it: decide, measure what is due, decide again, apply."""
        d = self.decide()
        if d.measure:
            d = self.decide(tuple(self.measurer(name, self.now) for name in d.measure))
        self.apply(d)
        self.settle()
        return d

    def run(self, max_steps: int = 200, advance: timedelta = timedelta(seconds=1), follow_clock: bool = True) -> None:
        """Reconcile until nothing changes and nothing is due; time moves by ``advance`` per pass,
        or jumps to the decision's ``wait_until`` (a pause end, a measurement) when idle."""
        for _ in range(max_steps):
            before = (self.status, replace(self.stable), replace(self.canary))
            d = self.step()
            if (self.status, self.stable, self.canary) == before:
                if not follow_clock or d.wait_until is None:
                    return
                self.now = max(self.now + advance, d.wait_until)
            else:
                self.now += advance
        raise AssertionError(f"no fixpoint after {max_steps} passes: {self.status.message}")
