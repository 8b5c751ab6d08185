"""measure() against a real Prometheus scraping real model servers under real load."""

from __future__ import annotations

import math
import re
import socket
from datetime import UTC, datetime
from typing import Any

import pytest

from modelops.api.modeldeployment import AnalysisMetric
from modelops.k8s.analysis import AnalysisTarget, default_prometheus_url, measure, set_default_prometheus_url
from modelops.telemetry import REGISTRY

from .conftest import BAD_REQUESTS, GOOD_REQUESTS, NAMESPACE, QUIET_REQUESTS, ROWS, Cluster

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

CANARY_REQUESTS = QUIET_REQUESTS + GOOD_REQUESTS  # every request both tracks of `good` answered
EXTRAPOLATION = 0.25
"""increase() extrapolates each series from its last scrape to the query time: up to one scrape
interval (1 s) over series only ~5-10 s old here, so counts read high by up to ~20%."""


def target(cluster: Cluster, deployment: str, url: str | None = None) -> AnalysisTarget:
    return AnalysisTarget(NAMESPACE, deployment, "churn-v1", "churn-v2", cluster.prometheus_url if url is None else url)


def metric(**kw: Any) -> AnalysisMetric:
    data: dict[str, Any] = {"name": "errors", "kind": "errorRate", "max": 0.05, "interval": "1m", **kw}
    return AnalysisMetric.model_validate({k: v for k, v in data.items() if v is not None})


def now() -> datetime:
    return datetime.now(UTC)


def sample(name: str, labels: dict[str, str]) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_error_rate_is_near_zero_for_good_traffic(cluster: Cluster) -> None:
    r = await measure(metric(), target(cluster, "good"), now())
    assert r.phase == "Successful", r.message
    assert r.value == 0.0
    assert r.stable_value == 0.0
    assert r.samples == pytest.approx(CANARY_REQUESTS, rel=EXTRAPOLATION)
    assert re.fullmatch(r"errors 0 within max 0\.05 \(canary, \d+ vs stable \d+ requests\)", r.message), r.message


async def test_error_rate_is_high_when_the_canary_answers_400(cluster: Cluster) -> None:
    # Malformed requests answered 400 count as errors: the check counts every non-2xx answer.
    r = await measure(metric(), target(cluster, "const"), now())
    assert r.phase == "Failed", r.message
    expected = BAD_REQUESTS / (BAD_REQUESTS + CANARY_REQUESTS)  # 50 / 205
    assert r.value == pytest.approx(expected, rel=0.1)
    assert r.stable_value == 0.0
    assert re.fullmatch(r"errors 0\.2\d* > max 0\.05 \(canary, \d+ vs stable \d+ requests\)", r.message), r.message
    # and compared with stable, which erred never: an infinite ratio
    ratio = await measure(metric(max=None, maxRatioToStable=2), target(cluster, "const"), now())
    assert ratio.phase == "Failed"
    assert "is infx stable 0 > maxRatioToStable 2" in ratio.message


async def test_latency_p99_is_a_real_value(cluster: Cluster) -> None:
    r = await measure(metric(name="p99", kind="latencyP99", max=2.5), target(cluster, "good"), now())
    assert r.phase == "Successful", r.message
    assert r.value is not None
    assert r.stable_value is not None
    assert 0 < r.value < 2.5
    assert 0 < r.stable_value < 2.5
    ratio = await measure(
        metric(name="p99", kind="latencyP99", max=None, maxRatioToStable=1000), target(cluster, "good"), now()
    )
    assert ratio.phase == "Successful", ratio.message
    assert "within maxRatioToStable 1000" in ratio.message
    strict = await measure(metric(name="p99", kind="latencyP99", max=1e-6), target(cluster, "good"), now())
    assert strict.phase == "Failed"
    assert re.fullmatch(r"p99 [0-9.e-]+ > max 1e-06 \(canary, \d+ vs stable \d+ requests\)", strict.message)


async def test_prediction_shift_is_high_for_a_constant_model(cluster: Cluster) -> None:
    r = await measure(metric(name="shift", kind="predictionShift", max=0.2), target(cluster, "const"), now())
    assert r.phase == "Failed", r.message
    assert r.value is not None
    assert r.value > 2  # roughly half the stable's predictions are 0, none of the canary's
    assert r.samples == pytest.approx(CANARY_REQUESTS * ROWS, rel=EXTRAPOLATION)  # predictions, not requests
    assert re.fullmatch(
        r"shift \d+\.\d+ > max 0\.2 \(canary, \d+ vs stable \d+ predictions, PSI vs stable, output predict\)", r.message
    ), r.message


async def test_prediction_shift_is_low_for_the_same_model(cluster: Cluster) -> None:
    r = await measure(metric(name="shift", kind="predictionShift", max=0.2), target(cluster, "good"), now())
    assert r.phase == "Successful", r.message
    assert r.value is not None
    assert r.value < 0.01
    one = await measure(
        metric(name="shift", kind="predictionShift", max=0.2, output="predict"), target(cluster, "good"), now()
    )
    assert one.phase == "Successful"
    missing = await measure(
        metric(name="shift", kind="predictionShift", max=0.2, output="nope"), target(cluster, "good"), now()
    )
    assert missing.phase == "Error"
    assert "no prediction histogram for output 'nope'" in missing.message


