"""Canary analysis verdicts: when to measure, how one value is judged, how a run ends. Pure.

A run measures each metric every ``interval`` (the first one interval after the run starts, so
its window covers canary traffic only). Per metric:

- Successful, Failed and Inconclusive results are *measurements*; the metric is done after
  ``count`` of them.
- Failed as soon as failures exceed ``failureLimit``; Inconclusive as soon as inconclusive
  results exceed ``inconclusiveLimit`` (too little traffic never passes: it pauses the rollout).
- Error results (Prometheus unreachable, a failing query, no series) are not measurements: the
  metric is measured again next interval. More than ``errorLimit`` of them in one run, consecutive
  or not, fail the metric, so a broken Prometheus aborts a rollout and never lets it through.

The run is Failed if any metric failed, else Inconclusive if any is, else Running while any
runs, else Successful.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Literal

from modelops.api.modeldeployment import AnalysisMetric, MetricResult
from modelops.drift.durations import parse_duration

Verdict = Literal["Running", "Successful", "Failed", "Inconclusive"]
Phase = Literal["Successful", "Failed", "Inconclusive", "Error"]

PSI_EPSILON = 1e-4
"""Proportion given to an empty PSI bin: the drift package's (and Evidently's) convention."""


# --------------------------------------------------------------------------------------------
# Scheduling and verdicts


def interval_of(metric: AnalysisMetric) -> timedelta:
    return parse_duration(metric.interval)


def metric_due(
    metric: AnalysisMetric, measurements: Sequence[MetricResult], started_at: datetime, now: datetime
) -> bool:
    """Is this metric's next measurement due at ``now``?

    One ``interval`` after the previous measurement (after ``started_at`` for the first), so a
    restarted operator takes one measurement, not a burst of the ones it missed, and every
    window is fresh. Never due once the metric has its verdict.
    """
    if metric_verdict(metric, measurements) != "Running":
        return False
    step = interval_of(metric)
    last = measurements[-1].time if measurements else started_at
    if last is None:  # a result without a time (hand-written status): keep the cadence from the start
        last = started_at + step * len(measurements)
    return now >= last + step


def metric_verdict(metric: AnalysisMetric, measurements: Sequence[MetricResult]) -> Verdict:
    """One metric's verdict from its results so far (in the order taken)."""
    failed = inconclusive = errors = taken = 0
    for m in measurements:
        if m.phase == "Error":
            errors += 1
        else:
            taken += 1
            failed += m.phase == "Failed"
            inconclusive += m.phase == "Inconclusive"
        if failed > metric.failure_limit or errors > metric.error_limit:
            return "Failed"
        if inconclusive > metric.inconclusive_limit:
            return "Inconclusive"
        if taken >= metric.count:
            # Too little traffic is Inconclusive, never Successful: at least one measurement must pass.
            return "Successful" if taken > inconclusive + failed else "Inconclusive"
    return "Running"


def run_verdict(metrics: Sequence[AnalysisMetric], measurements: Mapping[str, Sequence[MetricResult]]) -> Verdict:
    """The run's verdict: Failed over Inconclusive over Running over Successful."""
    verdicts = {metric_verdict(m, measurements.get(m.name, ())) for m in metrics}
    for verdict in ("Failed", "Inconclusive", "Running"):
        if verdict in verdicts:
            return verdict  # type: ignore[return-value]
    return "Successful"


def group_measurements(results: Iterable[MetricResult]) -> dict[str, list[MetricResult]]:
    """``AnalysisRun.measurements`` (one list, in time order) per metric name."""
    grouped: dict[str, list[MetricResult]] = {}
    for r in results:
        grouped.setdefault(r.name, []).append(r)
    return grouped


def deciding_result(
    metrics: Sequence[AnalysisMetric], measurements: Mapping[str, Sequence[MetricResult]]
) -> MetricResult | None:
    """The measurement that explains a Failed or Inconclusive run (for the condition and Event)."""
    wanted = run_verdict(metrics, measurements)
    if wanted not in ("Failed", "Inconclusive"):
        return None
    for metric in metrics:
        results = measurements.get(metric.name, ())
        if metric_verdict(metric, results) != wanted:
            continue
        for r in reversed(results):
            if r.phase == wanted or (wanted == "Failed" and r.phase == "Error"):
                return r
    return None


# --------------------------------------------------------------------------------------------
# Judging one value


