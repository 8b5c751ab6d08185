"""PromQL for the canary checks, and the reading of its answers. Pure: no HTTP here.

The built-in checks read the model server's own metrics (modelops.server.metrics), selected by
``namespace`` (the scrape target's label) and ``deployment`` (a constant label ``modelops serve
--deployment`` exports), and split by the server's own ``track`` label:

- requests: ``sum by (track, code) (increase(modelops_inference_requests_total{...}[w]))``:
  traffic per track (the minimum-sample check) and the error rate: the share of non-2xx answers
  (4xx included: a canary that rejects requests the stable accepts is broken for its callers).
- latencyP99: ``histogram_quantile(0.99, sum by (track, le) (rate(..._bucket{...}[w])))``.
- predictionShift: ``sum by (track, output, le) (increase(modelops_prediction_value_bucket{...}[w]))``,
  the two tracks' prediction histograms over the window, compared by PSI.

``w`` is the metric's ``interval``, so every measurement looks at the traffic since the last one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from modelops.drift.durations import parse_duration

REQUESTS = "modelops_inference_requests_total"
LATENCY_BUCKETS = "modelops_inference_request_duration_seconds_bucket"
PREDICTION_BUCKETS = "modelops_prediction_value_bucket"
TRACKS = ("stable", "canary")
PLACEHOLDERS = ("namespace", "deployment", "track", "version", "interval")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

Labels = Mapping[str, str]
Sample = tuple[Labels, float]
"""One element of an instant vector: its labels and value."""


# --------------------------------------------------------------------------------------------
# Rendering


def escape_label_value(value: str) -> str:
    """The body of a double-quoted PromQL string: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prom_duration(interval: str | timedelta) -> str:
    """A Prometheus range duration: whole seconds as ``30s``, else milliseconds (``1500ms``).

    Prometheus 2.x accepts integer units only, so the CRD's ``1.5s`` cannot pass through as is.
    """
    delta = parse_duration(interval) if isinstance(interval, str) else interval
    ms = round(delta.total_seconds() * 1000)
    if ms < 1:
        raise ValueError(f"interval {interval!r} is shorter than a millisecond")
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def selector(namespace: str, deployment: str, **equal: str) -> str:
    """``{namespace="ns",deployment="d",track=~"stable|canary",...}``: both tracks of one deployment."""
    labels = {"namespace": namespace, "deployment": deployment, **equal}
    parts = [f'{label}="{escape_label_value(value)}"' for label, value in labels.items()]
    parts.insert(2, 'track=~"stable|canary"')
    return "{" + ",".join(parts) + "}"


def requests_query(namespace: str, deployment: str, window: str) -> str:
    """Answered requests per track and status code over the window."""
    return f"sum by (track, code) (increase({REQUESTS}{selector(namespace, deployment)}[{window}]))"


def latency_query(namespace: str, deployment: str, window: str, quantile: float = 0.99) -> str:
    """The latency quantile per track over the window, from the servers' histograms."""
    sel = selector(namespace, deployment)
    return f"histogram_quantile({quantile:g}, sum by (track, le) (rate({LATENCY_BUCKETS}{sel}[{window}])))"


def prediction_query(namespace: str, deployment: str, window: str, output: str | None = None) -> str:
    """Each track's prediction histogram (cumulative ``le`` buckets) per output over the window."""
    sel = selector(namespace, deployment, **({"output": output} if output is not None else {}))
    return f"sum by (track, output, le) (increase({PREDICTION_BUCKETS}{sel}[{window}]))"


def render_promql(template: str, *, namespace: str, deployment: str, track: str, version: str, interval: str) -> str:
    """Fill ``{{namespace}}``, ``{{deployment}}``, ``{{track}}``, ``{{version}}``, ``{{interval}}``.

    Label values are escaped for a double-quoted PromQL string (write ``"{{namespace}}"`` in
    the query); ``{{interval}}`` becomes a Prometheus duration for range selectors
    (``rate(x[{{interval}}])``). An unknown placeholder is an error naming it, not a silent
    literal that matches nothing.
    """
    values = {
        "namespace": escape_label_value(namespace),
        "deployment": escape_label_value(deployment),
        "track": escape_label_value(track),
        "version": escape_label_value(version),
        "interval": prom_duration(interval),
    }
    unknown = sorted({m.group(1) for m in _PLACEHOLDER.finditer(template)} - set(values))
    if unknown:
        known = ", ".join("{{" + p + "}}" for p in PLACEHOLDERS)
        raise ValueError(f"unknown placeholder {{{{{unknown[0]}}}}} in the query; known: {known}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


# --------------------------------------------------------------------------------------------
# Reading the answers


@dataclass(frozen=True)
class TrackRequests:
    """One track's answered requests in the window, and how many were not 2xx."""

    total: float = 0.0
    errors: float = 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.total if self.total > 0 else math.nan


def request_counts(samples: Iterable[Sample]) -> dict[str, TrackRequests]:
    """The answer of :func:`requests_query` per track; tracks without series are absent."""
    totals: dict[str, list[float]] = {}
    for labels, value in samples:
        track = labels.get("track", "")
        if math.isnan(value):
            continue
        acc = totals.setdefault(track, [0.0, 0.0])
        acc[0] += value
        if not labels.get("code", "").startswith("2"):
            acc[1] += value
    return {track: TrackRequests(total, errors) for track, (total, errors) in totals.items()}


def per_track(samples: Iterable[Sample]) -> dict[str, float]:
    """A ``by (track)`` answer as a dict (latency quantiles)."""
    return {labels.get("track", ""): value for labels, value in samples}


def histograms(samples: Iterable[Sample]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """The answer of :func:`prediction_query` as ``{output: {track: [(le, cumulative count)]}}``."""
    out: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for labels, value in samples:
        try:
            le = float(labels["le"])  # "+Inf" parses as inf
        except (KeyError, ValueError):
            continue
        out.setdefault(labels.get("output", ""), {}).setdefault(labels.get("track", ""), []).append((le, value))
    for tracks in out.values():
        for buckets in tracks.values():
            buckets.sort()
    return out


def histogram_count(buckets: Sequence[tuple[float, float]]) -> float:
    """Observations in a cumulative histogram: its ``+Inf`` bucket (0 without one)."""
    return next((count for le, count in buckets if le == math.inf), 0.0)