async def test_too_little_traffic_is_inconclusive(cluster: Cluster) -> None:
    # At quiet_at each track had answered 5 requests: no check may pass on that.
    for kind, extra in (("errorRate", {}), ("latencyP99", {}), ("predictionShift", {"max": 0.2})):
        m = metric(name=kind, kind=kind, **extra)
        r = await measure(m, target(cluster, "good"), cluster.quiet_at)
        assert r.phase == "Inconclusive", r.message
        unit = "predictions" if kind == "predictionShift" else "requests"
        assert re.fullmatch(rf"{kind}: too little traffic: canary (\d+) {unit} < minSamples 50 in 1m", r.message)
        assert r.samples is not None
        assert 0 < r.samples < 50  # 5 requests (25 predictions), read high by increase()'s extrapolation


async def test_promql_kind_is_templated(cluster: Cluster) -> None:
    query = (
        'sum(increase(modelops_inference_requests_total{namespace="{{namespace}}",'
        'deployment="{{deployment}}",track="{{track}}",code="200"}[{{interval}}]))'
    )
    r = await measure(
        metric(name="ok", kind="promql", query=query, max=None, min=CANARY_REQUESTS * 0.8),
        target(cluster, "good"),
        now(),
    )
    assert r.phase == "Successful", r.message
    assert r.value == pytest.approx(CANARY_REQUESTS, rel=EXTRAPOLATION)
    scalar = await measure(
        metric(name="one", kind="promql", query="scalar(vector(0.5))"), target(cluster, "good"), now()
    )
    assert (scalar.phase, scalar.value) == ("Failed", 0.5)
    assert scalar.message.startswith("one 0.5 > max 0.05 (canary, ")


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("sum(rate(modelops_inference_requests_total[1m]", "bad_data"),  # a PromQL syntax error
        ('sum(up{job="no-such-job"})', "query returned no data"),
        ("up", "returned 4 series"),  # one per target: must be aggregated to one value
        ("sum(up{a='{{nope}}'})", "unknown placeholder {{nope}}"),
    ],
)
async def test_promql_failures_are_errors(cluster: Cluster, query: str, error: str) -> None:
    r = await measure(metric(name="q", kind="promql", query=query), target(cluster, "good"), now())
    assert r.phase == "Error"
    assert error in r.message
    assert r.message.startswith("q: ")
    if error != "unknown placeholder {{nope}}":
        assert cluster.prometheus_url in r.message


async def test_unreachable_prometheus_is_an_error_naming_the_address(cluster: Cluster) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    r = await measure(metric(), target(cluster, "good", closed), now())
    assert r.phase == "Error"
    assert r.value is None
    assert r.message.startswith(f"errors: Prometheus at {closed} is unreachable: ")
    assert "onnect" in r.message  # the cause, e.g. "Cannot connect to host ..."


async def test_a_server_that_is_not_prometheus_is_an_error(cluster: Cluster) -> None:
    model_server = cluster.server("good", "stable").url  # answers 404 on /api/v1/query
    r = await measure(metric(), target(cluster, "good", model_server), now())
    assert r.phase == "Error"
    assert f"Prometheus at {model_server}" in r.message
    assert "404" in r.message


async def test_no_series_for_the_deployment_is_an_error(cluster: Cluster) -> None:
    r = await measure(metric(), target(cluster, "no-such-deployment"), now())
    assert r.phase == "Error"
    assert "no series for modelops_inference_requests_total" in r.message
    assert 'deployment="no-such-deployment"' in r.message
    assert cluster.prometheus_url in r.message


async def test_no_address_is_an_error_not_a_pass(cluster: Cluster) -> None:
    r = await measure(metric(), target(cluster, "good", ""), now())
    assert r.phase == "Error"
    assert "no usable Prometheus address" in r.message
    assert "spec.prometheus.address" in r.message


async def test_every_measurement_is_exported(cluster: Cluster) -> None:
    await measure(metric(name="exported"), target(cluster, "const"), now())
    labels = {"namespace": NAMESPACE, "deployment": "const", "metric": "exported"}
    canary = sample("modelops_analysis_measurement", {**labels, "track": "canary"})
    assert canary == pytest.approx(BAD_REQUESTS / (BAD_REQUESTS + CANARY_REQUESTS), rel=0.1)
    assert sample("modelops_analysis_measurement", {**labels, "track": "stable"}) == 0.0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    await measure(metric(name="exported"), target(cluster, "const", closed), now())
    value = sample("modelops_analysis_measurement", {**labels, "track": "canary"})
    assert value is not None
    assert math.isnan(value)  # an Error has no value, and says so


def test_default_prometheus_url_flag_then_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELOPS_PROMETHEUS_URL", raising=False)
    set_default_prometheus_url(None)
    assert default_prometheus_url() is None
    monkeypatch.setenv("MODELOPS_PROMETHEUS_URL", "http://prometheus.monitoring:9090")
    assert default_prometheus_url() == "http://prometheus.monitoring:9090"
    set_default_prometheus_url("http://flag:9090")
    try:
        assert default_prometheus_url() == "http://flag:9090"
    finally:
        set_default_prometheus_url(None)
