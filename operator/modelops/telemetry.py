"""The operator's own Prometheus metrics (the model server has its own, in modelops.server)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILE_TOTAL = Counter(
    "modelops_reconcile_total",
    "Reconciliations by kind and result (success, retry, invalid, error).",
    ["kind", "result"],
    registry=REGISTRY,
)
RECONCILE_DURATION = Histogram(
    "modelops_reconcile_duration_seconds",
    "Time spent in one reconciliation, by kind and result.",
    ["kind", "result"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
MODEL_VERSION_INFO = Gauge(
    "modelops_model_version_info",
    "One series per ModelVersion with its effective stage and phase; value is always 1.",
    ["namespace", "name", "model", "version", "stage", "phase"],
    registry=REGISTRY,
)

_info_labels: dict[tuple[str, str], tuple[str, ...]] = {}


class ReconcileOutcome:
    """Set ``result`` inside the block; exceptions count as ``error`` unless already set."""

    def __init__(self) -> None:
        self.result = "success"


@contextmanager
def observe_reconcile(kind: str) -> Iterator[ReconcileOutcome]:
    outcome = ReconcileOutcome()
    start = time.perf_counter()
    try:
        yield outcome
    except BaseException:
        if outcome.result == "success":
            outcome.result = "error"
        raise
    finally:
        RECONCILE_TOTAL.labels(kind, outcome.result).inc()
        RECONCILE_DURATION.labels(kind, outcome.result).observe(time.perf_counter() - start)


def set_model_version_info(namespace: str, name: str, model: str, version: str, stage: str, phase: str) -> None:
    """Replace the series of one ModelVersion, so a stage change leaves no stale series behind."""
    labels = (namespace, name, model, version, stage, phase)
    old = _info_labels.get((namespace, name))
    if old is not None and old != labels:
        MODEL_VERSION_INFO.remove(*old)
    MODEL_VERSION_INFO.labels(*labels).set(1)
    _info_labels[(namespace, name)] = labels


def forget_model_version(namespace: str, name: str) -> None:
    old = _info_labels.pop((namespace, name), None)
    if old is not None:
        MODEL_VERSION_INFO.remove(*old)