def evaluate(
    metric: AnalysisMetric,
    value: float | None,
    stable_value: float | None = None,
    samples: float | None = None,
    now: datetime | None = None,
    *,
    stable_samples: float | None = None,
    detail: str = "",
) -> MetricResult:
    """Judge one measured value against the metric's thresholds.

    ``samples`` is the canary's request count in the interval (predictionShift: its predictions);
    ``stable_samples`` the stable track's, needed when the value is compared with stable
    (``maxRatioToStable``, predictionShift). Fewer than ``minSamples`` on either, or no value
    (NaN, nothing observed), is Inconclusive: too little traffic never passes. ``detail`` is
    appended to the message's parenthesis (e.g. the output a PSI was computed on).
    """
    unit = "predictions" if metric.kind == "predictionShift" else "requests"
    n = _count(samples) or 0
    n_stable = _count(stable_samples)
    counted = f"{n} {unit}" if n_stable is None else f"{n} vs stable {n_stable} {unit}"
    context = ", ".join(x for x in (f"canary, {counted}", detail) if x)

    def result(phase: Phase, message: str) -> MetricResult:
        return MetricResult(
            name=metric.name,
            value=_finite_or_none(value),
            stable_value=_finite_or_none(stable_value),
            samples=n,
            phase=phase,
            message=message,
            time=now,
        )

    window = metric.interval
    few_stable = n_stable is None or n_stable < metric.min_samples
    too_little_stable = f"{metric.name}: too little traffic: stable {n_stable or 0} {unit} < minSamples {metric.min_samples} in {window}"
    if n < metric.min_samples:
        return result(
            "Inconclusive",
            f"{metric.name}: too little traffic: canary {n} {unit} < minSamples {metric.min_samples} in {window}",
        )
    if metric.kind == "predictionShift" and few_stable:  # the value itself compares with stable
        return result("Inconclusive", too_little_stable)
    if value is None or math.isnan(value):
        return result("Inconclusive", f"{metric.name}: no value in {window} ({context})")
    if metric.max is not None and value > metric.max:
        return result("Failed", f"{metric.name} {fmt(value)} > max {fmt(metric.max)} ({context})")
    if metric.min is not None and value < metric.min:
        return result("Failed", f"{metric.name} {fmt(value)} < min {fmt(metric.min)} ({context})")
    limit = metric.max_ratio_to_stable
    if limit is not None:
        if few_stable:
            return result("Inconclusive", too_little_stable)
        if stable_value is None or math.isnan(stable_value):
            return result("Inconclusive", f"{metric.name}: no stable value to compare with in {window} ({context})")
        ratio = _ratio(value, stable_value)
        if ratio > limit:
            return result(
                "Failed",
                f"{metric.name} {fmt(value)} is {fmt(ratio)}x stable {fmt(stable_value)} > maxRatioToStable {fmt(limit)} ({context})",
            )
    return result("Successful", f"{metric.name} {fmt(value)} within {_bounds(metric)} ({context})")


def _ratio(value: float, stable: float) -> float:
    """canary/stable; 0/0 is 1 (the same), x/0 infinite (a canary erring where stable never does)."""
    if stable == 0:
        return 1.0 if value == 0 else math.inf
    return value / stable


def _bounds(metric: AnalysisMetric) -> str:
    parts = []
    if metric.min is not None:
        parts.append(f"min {fmt(metric.min)}")
    if metric.max is not None:
        parts.append(f"max {fmt(metric.max)}")
    if metric.max_ratio_to_stable is not None:
        parts.append(f"maxRatioToStable {fmt(metric.max_ratio_to_stable)}")
    return ", ".join(parts)


def _count(x: float | None) -> int | None:
    return round(x) if x is not None and math.isfinite(x) else None


def _finite_or_none(x: float | None) -> float | None:
    # status is JSON: NaN and infinities do not survive it
    return x if x is not None and math.isfinite(x) else None


def fmt(x: float) -> str:
    """Four significant digits: ``0.31``, ``412``, ``0.0123``, ``inf``."""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.4g}"


# --------------------------------------------------------------------------------------------
# PSI between two Prometheus histograms


Buckets = Sequence[tuple[float, float]]


def psi_from_buckets(stable: Buckets, canary: Buckets, epsilon: float = PSI_EPSILON) -> float:
    """Population Stability Index of ``canary`` against ``stable`` from cumulative ``le`` buckets.

    Each histogram is ``[(upper_bound, cumulative_count), ...]`` as Prometheus exposes
    ``_bucket{le=...}`` (``math.inf`` for ``+Inf``; any order). Only bounds both share are used,
    so servers with different bucket layouts still compare on a common, coarser grid. Counts
    from ``increase()`` are extrapolated floats and may dip slightly; negative bucket
    differences count as zero. Same formula and epsilon as
    :func:`modelops.drift.stattests.psi_from_counts`, stable as the reference: NaN when either
    histogram is empty.
    """
    s = dict(_cumulative(stable))
    c = dict(_cumulative(canary))
    bounds = sorted(set(s) & set(c))
    if not bounds or bounds[-1] != math.inf:
        raise ValueError("histograms need a common +Inf bucket")
    ref = _per_bucket([s[b] for b in bounds])
    cur = _per_bucket([c[b] for b in bounds])
    ref_total, cur_total = sum(ref), sum(cur)
    if ref_total <= 0 or cur_total <= 0:
        return math.nan
    psi = 0.0
    for r, q in zip(ref, cur, strict=True):
        p = r / ref_total or epsilon
        q = q / cur_total or epsilon
        psi += (q - p) * math.log(q / p)
    return psi


def _cumulative(buckets: Buckets) -> Iterable[tuple[float, float]]:
    for le, count in buckets:
        if math.isnan(le):
            raise ValueError("a bucket bound is NaN")
        yield float(le), (0.0 if math.isnan(count) else float(count))


def _per_bucket(cumulative: Sequence[float]) -> list[float]:
    out: list[float] = []
    previous = 0.0
    for total in cumulative:
        out.append(max(total - previous, 0.0))
        previous = max(previous, total)
    return out
