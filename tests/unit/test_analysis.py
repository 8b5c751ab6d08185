"""Canary analysis verdicts: when a metric is measured, how one value is judged, how a run ends."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from modelops.api.crdgen import KINDS, crd
from modelops.api.modeldeployment import AnalysisMetric, MetricResult
from modelops.core.analysis import (
    deciding_result,
    evaluate,
    group_measurements,
    metric_due,
    metric_verdict,
    run_verdict,
)
from modelops.sandbox.schema import validate_cel

START = datetime(2026, 11, 30, 12, tzinfo=UTC)


def metric(**kw: Any) -> AnalysisMetric:
    """An errorRate metric with max 0.05; a keyword set to None removes that field."""
    data: dict[str, Any] = {"name": "errors", "kind": "errorRate", "max": 0.05, **kw}
    return AnalysisMetric.model_validate({k: v for k, v in data.items() if v is not None})


def results(phases: str, name: str = "errors") -> list[MetricResult]:
    """'SFIE' -> Successful, Failed, Inconclusive, Error, 10 s apart."""
    full = {"S": "Successful", "F": "Failed", "I": "Inconclusive", "E": "Error"}
    return [
        MetricResult(name=name, phase=full[p], time=START + timedelta(seconds=10 * (i + 1)))  # type: ignore[arg-type]
        for i, p in enumerate(phases)
    ]


# ------------------------------------------------------------------ one metric's verdict


@pytest.mark.parametrize(
    ("limits", "phases", "expected"),
    [
        # count: the metric is done after `count` measurements
        ({"count": 3}, "", "Running"),
        ({"count": 3}, "SS", "Running"),
        ({"count": 3}, "SSS", "Successful"),
        ({"count": 1}, "S", "Successful"),
        # failureLimit: failures beyond it fail at once, without waiting for `count`
        ({"count": 3, "failureLimit": 0}, "F", "Failed"),
        ({"count": 3, "failureLimit": 1}, "F", "Running"),
        ({"count": 3, "failureLimit": 1}, "FSS", "Successful"),
        ({"count": 5, "failureLimit": 1}, "FSF", "Failed"),
        # inconclusiveLimit: inconclusive results are measurements too
        ({"count": 3, "inconclusiveLimit": 1}, "I", "Running"),
        ({"count": 3, "inconclusiveLimit": 1}, "ISS", "Successful"),
        ({"count": 3, "inconclusiveLimit": 1}, "II", "Inconclusive"),
        ({"count": 3, "inconclusiveLimit": 0}, "I", "Inconclusive"),
        # ... but a metric never measured with enough traffic is never Successful, whatever the limit
        ({"count": 2, "inconclusiveLimit": 5}, "II", "Inconclusive"),
        ({"count": 2, "inconclusiveLimit": 5}, "IS", "Successful"),
        ({"count": 3, "inconclusiveLimit": 5, "failureLimit": 1}, "IFI", "Inconclusive"),
        # errors are not measurements: they do not advance `count` ...
        ({"count": 2, "errorLimit": 2}, "ES", "Running"),
        ({"count": 2, "errorLimit": 2}, "ESES", "Successful"),
        # ... and more than errorLimit of them fail the metric, consecutive or not
        ({"count": 3, "errorLimit": 2}, "EEE", "Failed"),
        ({"count": 9, "errorLimit": 2}, "ESESSE", "Failed"),
        ({"count": 3, "errorLimit": 0}, "E", "Failed"),
        # a Prometheus that never answers can never pass, whatever the limits
        ({"count": 1, "failureLimit": 1000, "inconclusiveLimit": 1000, "errorLimit": 5}, "E" * 6, "Failed"),
        # the first limit crossed decides, in the order taken
        ({"count": 5, "failureLimit": 0, "inconclusiveLimit": 0}, "IF", "Inconclusive"),
        ({"count": 5, "failureLimit": 0, "inconclusiveLimit": 0}, "FI", "Failed"),
        # results after the verdict do not change it
        ({"count": 2}, "SSF", "Successful"),
    ],
)
def test_metric_verdict(limits: dict[str, int], phases: str, expected: str) -> None:
    assert metric_verdict(metric(**limits), results(phases)) == expected


limits = st.fixed_dictionaries(
    {
        "count": st.integers(1, 6),
        "failureLimit": st.integers(0, 3),
        "inconclusiveLimit": st.integers(0, 3),
        "errorLimit": st.integers(0, 3),
    }
)


@settings(max_examples=150, deadline=None)
@given(limits=limits, phases=st.text(alphabet="SFIE", max_size=12))
def test_a_verdict_once_reached_never_changes(limits: dict[str, int], phases: str) -> None:
    m = metric(**limits)
    verdicts = [metric_verdict(m, results(phases[:i])) for i in range(len(phases) + 1)]
    terminal = [v for v in verdicts if v != "Running"]
    assert all(v == terminal[0] for v in terminal)
    assert verdicts[0] == "Running"


@settings(max_examples=150, deadline=None)
@given(limits=limits, phases=st.text(alphabet="SFIE", max_size=12))
def test_success_needs_count_real_measurements_within_the_limits(limits: dict[str, int], phases: str) -> None:
    m = metric(**limits)
    if metric_verdict(m, results(phases)) == "Successful":
        # the prefix that decided it: `count` measurements, none of the limits exceeded
        taken = [p for p in phases if p != "E"][: m.count]
        assert len(taken) == m.count
        assert taken.count("F") <= m.failure_limit
        assert taken.count("I") <= m.inconclusive_limit


@settings(max_examples=100, deadline=None)
@given(limits=limits, n=st.integers(0, 20))
def test_errors_alone_never_pass(limits: dict[str, int], n: int) -> None:
    m = metric(**limits)
    verdict = metric_verdict(m, results("E" * n))
    assert verdict == ("Failed" if n > m.error_limit else "Running")


def test_defaults_fail_on_the_first_failure_and_the_third_error() -> None:
    m = metric()
    assert (m.count, m.failure_limit, m.inconclusive_limit, m.error_limit, m.min_samples) == (3, 0, 1, 2, 50)
    assert metric_verdict(m, results("F")) == "Failed"
    assert metric_verdict(m, results("EE")) == "Running"
    assert metric_verdict(m, results("EEE")) == "Failed"


# ------------------------------------------------------------------ the run's verdict


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("SSS", "SSS", "Successful"),
        ("SSS", "SS", "Running"),
        ("", "", "Running"),
        ("F", "", "Failed"),  # a failure ends the run at once: the rollout aborts
        ("SSS", "F", "Failed"),
        ("II", "SSS", "Inconclusive"),
        ("II", "", "Inconclusive"),
        ("II", "F", "Failed"),  # Failed wins over Inconclusive
        ("EEE", "SSS", "Failed"),
    ],
)
def test_run_verdict(a: str, b: str, expected: str) -> None:
    metrics = [metric(name="a"), metric(name="b", kind="latencyP99", max=0.5)]
    grouped = group_measurements([*results(a, "a"), *results(b, "b")])
    assert run_verdict(metrics, grouped) == expected


def test_group_measurements_keeps_the_order_per_metric() -> None:
    flat = [*results("SF", "a"), *results("I", "b")]
    grouped = group_measurements(sorted(flat, key=lambda r: r.time or START))
    assert [r.phase for r in grouped["a"]] == ["Successful", "Failed"]
    assert [r.phase for r in grouped["b"]] == ["Inconclusive"]


def test_deciding_result_is_the_measurement_that_failed() -> None:
    metrics = [metric(name="a"), metric(name="b", kind="latencyP99", max=0.5)]
    failing = MetricResult(name="b", phase="Failed", message="b 0.9 > max 0.5 (canary, 80 requests)", time=START)
    grouped = {"a": results("S", "a"), "b": [failing]}
    assert deciding_result(metrics, grouped) == failing
    assert deciding_result(metrics, {"a": results("SSS", "a"), "b": results("SSS", "b")}) is None
    errors = {"a": results("EEE", "a")}
    decided = deciding_result(metrics, errors)
    assert decided is not None
    assert decided.phase == "Error"


# ------------------------------------------------------------------ scheduling


@pytest.mark.parametrize(
    ("phases", "seconds_after_start", "due"),
    [
        ("", 0, False),  # the first measurement waits one interval: its window is canary traffic
        ("", 29, False),
        ("", 30, True),
        ("S", 30, False),  # taken at +10 s (see results()): next at +40 s
        ("S", 39, False),
        ("S", 40, True),
        ("SS", 1000, True),  # after a restart: one measurement now, not a burst of the missed ones
        ("SSS", 1000, False),  # count reached
        ("F", 1000, False),  # verdict reached
        ("E", 40, True),  # an Error is retried next interval
    ],
)
def test_metric_due(phases: str, seconds_after_start: int, due: bool) -> None:
    m = metric(interval="30s")
    assert metric_due(m, results(phases), START, START + timedelta(seconds=seconds_after_start)) is due


def test_metric_due_without_result_times_keeps_the_cadence_from_the_start() -> None:
    m = metric(interval="1m")
    untimed = [MetricResult(name="errors", phase="Successful")]
    assert not metric_due(m, untimed, START, START + timedelta(seconds=119))
    assert metric_due(m, untimed, START, START + timedelta(seconds=120))


def test_metric_due_reads_compound_and_fractional_intervals() -> None:
    m = metric(interval="1m30s")
    assert not metric_due(m, [], START, START + timedelta(seconds=89))
    assert metric_due(m, [], START, START + timedelta(seconds=90))
    m = metric(interval="1.5s")
    assert not metric_due(m, [], START, START + timedelta(milliseconds=1499))
    assert metric_due(m, [], START, START + timedelta(milliseconds=1500))


# ------------------------------------------------------------------ judging one value


@pytest.mark.parametrize(
    ("kw", "value", "stable", "samples", "stable_samples", "phase", "message"),
    [
        (
            {"name": "errorRate", "max": 0.05},
            0.31, None, 412, None,
            "Failed", "errorRate 0.31 > max 0.05 (canary, 412 requests)",
        ),
        (
            {"name": "errorRate", "max": 0.05},
            0.01, 0.0, 412, 388,
            "Successful", "errorRate 0.01 within max 0.05 (canary, 412 vs stable 388 requests)",
        ),
        (
            {"name": "errorRate", "max": 0.05},
            0.05, None, 50, None,
            "Successful", "errorRate 0.05 within max 0.05 (canary, 50 requests)",  # the bound itself passes
        ),
        (
            {"name": "errorRate", "max": 0.05},
            0.0, None, 49, None,
            "Inconclusive", "errorRate: too little traffic: canary 49 requests < minSamples 50 in 30s",
        ),
        (
            {"name": "errorRate", "max": 0.05, "minSamples": 0},
            math.nan, None, 0, None,
            "Inconclusive", "errorRate: no value in 30s (canary, 0 requests)",
        ),
        (
            {"name": "p99", "kind": "latencyP99", "max": 0.25, "interval": "1m"},
            0.1234567, 0.1, 1000, 990,
            "Successful", "p99 0.1235 within max 0.25 (canary, 1000 vs stable 990 requests)",
        ),
        (
            {"name": "p99", "kind": "latencyP99", "maxRatioToStable": 1.5, "max": None},
            0.3, 0.1, 300, 700,
            "Failed", "p99 0.3 is 3x stable 0.1 > maxRatioToStable 1.5 (canary, 300 vs stable 700 requests)",
        ),
        (
            {"name": "p99", "kind": "latencyP99", "maxRatioToStable": 1.5, "max": None},
            0.12, 0.1, 300, 700,
            "Successful", "p99 0.12 within maxRatioToStable 1.5 (canary, 300 vs stable 700 requests)",
        ),
        (
            {"name": "p99", "kind": "latencyP99", "maxRatioToStable": 1.5, "max": None},
            0.12, 0.1, 300, 20,
            "Inconclusive", "p99: too little traffic: stable 20 requests < minSamples 50 in 30s",
        ),
        (
            # an absolute bound does not wait for the stable track's traffic
            {"name": "p99", "kind": "latencyP99", "maxRatioToStable": 1.5, "max": 0.2},
            0.9, None, 300, None,
            "Failed", "p99 0.9 > max 0.2 (canary, 300 requests)",
        ),
        (
            {"name": "errors-vs-stable", "maxRatioToStable": 2, "max": None},
            0.01, 0.0, 300, 300,
            "Failed", "errors-vs-stable 0.01 is infx stable 0 > maxRatioToStable 2 (canary, 300 vs stable 300 requests)",
        ),
        (
            {"name": "errors-vs-stable", "maxRatioToStable": 2, "max": None},
            0.0, 0.0, 300, 300,
            "Successful", "errors-vs-stable 0 within maxRatioToStable 2 (canary, 300 vs stable 300 requests)",
        ),
        (
            {"name": "throughput", "kind": "promql", "query": "sum(rate(x[1m]))", "min": 10, "max": None},
            7.5, None, 120, None,
            "Failed", "throughput 7.5 < min 10 (canary, 120 requests)",
        ),
        (
            {"name": "throughput", "kind": "promql", "query": "sum(rate(x[1m]))", "min": 10, "max": 100},
            12.0, None, 120, None,
            "Successful", "throughput 12 within min 10, max 100 (canary, 120 requests)",
        ),
        (
            {"name": "shift", "kind": "predictionShift", "max": 0.2},
            2.3456, None, 900, 1100,
            "Failed", "shift 2.346 > max 0.2 (canary, 900 vs stable 1100 predictions, output predict)",
        ),
        (
            {"name": "shift", "kind": "predictionShift", "max": 0.2},
            0.01, None, 900, 10,
            "Inconclusive", "shift: too little traffic: stable 10 predictions < minSamples 50 in 30s",
        ),
    ],
)  # fmt: skip
def test_evaluate(
    kw: dict[str, Any],
    value: float,
    stable: float | None,
    samples: int,
    stable_samples: int | None,
    phase: str,
    message: str,
) -> None:
    m = metric(**kw)
    detail = "output predict" if m.kind == "predictionShift" else ""
    r = evaluate(m, value, stable, samples, START, stable_samples=stable_samples, detail=detail)
    assert (r.phase, r.message) == (phase, message)
    assert r.name == m.name
    assert r.time == START
    assert r.samples == samples


def test_evaluate_keeps_values_json_safe() -> None:
    r = evaluate(metric(minSamples=0), math.nan, math.inf, 0)
    assert r.value is None
    assert r.stable_value is None
    r = evaluate(metric(), 0.5, 0.25, 123.6)
    assert (r.value, r.stable_value, r.samples) == (0.5, 0.25, 124)


def test_too_little_traffic_is_never_successful_even_with_a_perfect_value() -> None:
    for n in (0, 1, 49):
        assert evaluate(metric(), 0.0, 0.0, n).phase == "Inconclusive"


# ------------------------------------------------------------------ the spec's own checks


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"kind": "promql"}, "query is required for kind promql"),
        ({"kind": "errorRate", "query": "up"}, "query is required for kind promql and only allowed there"),
        ({"max": None}, "set at least one threshold"),
        ({"kind": "predictionShift", "maxRatioToStable": 2}, "maxRatioToStable applies to errorRate and latencyP99"),
        ({"output": "predict"}, "output applies to predictionShift only"),
        ({"minSamples": -1}, "minSamples"),
        ({"errorLimit": -1}, "errorLimit"),
    ],
)
def test_invalid_metrics_are_rejected(kw: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        metric(**kw)


def metric_schema() -> dict[str, Any]:
    k = next(k for k in KINDS if k.kind == "ModelDeployment")
    spec = crd(k)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    steps = spec["properties"]["strategy"]["properties"]["canary"]["properties"]["steps"]
    schema: dict[str, Any] = steps["items"]["properties"]["analysis"]["properties"]["metrics"]["items"]
    return schema


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"name": "m", "kind": "promql", "max": 1}, "query is required for kind promql and only allowed there"),
        ({"name": "m", "kind": "errorRate", "query": "up", "max": 1}, "query is required"),
        ({"name": "m", "kind": "errorRate"}, "set at least one threshold: max, min or maxRatioToStable"),
        (
            {"name": "m", "kind": "predictionShift", "maxRatioToStable": 2},
            "maxRatioToStable applies to errorRate and latencyP99 only",
        ),
        ({"name": "m", "kind": "errorRate", "max": 1, "output": "predict"}, "output applies to predictionShift only"),
    ],
)
def test_the_crd_rejects_what_the_model_rejects(body: dict[str, Any], error: str) -> None:
    # The API server's CEL rules, evaluated as the sandbox's API server does (cel-python).
    found = [c.detail for c in validate_cel(body, None, metric_schema(), "metric", has_old=False)]
    assert any(error in d for d in found), found


@pytest.mark.parametrize(
    "body",
    [
        {"name": "m", "kind": "promql", "query": "sum(up)", "min": 1},
        {"name": "m", "kind": "errorRate", "max": 0.05, "maxRatioToStable": 2},
        {"name": "m", "kind": "latencyP99", "maxRatioToStable": 1.5},
        {"name": "m", "kind": "predictionShift", "max": 0.2, "output": "predict"},
    ],
)
def test_the_crd_accepts_valid_metrics(body: dict[str, Any]) -> None:
    assert validate_cel(body, None, metric_schema(), "metric", has_old=False) == []
    AnalysisMetric.model_validate(body)
