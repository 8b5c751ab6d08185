"""Taking one canary measurement from Prometheus's HTTP API.

The judging is pure (:mod:`modelops.core.analysis`); this module only asks Prometheus. Anything
that stops a measurement (Prometheus unreachable, an HTTP or PromQL error, no series for the
deployment) is an ``Error`` result whose message names the address and the error: never a pass.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from modelops.api.modeldeployment import AnalysisMetric, MetricResult
from modelops.core import analysis_queries as q
from modelops.core.analysis import evaluate, fmt, psi_from_buckets
from modelops.telemetry import record_analysis_measurement

PROMETHEUS_URL_ENV = "MODELOPS_PROMETHEUS_URL"
QUERY_TIMEOUT = 10.0
"""Seconds for one query, connecting included: a hung Prometheus is an Error, not a stuck reconcile."""

_default_url: str | None = None


def set_default_prometheus_url(url: str | None) -> None:
    """The operator's ``--prometheus-url`` (``modelops run`` sets it at start)."""
    global _default_url
    _default_url = url or None


def default_prometheus_url() -> str | None:
    """Where analysis asks when a ModelDeployment sets no ``spec.prometheus.address``:
    ``--prometheus-url``, else env ``MODELOPS_PROMETHEUS_URL``, else None."""
    return _default_url or os.environ.get(PROMETHEUS_URL_ENV) or None


@dataclass(frozen=True)
class AnalysisTarget:
    """Whose canary is measured, and where its metrics are.

    ``namespace`` and ``deployment`` select the model servers' series (the scrape target's
    ``namespace`` label, the ``deployment`` label ``modelops serve --deployment`` exports).
    The versions fill ``{{version}}`` in promql queries and nothing else: tracks are told apart
    by the servers' own ``track`` label.
    """

    namespace: str
    deployment: str
    stable_version: str | None
    canary_version: str
    prometheus_url: str


class MeasurementError(Exception):
    """Why a measurement could not be taken; becomes an Error result."""


