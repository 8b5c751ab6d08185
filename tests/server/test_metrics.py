"""The metrics the canary analysis reads: exact names, labels, and counts that match the traffic."""

from __future__ import annotations

import multiprocessing
from typing import Any

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from modelops.server.frameworks import Model
from modelops.server.metrics import Layout, RequestMetrics, Slots, make_registry, render

from .conftest import ServeFactory

LABELS = {"model": "lr", "version": "2", "track": "canary"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def key(name: str, **extra: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted({**LABELS, **extra}.items()))


async def test_metrics_count_the_traffic(serve_app: ServeFactory, lr_model: Model) -> None:
    server = await serve_app(lr_model, name="lr", version="2", track="canary")
    x = np.random.default_rng(0).normal(size=(8, 20))
    for batch in (1, 3, 8):
        body = {"inputs": [{"name": "x", "shape": [batch, 20], "datatype": "FP64", "data": x[:batch].ravel().tolist()}]}
        assert (await server.post("/v2/models/lr/infer", body))[0] == 200
    body = {"inputs": [{"name": "x", "shape": [2, 20], "datatype": "FP64", "data": x[:2].ravel().tolist()}]}
    body["outputs"] = [{"name": "predict_proba"}]
    assert (await server.post("/v2/models/lr/infer", body))[0] == 200
    assert (await server.post("/v2/models/lr/infer", data=b"nope"))[0] == 400
    assert (await server.post("/v2/models/other/infer", body))[0] == 404

    status, text = await server.get("/metrics")
    assert status == 200
    got = samples(text)
    assert got[key("modelops_inference_requests_total", code="200")] == 4
    assert got[key("modelops_inference_requests_total", code="400")] == 1
    assert got[key("modelops_inference_requests_total", code="404")] == 1
    assert got[key("modelops_inference_requests_total", code="500")] == 0
    assert got[key("modelops_inference_request_duration_seconds_count")] == 6
    assert got[key("modelops_inference_request_duration_seconds_bucket", le="+Inf")] == 6
    assert 0 < got[key("modelops_inference_request_duration_seconds_sum")] < 6
    assert got[key("modelops_inference_requests_in_flight")] == 0
    assert got[key("modelops_inference_batch_size_count")] == 4
    assert got[key("modelops_inference_batch_size_sum")] == 1 + 3 + 8 + 2
    assert got[key("modelops_inference_batch_size_bucket", le="1.0")] == 1
    assert got[key("modelops_inference_batch_size_bucket", le="4.0")] == 3
    # predict: 12 labels in {0, 1}; predict_proba: 2 rows x 2 classes.
    labels = lr_model.predict({"x": x}, ["predict"], None)["predict"]
    predicted = np.concatenate([labels[:1], labels[:3], labels[:8]])
    assert got[key("modelops_prediction_value_count", output="predict")] == 12
    assert got[key("modelops_prediction_value_sum", output="predict")] == predicted.sum()
    assert got[key("modelops_prediction_value_bucket", output="predict", le="0.0")] == (predicted == 0).sum()
    assert got[key("modelops_prediction_value_count", output="predict_proba")] == 4
    assert got[key("modelops_prediction_value_sum", output="predict_proba")] == 2.0
    assert key("modelops_prediction_value_count", output="decision_function") in got


def test_histogram_buckets_are_cumulative_and_inclusive() -> None:
    slots = Slots.local(Layout(prediction_buckets=(0.0, 0.5, 1.0)))
    rec = RequestMetrics(slots, 0)
    rec.predictions(0, np.array([0.5]))  # exactly on a bound: counted in le="0.5"
    rec.predictions(0, np.array([-1.0, 0.25, 0.75, 2.0, np.nan]))  # NaN skipped
    rec.predictions(1, np.array(["a"], dtype=object))  # non-numeric outputs are not observed
    got = samples(render(make_registry(slots, LABELS, lambda: ["p", "s"])).decode())
    buckets = [got[key("modelops_prediction_value_bucket", output="p", le=le)] for le in ("0.0", "0.5", "1.0", "+Inf")]
    assert buckets == [1, 3, 4, 5]
    assert got[key("modelops_prediction_value_count", output="s")] == 0


def _worker(shared: Any, index: int, n: int) -> None:
    slots = Slots(memoryview(shared), 2, Layout())
    rec = RequestMetrics(slots, index)
    for _ in range(n):
        rec.started()
        rec.finished(200, 0.001)


def test_workers_share_one_view() -> None:
    """Each worker process writes its own region; any of them renders the sum."""
    ctx = multiprocessing.get_context("spawn")
    layout = Layout()
    shared = ctx.RawArray("d", Slots.nbytes(2, layout) // 8)
    procs = [ctx.Process(target=_worker, args=(shared, k, 100 * (k + 1))) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    slots = Slots(memoryview(shared), 2, layout)
    got = samples(render(make_registry(slots, LABELS, list)).decode())
    assert got[key("modelops_inference_requests_total", code="200")] == 300
    assert got[key("modelops_inference_requests_in_flight")] == 0
    assert not slots.all_loaded()
    slots.set_loaded(0)
    slots.set_loaded(1)
    assert slots.all_loaded()
    assert not slots.draining
