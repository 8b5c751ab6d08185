"""The model server's Prometheus metrics: lock-free slots on the hot path, prometheus-client to expose.

Every series this server can emit is known up front (one model, fixed status codes, at most
``MAX_OUTPUTS`` outputs), so each gets a fixed float slot in a flat buffer. A request adds to a
handful of slots (no locks: a worker is one event loop, and each process writes only its own
region). With ``--workers N`` the buffer is shared memory, so whichever worker answers
``/metrics`` sums every worker's region: Prometheus sees one consistent server however the
kernel spread the connections.

Names (stable: the canary analysis queries them):

- ``modelops_inference_requests_total{model,version,track,code}`` counter
- ``modelops_inference_request_duration_seconds{model,version,track}`` histogram
- ``modelops_inference_requests_in_flight{model,version,track}`` gauge
- ``modelops_inference_batch_size{model,version,track}`` histogram
- ``modelops_prediction_value{model,version,track,output}`` histogram
- ``modelops_prediction_log_rows_total{model,version,track,result}`` counter (written/dropped)
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

CODES: tuple[int, ...] = (200, 400, 404, 413, 500, 503)
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# Probabilities and 0/1 labels get 0.05 resolution; larger values land in the wide tail. No
# negative bounds by default: with them the exposition must omit _sum and _count (a sum that can
# fall is no counter), so regressions with negative outputs should pass --prediction-buckets.
PREDICTION_BUCKETS: tuple[float, ...] = (
    *(round(0.05 * i, 2) for i in range(21)),
    2.0, 5.0, 10.0, 100.0, 1000.0,
)  # fmt: skip
MAX_OUTPUTS = 16
LOG_RESULTS = ("written", "dropped")


@dataclass(frozen=True)
class Layout:
    """Where each series lives in one worker's region of the slot buffer."""

    latency_buckets: tuple[float, ...] = LATENCY_BUCKETS
    batch_buckets: tuple[float, ...] = BATCH_BUCKETS
    prediction_buckets: tuple[float, ...] = PREDICTION_BUCKETS

    @property
    def codes_at(self) -> int:
        return 0

    @property
    def in_flight_at(self) -> int:
        return len(CODES)

    @property
    def log_at(self) -> int:
        return self.in_flight_at + 1

    @property
    def latency_at(self) -> int:
        return self.log_at + len(LOG_RESULTS)

    @property
    def batch_at(self) -> int:
        return self.latency_at + len(self.latency_buckets) + 3

    @property
    def prediction_at(self) -> int:
        return self.batch_at + len(self.batch_buckets) + 3

    @property
    def prediction_stride(self) -> int:
        # buckets + the +Inf bucket, then sum and count
        return len(self.prediction_buckets) + 3

    @property
    def size(self) -> int:
        return self.prediction_at + MAX_OUTPUTS * self.prediction_stride


class Slots:
    """The float buffer: a header of process flags, then one metrics region per worker.

    Header: slot 0 is "draining" (set by whoever received SIGTERM), slots 1..N "worker k loaded".
    """

    def __init__(self, buffer: memoryview[Any], workers: int, layout: Layout) -> None:
        self.values: memoryview[float] = buffer.cast("B").cast("d")
        self.workers = workers
        self.layout = layout
        self.header = workers + 1

    @staticmethod
    def nbytes(workers: int, layout: Layout) -> int:
        return 8 * (workers + 1 + workers * layout.size)

    @classmethod
    def local(cls, layout: Layout | None = None) -> Slots:
        """A single-process buffer."""
        layout = layout or Layout()
        return cls(memoryview(bytearray(cls.nbytes(1, layout))), 1, layout)

    def region(self, worker: int) -> memoryview[float]:
        start = self.header + worker * self.layout.size
        return self.values[start : start + self.layout.size]

    @property
    def draining(self) -> bool:
        return self.values[0] != 0.0

    def set_draining(self) -> None:
        self.values[0] = 1.0

    def set_loaded(self, worker: int, loaded: bool = True) -> None:
        self.values[1 + worker] = 1.0 if loaded else 0.0

    def all_loaded(self) -> bool:
        return all(self.values[1 + k] != 0.0 for k in range(self.workers))

    def totals(self) -> list[float]:
        """Every worker's region summed: what /metrics reports."""
        size = self.layout.size
        total = np.zeros(size)
        for k in range(self.workers):
            total += np.frombuffer(self.region(k).cast("B"), dtype=np.float64, count=size)
        return [float(x) for x in total]