async def measure(
    metric: AnalysisMetric, target: AnalysisTarget, now: datetime, *, session: aiohttp.ClientSession | None = None
) -> MetricResult:
    """One measurement of ``metric`` on the canary at ``now``, recorded in
    ``modelops_analysis_measurement``. Never raises for Prometheus trouble: that is an Error result."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    try:
        if session is None:
            async with aiohttp.ClientSession() as own:
                result = await _measure(metric, target, now, Prometheus(own, target.prometheus_url, now))
        else:
            result = await _measure(metric, target, now, Prometheus(session, target.prometheus_url, now))
    except MeasurementError as exc:
        result = MetricResult(name=metric.name, phase="Error", message=f"{metric.name}: {exc}", time=now)
    record_analysis_measurement(target.namespace, target.deployment, metric.name, "canary", result.value)
    if result.stable_value is not None:
        record_analysis_measurement(target.namespace, target.deployment, metric.name, "stable", result.stable_value)
    return result


async def _measure(metric: AnalysisMetric, target: AnalysisTarget, now: datetime, prom: Prometheus) -> MetricResult:
    try:
        window = q.prom_duration(metric.interval)
    except ValueError as exc:
        raise MeasurementError(f"interval: {exc}") from None
    ns, dep = target.namespace, target.deployment
    requests_query = q.requests_query(ns, dep, window)
    answer = await prom.query(requests_query)
    if not answer:
        raise MeasurementError(
            f"no series for {q.REQUESTS}{q.selector(ns, dep)} in Prometheus at {prom.url}: "
            "are the model servers scraped, with the namespace label and `modelops serve --deployment`?"
        )
    tracks = q.request_counts(answer)
    canary = tracks.get("canary", q.TrackRequests())
    stable = tracks.get("stable")
    stable_n = stable.total if stable is not None else None

    if metric.kind == "errorRate":
        stable_rate = stable.error_rate if stable is not None else None
        return evaluate(metric, canary.error_rate, stable_rate, canary.total, now, stable_samples=stable_n)

    if metric.kind == "predictionShift":  # its minimum counts predictions, from the histograms
        return await _prediction_shift(metric, target, now, prom, window)

    if canary.total < metric.min_samples:  # too little traffic: Inconclusive without asking more
        return evaluate(metric, None, None, canary.total, now, stable_samples=stable_n)

    if metric.kind == "latencyP99":
        p99 = q.per_track(await prom.query(q.latency_query(ns, dep, window)))
        return evaluate(metric, p99.get("canary"), p99.get("stable"), canary.total, now, stable_samples=stable_n)

    assert metric.query is not None  # the model requires it for kind promql
    try:
        promql = q.render_promql(
            metric.query,
            namespace=ns,
            deployment=dep,
            track="canary",
            version=target.canary_version,
            interval=metric.interval,
        )
    except ValueError as exc:
        raise MeasurementError(f"query: {exc}") from None
    samples = await prom.query(promql)
    if not samples:
        raise MeasurementError(f"query returned no data from Prometheus at {prom.url}: {promql}")
    if len(samples) > 1:
        raise MeasurementError(
            f"query returned {len(samples)} series from Prometheus at {prom.url}; aggregate it to one value: {promql}"
        )
    return evaluate(metric, samples[0][1], None, canary.total, now)


async def _prediction_shift(
    metric: AnalysisMetric, target: AnalysisTarget, now: datetime, prom: Prometheus, window: str
) -> MetricResult:
    """PSI of the canary's prediction histogram against the stable's, per output; the largest counts."""
    query = q.prediction_query(target.namespace, target.deployment, window, metric.output)
    outputs = q.histograms(await prom.query(query))
    if not outputs:
        what = f"output {metric.output!r}" if metric.output else "any numeric output"
        raise MeasurementError(f"no prediction histogram for {what} in Prometheus at {prom.url}: {query}")
    worst: tuple[float, str, float, float] | None = None  # (psi, output, canary n, stable n)
    most: tuple[float, float, float] = (0.0, 0.0, 0.0)  # the best-observed output: (min n, canary n, stable n)
    for output, tracks in sorted(outputs.items()):
        canary, stable = tracks.get("canary", []), tracks.get("stable", [])
        n_canary, n_stable = q.histogram_count(canary), q.histogram_count(stable)
        if min(n_canary, n_stable) < metric.min_samples or not canary or not stable:
            most = max(most, (min(n_canary, n_stable), n_canary, n_stable))
            continue
        try:
            psi = psi_from_buckets(stable, canary)
        except ValueError as exc:
            raise MeasurementError(f"output {output!r}: {exc}") from None
        if worst is None or psi > worst[0]:
            worst = (psi, output, n_canary, n_stable)
    if worst is None:  # no output with enough predictions on both tracks
        return evaluate(metric, None, None, most[1], now, stable_samples=most[2])
    psi, output, n_canary, n_stable = worst
    return evaluate(metric, psi, None, n_canary, now, stable_samples=n_stable, detail=f"PSI vs stable, output {output}")


class Prometheus:
    """Instant queries against one Prometheus, evaluated at one time."""

    def __init__(self, session: aiohttp.ClientSession, url: str, at: datetime) -> None:
        self.session = session
        self.url = url
        self.at = at

    async def query(self, promql: str) -> list[q.Sample]:
        if not self.url.startswith(("http://", "https://")):
            raise MeasurementError(
                f"no usable Prometheus address ({self.url!r}): set spec.prometheus.address or the operator's --prometheus-url"
            )
        endpoint = self.url.rstrip("/") + "/api/v1/query"
        params = {"query": promql, "time": f"{self.at.timestamp():.3f}"}
        try:
            async with self.session.get(
                endpoint, params=params, timeout=aiohttp.ClientTimeout(total=QUERY_TIMEOUT)
            ) as resp:
                text = await resp.text()
                status = resp.status
        except TimeoutError:
            raise MeasurementError(f"Prometheus at {self.url} did not answer within {fmt(QUERY_TIMEOUT)}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise MeasurementError(f"Prometheus at {self.url} is unreachable: {exc or type(exc).__name__}") from None
        return _parse(self.url, status, text, promql)


def _parse(url: str, status: int, text: str, promql: str) -> list[q.Sample]:
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise MeasurementError(f"Prometheus at {url} answered HTTP {status} without a JSON body: {text[:200]!r}")
    if body.get("status") != "success":
        kind = body.get("errorType", f"HTTP {status}")
        raise MeasurementError(f"Prometheus at {url}: {kind}: {body.get('error', text[:200])} (query: {promql})")
    data = body.get("data") or {}
    result_type, result = data.get("resultType"), data.get("result") or []
    try:
        if result_type == "scalar":
            return [({}, float(result[1]))]
        if result_type == "vector":
            return [(dict(r.get("metric", {})), float(r["value"][1])) for r in result]
    except (TypeError, KeyError, IndexError, ValueError) as exc:
        raise MeasurementError(f"Prometheus at {url}: malformed answer ({exc}) to {promql}") from None
    raise MeasurementError(f"Prometheus at {url}: the query gives a {result_type}, not one value: {promql}")
