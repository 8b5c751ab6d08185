"""What `modelops rollout get` and `status` show: a ModelDeployment body -> lines of text.

Pure (the clock is passed in), so the layout is table-tested with fixed statuses; the command only
fetches, watches and prints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import ValidationError

from modelops.api.base import Condition, describe_spec_error
from modelops.api.modeldeployment import (
    AnalysisRun,
    CanaryStep,
    MetricResult,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    RolloutPhase,
    TrackStatus,
)
from modelops.drift.durations import parse_duration

FAILED_PHASES = (RolloutPhase.ROLLED_BACK, RolloutPhase.DEGRADED)


@dataclass(frozen=True)
class Rollout:
    """A ModelDeployment as the CLI reads it: spec may be invalid (shown, not fatal), status is typed."""

    name: str
    namespace: str
    generation: int | None
    spec: ModelDeploymentSpec | None
    spec_error: str | None
    status: ModelDeploymentStatus

    @property
    def steps(self) -> list[CanaryStep]:
        canary = self.spec.strategy.canary if self.spec else None
        return list(canary.steps) if canary else []

    @property
    def observed(self) -> bool:
        """The status describes the current spec (kstatus: observedGeneration == generation)."""
        observed = self.status.observed_generation
        return observed is not None and (self.generation is None or observed >= self.generation)

    @property
    def in_progress(self) -> bool:
        """A canary exists (something to promote, pause or abort), even Degraded with autoRollback off."""
        return self.status.canary_version is not None


class UnreadableStatus(ValueError):
    """The status does not parse as a ModelDeploymentStatus (written by something else)."""


def parse_rollout(obj: Mapping[str, Any]) -> Rollout:
    meta = obj.get("metadata") or {}
    spec: ModelDeploymentSpec | None = None
    spec_error: str | None = None
    try:
        spec = ModelDeploymentSpec.model_validate(obj.get("spec") or {})
    except ValidationError as exc:
        spec_error = describe_spec_error(exc)
    try:
        status = ModelDeploymentStatus.model_validate(obj.get("status") or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "status." + ".".join(str(p) for p in first["loc"])
        raise UnreadableStatus(f"{where}: {first['msg']}") from exc
    return Rollout(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        generation=meta.get("generation"),
        spec=spec,
        spec_error=spec_error,
        status=status,
    )


# --- small formatting helpers -------------------------------------------------------------------


def clock(seconds: float) -> str:
    """A countdown or an age, compact: 45s, 3m12s, 1h05m, 2d3h."""
    s = max(0, math.ceil(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h}h"


def number(value: float | None) -> str:
    if value is None:
        return "-"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [(indent + "   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))).rstrip() for r in [header, *rows]]


def one_line(text: str | None) -> str:
    return " ".join((text or "").split())


# --- steps --------------------------------------------------------------------------------------


def pause_remaining(rollout: Rollout, now: datetime) -> float | None:
    """Seconds left in the current timed pause step; None when the current step is no timed pause."""
    status = rollout.status
    index = status.current_step_index
    steps = rollout.steps
    if index is None or not 0 <= index < len(steps) or not rollout.in_progress:
        return None
    pause = steps[index].pause
    # The operator starts the pause clock (pauseStartedAt) when it reaches the step; until then the
    # step's start is the best guess.
    started = status.pause_started_at or status.step_started_at
    if pause is None or pause.duration is None or started is None:
        return None
    elapsed = (now - started).total_seconds()
    return parse_duration(pause.duration).total_seconds() - elapsed


def describe_step(step: CanaryStep) -> str:
    if step.set_weight is not None:
        return f"setWeight {step.set_weight}"
    if step.pause is not None:
        return f"pause {step.pause.duration}" if step.pause.duration else "pause (until promoted)"
    if step.analysis is not None:
        return "analysis " + ", ".join(m.name for m in step.analysis.metrics)
    return "?"


def step_lines(rollout: Rollout, now: datetime) -> list[str]:
    """One line per step: [x] done, [>] current, [ ] to come (all done once the rollout is over)."""
    steps = rollout.steps
    if not steps:
        return ["  (no canary steps: every new version goes straight to 100%)"]
    status = rollout.status
    index = status.current_step_index if rollout.in_progress else None
    total = len(steps)
    lines = []
    for i, step in enumerate(steps):
        text = describe_step(step)
        if index is None:
            mark = " "
        elif i < index:
            mark = "x"
        elif i == index:
            mark = ">"
            remaining = pause_remaining(rollout, now)
            if remaining is not None:
                text += f" ({clock(remaining)} left)" if remaining > 0 else " (done, advancing)"
        else:
            mark = " "
        lines.append(f"  [{mark}] {i + 1}/{total}  {text}")
    if index is not None and index >= total:
        lines.append(f"  [>] all {total} steps done: promoting {status.canary_version} to stable")
    return lines


# --- analysis -----------------------------------------------------------------------------------


def _metric_count(rollout: Rollout, run: AnalysisRun, metric: str) -> int | None:
    steps = rollout.steps
    if 0 <= run.step_index < len(steps) and steps[run.step_index].analysis is not None:
        analysis = steps[run.step_index].analysis
        assert analysis is not None
        for m in analysis.metrics:
            if m.name == metric:
                return m.count
    return None


def analysis_lines(rollout: Rollout, now: datetime) -> list[str]:
    """The newest analysis run: per metric, its latest measurement and how many were taken."""
    runs = rollout.status.analysis_runs
    if not runs:
        return []
    run = runs[-1]
    total = len(rollout.steps)
    where = f"step {run.step_index + 1}/{total}" if total else f"step {run.step_index + 1}"
    head = f"Analysis at {where}" + (f" of {run.version}" if run.version else "") + f": {run.phase}"
    head += f", started {clock((now - run.started_at).total_seconds())} ago"
    lines = [head + (f": {one_line(run.message)}" if run.message else "")]
    latest: dict[str, MetricResult] = {}
    taken: dict[str, int] = {}
    for m in run.measurements:
        latest[m.name] = m
        taken[m.name] = taken.get(m.name, 0) + 1
    if not latest:
        lines.append("  (no measurement yet)")
        return lines
    rows = []
    for name, m in latest.items():
        count = _metric_count(rollout, run, name)
        rows.append(
            [
                name,
                f"{taken[name]}/{count}" if count else str(taken[name]),
                number(m.value),
                number(m.stable_value),
                "-" if m.samples is None else str(m.samples),
                m.phase,
                one_line(m.message),
            ]
        )
    lines += table(["METRIC", "TAKEN", "CANARY", "STABLE", "SAMPLES", "PHASE", "MESSAGE"], rows)
    return lines


# --- the whole view -----------------------------------------------------------------------------


def _track(label: str, track: TrackStatus | None, version: str | None, extra: str = "") -> str:
    shown = version or (track.version if track else None)
    if shown is None and track is None:
        return f"{label}-"
    replicas = f"{track.ready_replicas}/{track.replicas} ready" if track else "0/0 ready"
    return f"{label}{shown or '-'}   {replicas}{extra}"


def control_requests(rollout: Rollout) -> list[str]:
    """The one-shot control requests a user wrote that the operator has not consumed yet (a user
    pause is a state, not a request: shown on its own line)."""
    s = rollout.status
    out = []
    if s.abort:
        out.append("abort")
    if s.promote_full:
        out.append("full promotion")
    if s.promote_step is not None:
        out.append(f"promote of step {s.promote_step + 1}")
    return out


def model_line(spec: ModelDeploymentSpec) -> str:
    ref = spec.model
    if ref.version_ref is not None:
        return f"{ref.version_ref} (versionRef" + (f", stage {ref.stage}" if ref.stage else "") + ")"
    stage = ref.stage or "Production"
    approved = " approved" if ref.require_approval and stage == "Production" else ""
    return f"newest {stage}{approved} version of {ref.model_name} (modelName)"


def render(rollout: Rollout, now: datetime) -> list[str]:
    """The `rollout get` view."""
    s = rollout.status
    lines = [f"Name:          {rollout.name}", f"Namespace:     {rollout.namespace}"]
    if rollout.spec is not None:
        lines.append(f"Model:         {model_line(rollout.spec)}")
    else:
        lines.append(f"Spec:          invalid: {rollout.spec_error}")
    phase = str(s.phase)
    if rollout.spec is not None and rollout.spec.paused:
        phase += " (spec.paused)"
    lines.append(f"Phase:         {phase}")
    if s.message:
        lines.append(f"Message:       {one_line(s.message)}")
    gen = f"{rollout.generation if rollout.generation is not None else '-'}"
    if rollout.observed:
        lines.append(f"Generation:    {gen} (observed)")
    else:
        seen = "-" if s.observed_generation is None else str(s.observed_generation)
        lines.append(f"Generation:    {gen} (observed {seen}: the operator has not caught up with the spec)")
    lines.append(_track("Stable:        ", s.tracks.stable, s.stable_version))
    if s.canary_version is not None or (s.tracks.canary is not None and s.tracks.canary.replicas):
        lines.append(_track("Canary:        ", s.tracks.canary, s.canary_version))
    lines.append(f"Canary weight: {s.canary_weight}%")
    if s.failed_version:
        lines.append(f"Failed:        {s.failed_version} (not rolled out again until `retry` or a spec change)")
    if s.paused_by_user:
        lines.append(f"Paused by:     a user (`modelops rollout resume {rollout.name}` goes on)")
    requests = control_requests(rollout)
    if requests:
        lines.append("Requested:     " + "; ".join(requests) + " (waiting for the operator)")
    lines += ["", "Steps:", *step_lines(rollout, now)]
    analysis = analysis_lines(rollout, now)
    if analysis:
        lines += ["", *analysis]
    if s.conditions:
        rows = [[c.type, c.status, c.reason or "-", one_line(c.message)] for c in s.conditions]
        lines += ["", "Conditions:", *table(["TYPE", "STATUS", "REASON", "MESSAGE"], rows)]
    return lines


# --- progress and outcome (rollout status, get --watch) -----------------------------------------


class Outcome(Enum):
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def ended(rollout: Rollout) -> Outcome:
    """Where `get --watch` stops: Healthy, RolledBack or Degraded for the current spec. A stalled
    but live rollout (paused on an inconclusive analysis, say) is worth watching on."""
    s = rollout.status
    if not rollout.observed:
        return Outcome.WAITING
    if s.phase in FAILED_PHASES:
        return Outcome.FAILED
    if s.phase == RolloutPhase.HEALTHY and s.canary_version is None:
        return Outcome.SUCCEEDED
    return Outcome.WAITING


def _condition(rollout: Rollout, type_: str) -> Condition | None:
    return next((c for c in rollout.status.conditions if c.type == type_), None)


def _reason(rollout: Rollout) -> str:
    """The reason of the condition that explains a failure: Stalled first, then Ready."""
    stalled, ready = _condition(rollout, "Stalled"), _condition(rollout, "Ready")
    if stalled is not None and stalled.status == "True" and stalled.reason:
        return stalled.reason
    if ready is not None and ready.status == "False" and ready.reason:
        return ready.reason
    return ""


def progress(rollout: Rollout) -> tuple[Outcome, str]:
    """Where the rollout stands, in one line (what `rollout status` prints when it changes)."""
    s = rollout.status
    name = f'modeldeployment "{rollout.name}"'
    if not rollout.observed:
        seen = "none" if s.observed_generation is None else str(s.observed_generation)
        return Outcome.WAITING, (
            f"Waiting for {name} to be observed by the operator (generation {rollout.generation}, observed {seen})..."
        )
    stalled = _condition(rollout, "Stalled")
    if s.phase in FAILED_PHASES or (stalled is not None and stalled.status == "True"):
        # kstatus: Stalled=True is a failure that needs a person (invalid spec, missing version...).
        reason = _reason(rollout)
        what = f"{name} {s.phase}" + (f" ({reason})" if reason else "")
        message = s.message or (stalled.message if stalled is not None else "")
        return Outcome.FAILED, what + (f": {one_line(message)}" if message else "")
    if s.phase == RolloutPhase.HEALTHY and s.canary_version is None:
        ready = _condition(rollout, "Ready")
        if ready is not None and ready.status != "True":
            return Outcome.WAITING, (
                f"Waiting for {name}: {s.stable_version or '-'} serves 100% but it is not Ready"
                + (f" ({ready.reason})" if ready.reason else "")
                + (f": {one_line(ready.message)}" if ready.message else "")
            )
        replicas = ""
        if s.tracks.stable is not None:
            replicas = f", {s.tracks.stable.ready_replicas}/{s.tracks.stable.replicas} ready"
        return Outcome.SUCCEEDED, f"{name} successfully rolled out: {s.stable_version or '-'} serves 100%{replicas}"
    steps = rollout.steps
    index = s.current_step_index
    where = ""
    if index is not None and steps:
        where = (
            f"all {len(steps)} steps done, promoting"
            if index >= len(steps)
            else (f"step {index + 1}/{len(steps)} {describe_step(steps[index])}")
        )
    parts = [p for p in (where, f"canary weight {s.canary_weight}%") if p]
    canary = s.tracks.canary
    if canary is not None and s.canary_version is not None:
        parts.append(f"canary {canary.ready_replicas}/{canary.replicas} ready")
    detail = ", ".join(parts)
    if s.phase == RolloutPhase.PAUSED or s.paused_by_user or (rollout.spec is not None and rollout.spec.paused):
        why = one_line(s.message) if s.message else "paused"
        return Outcome.WAITING, f"{name} paused ({detail}): {why}"
    version = f" of {s.canary_version}" if s.canary_version else ""
    return Outcome.WAITING, f"Waiting for {name} rollout{version} to finish: {detail}..."