class RequestMetrics:
    """The hot-path recorder for one worker: plain float additions into its own region."""

    __slots__ = ("_bounds", "_code_slot", "_layout", "_other", "_pred_bounds", "_r", "outputs")

    def __init__(self, slots: Slots, worker: int) -> None:
        self._r = slots.region(worker)
        self._layout = slots.layout
        self._code_slot = {code: i for i, code in enumerate(CODES)}
        self._other = self._code_slot[500]
        self._bounds = slots.layout.latency_buckets
        self._pred_bounds = np.asarray(slots.layout.prediction_buckets)
        self.outputs: dict[str, int] = {}  # output name -> its prediction histogram

    def started(self) -> None:
        self._r[self._layout.in_flight_at] += 1.0

    def finished(
        self, code: int, seconds: float, batch: int = 0, result: dict[str, np.ndarray[Any, Any]] | None = None
    ) -> None:
        """One answered request: status, latency, and for a prediction its batch size and values."""
        r = self._r
        layout = self._layout
        r[layout.in_flight_at] -= 1.0
        r[self._code_slot.get(code, self._other)] += 1.0  # codes outside CODES count as 500
        base = layout.latency_at
        n = len(self._bounds)
        r[base + bisect_left(self._bounds, seconds)] += 1.0
        r[base + n + 1] += seconds
        r[base + n + 2] += 1.0
        if result is not None:
            self.batch(batch)
            outputs = self.outputs
            for name, values in result.items():
                index = outputs.get(name)
                if index is not None:
                    self.predictions(index, values)

    def batch(self, size: int) -> None:
        layout = self._layout
        base = layout.batch_at
        n = len(layout.batch_buckets)
        self._r[base + bisect_left(layout.batch_buckets, size)] += 1.0
        self._r[base + n + 1] += size
        self._r[base + n + 2] += 1.0

    def predictions(self, index: int, values: np.ndarray[Any, Any]) -> None:
        """Observe every element of output number ``index`` (numeric outputs only; NaN skipped)."""
        if index >= MAX_OUTPUTS or values.dtype.kind not in "biuf":
            return
        layout = self._layout
        base = layout.prediction_at + index * layout.prediction_stride
        n = len(layout.prediction_buckets)
        r = self._r
        if values.size == 1:
            v = float(values.item(0))
            if v != v:
                return
            r[base + bisect_left(layout.prediction_buckets, v)] += 1.0
            r[base + n + 1] += v
            r[base + n + 2] += 1.0
            return
        flat = values.ravel().astype(np.float64, copy=False)
        flat = flat[~np.isnan(flat)]
        if not flat.size:
            return
        counts = np.bincount(np.searchsorted(self._pred_bounds, flat, side="left"), minlength=n + 1)
        for i in np.flatnonzero(counts).tolist():
            r[base + i] += float(counts[i])
        r[base + n + 1] += float(flat.sum())
        r[base + n + 2] += float(flat.size)

    def log_rows(self, written: int = 0, dropped: int = 0) -> None:
        self._r[self._layout.log_at] += written
        self._r[self._layout.log_at + 1] += dropped


class SlotsCollector(Collector):
    """Turns the summed slots into metric families; output names come from the loaded model."""

    def __init__(self, slots: Slots, labels: dict[str, str], outputs: Callable[[], Sequence[str]]) -> None:
        self._slots = slots
        self._labels = labels
        self._outputs = outputs

    def _histogram(
        self, family: HistogramMetricFamily, values: list[float], base: int, bounds: Sequence[float], extra: list[str]
    ) -> None:
        n = len(bounds)
        cumulative = 0.0
        buckets: list[tuple[str, float]] = []
        for i, bound in enumerate(bounds):
            cumulative += values[base + i]
            buckets.append((_le(bound), cumulative))
        cumulative += values[base + n]
        buckets.append(("+Inf", cumulative))
        family.add_metric([*self._labels.values(), *extra], buckets, values[base + n + 1])

    def collect(self) -> Iterator[Metric]:
        values = self._slots.totals()
        layout = self._slots.layout
        base_labels = list(self._labels)
        label_values = list(self._labels.values())
        requests = CounterMetricFamily(
            "modelops_inference_requests",
            "Inference requests answered, by HTTP status code.",
            labels=[*base_labels, "code"],
        )
        for i, code in enumerate(CODES):
            requests.add_metric([*label_values, str(code)], values[layout.codes_at + i])
        yield requests
        latency = HistogramMetricFamily(
            "modelops_inference_request_duration_seconds",
            "Time from receiving an inference request to its response, in seconds.",
            labels=base_labels,
        )
        self._histogram(latency, values, layout.latency_at, layout.latency_buckets, [])
        yield latency
        in_flight = GaugeMetricFamily(
            "modelops_inference_requests_in_flight", "Inference requests being processed.", labels=base_labels
        )
        in_flight.add_metric(label_values, values[layout.in_flight_at])
        yield in_flight
        batch = HistogramMetricFamily(
            "modelops_inference_batch_size",
            "Rows per inference request (the first dimension of the first input).",
            labels=base_labels,
        )
        self._histogram(batch, values, layout.batch_at, layout.batch_buckets, [])
        yield batch
        predictions = HistogramMetricFamily(
            "modelops_prediction_value",
            "Values of each numeric output tensor element, per output; the canary's prediction-shift check reads it.",
            labels=[*base_labels, "output"],
        )
        for index, name in enumerate(list(self._outputs())[:MAX_OUTPUTS]):
            base = layout.prediction_at + index * layout.prediction_stride
            self._histogram(predictions, values, base, layout.prediction_buckets, [name])
        yield predictions
        rows = CounterMetricFamily(
            "modelops_prediction_log_rows",
            "Sampled prediction-log rows written to storage, or dropped because the buffer was full.",
            labels=[*base_labels, "result"],
        )
        for i, result in enumerate(LOG_RESULTS):
            rows.add_metric([*label_values, result], values[layout.log_at + i])
        yield rows


def _le(bound: float) -> str:
    return repr(float(bound))


def make_registry(slots: Slots, labels: dict[str, str], outputs: Callable[[], Sequence[str]]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SlotsCollector(slots, labels, outputs))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition format, version 0.0.4."""
    return generate_latest(registry)
