"""The performance check: the join of delayed labels to the prediction log, the verdict, and a
reason for every piece of data it cannot judge."""

from __future__ import annotations

import itertools
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import settings as settings_h
from hypothesis import strategies as hst
from sklearn import metrics as skm

from modelops.api.performance import PerformanceSettings
from modelops.drift import labels_join as lj
from modelops.drift.errors import DriftDataError
from modelops.drift.labels_join import join_labels
from modelops.drift.performance import check_performance, check_window, evaluate_performance
from modelops.drift.performance_io import LabelData, PredictionData, read_predictions

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


def us(when: datetime) -> int:
    return round(when.timestamp() * 1e6)


def preds(
    keys: list[Any], predict: list[Any], proba: list[float] | None = None, times: list[datetime] | None = None
) -> PredictionData:
    outputs: dict[str, Any] = {"predict": pa.chunked_array([pa.array(predict)])}
    if proba is not None:
        outputs["predict_proba_1"] = pa.chunked_array([pa.array(proba, pa.float64())])
        outputs["predict_proba_0"] = pa.chunked_array([pa.array([1 - p for p in proba], pa.float64())])
    time_us = None if times is None else np.array([us(t) for t in times], dtype=np.int64)
    return PredictionData(keys=pa.chunked_array([pa.array(keys)]), time_us=time_us, outputs=outputs, rows=len(keys))


def labels(ids: list[Any], values: list[Any], times: list[datetime] | None = None) -> LabelData:
    time_us = None if times is None else np.array([us(t) for t in times], dtype=np.int64)
    return LabelData(ids=pa.chunked_array([pa.array(ids)]), labels=pa.chunked_array([pa.array(values)]),
                     time_us=time_us, rows=len(ids), source="labels")  # fmt: skip


def settings(**extra: Any) -> PerformanceSettings:
    doc: dict[str, Any] = {"labels": {"uri": "unused"}, "task": "binary", "minLabels": 1, "minCoverage": 0.01}
    doc.update(extra)
    return PerformanceSettings.model_validate(doc)


def metric(result: Any, name: str) -> Any:
    return next(m for m in result.metrics if m.name == name)


# --------------------------------------------------------------------------------------------
# The join


def test_join_pairs_each_prediction_with_its_label_and_counts_the_rest():
    joined = join_labels(
        pa.array(["a", "b", "c", "d", "d", None]),
        pa.array(["c", "a", "x", "a", None]),
        label_value=np.array([1.0, 0.0, 1.0, 1.0, 0.0]),
    )
    # a: two labels, the last row wins; b: none; d: ambiguous (two predictions); x: no prediction.
    assert joined.label_row.tolist() == [3, -1, 0, -1, -1, -1]
    assert joined.key_status.tolist() == [0, 0, 0, 2, 2, 1]
    assert (joined.missing_keys, joined.duplicate_prediction_rows) == (1, 2)
    assert (joined.duplicate_label_ids, joined.superseded_labels, joined.conflicting_label_ids) == (1, 1, 1)
    assert (joined.labels_without_predictions, joined.missing_label_ids) == (1, 1)


def test_the_latest_label_wins_and_future_labels_are_ignored():
    t = np.array([us(NOW - 3 * H), us(NOW - 5 * H), us(NOW + H)], dtype=np.int64)
    joined = join_labels(
        pa.array(["a"]),
        pa.array(["a", "a", "a"]),
        label_time=t,
        label_value=np.array([1.0, 0.0, 0.0]),
        label_known=t <= us(NOW),
    )
    assert joined.label_row.tolist() == [0]  # row 0 is later than row 1; row 2 is not known yet
    assert (joined.future_labels, joined.duplicate_label_ids, joined.conflicting_label_ids) == (1, 1, 1)


def test_integer_and_text_ids_match():
    joined = join_labels(pa.array(["7", "8", "9"]), pa.array([9.0, 7.0, 12.5]))
    assert joined.label_row.tolist() == [1, -1, 0]
    assert joined.labels_without_predictions == 1


def test_join_matches_a_dictionary_join_on_random_data():
    rng = np.random.default_rng(2)
    keys = [f"k{i}" for i in rng.integers(0, 400, 300)]
    ids = [f"k{i}" for i in rng.integers(0, 400, 350)]
    joined = join_labels(pa.array(keys), pa.array(ids))
    pred_count = {k: keys.count(k) for k in set(keys)}
    last = {k: i for i, k in enumerate(ids)}
    expected = [last.get(k, -1) if pred_count[k] == 1 else -1 for k in keys]
    assert joined.label_row.tolist() == expected
    assert joined.labels_without_predictions == len(set(ids) - set(keys))


def same_partition(codes: np.ndarray, keys: list[Any]) -> bool:
    """Equal codes exactly for equal keys; -1 exactly for missing keys."""
    first: dict[Any, int] = {}
    for code, key in zip(codes.tolist(), keys, strict=True):
        if (key is None) != (code == -1):
            return False
        if key is not None and first.setdefault(key, code) != code:
            return False
    return len(set(first.values())) == len(first)


@settings_h(max_examples=60, deadline=None)
@given(
    pool=hst.lists(hst.text(min_size=0, max_size=70), min_size=1, max_size=30, unique=True),
    picks=hst.lists(hst.integers(0, 40), min_size=1, max_size=80),
    split=hst.integers(0, 80),
    hasher=hst.sampled_from(["real", "constant", "by-length"]),
    block=hst.sampled_from([1, 2, 7, 1 << 18]),
    workers=hst.sampled_from([1, 2, 3]),
    chunk=hst.integers(1, 30),
)
def test_key_encoding_is_exact_for_any_keys_even_when_hashes_collide(pool, picks, split, hasher, block, workers, chunk):
    """Short keys take the numpy path (words + hash + sort, verified byte for byte, in threads
    over runs of rows that cut Arrow chunks anywhere), keys over 64 bytes Arrow's hash table; a
    degenerate hash makes every key collide and must change nothing."""
    keys = [pool[i] if i < len(pool) else None for i in picks]
    pred, lab = keys[: split % (len(keys) + 1)], keys[split % (len(keys) + 1) :]
    hashers = {
        "real": lj._hash,
        "constant": lambda w, n: np.zeros(n.size, dtype=np.uint64),
        "by-length": lambda w, n: (n % 3).astype(np.uint64),
    }
    chunked = pa.chunked_array(
        [pa.array(lab[i : i + chunk], pa.string()) for i in range(0, len(lab), chunk)], type=pa.string()
    )
    pc, lc, size = lj.encode_keys(
        pa.array(pred, pa.string()), chunked, hasher=hashers[hasher], verify_block=block, workers=workers
    )
    codes = np.concatenate([pc, lc])
    assert same_partition(codes, keys)
    assert size == len({k for k in keys if k is not None})


def test_uniform_length_keys_and_sliced_arrays():
    """Every key the same length (the strided path), arrays that are slices of larger buffers."""
    ids = [f"{i:036x}" for i in range(200)]
    pred = pa.array(ids).slice(50, 100)  # ids 50..149
    lab = pa.array(list(reversed(ids))).slice(20, 120)  # ids 179..60
    pc, lc, _ = lj.encode_keys(pred, lab)
    assert same_partition(np.concatenate([pc, lc]), ids[50:150] + list(reversed(ids))[20:140])


def test_many_keys_cross_every_block_and_thread_boundary():
    """70K keys of mixed lengths in uneven chunks: written and hashed in blocks of 32K rows, in
    two threads, verified in blocks; every id keeps its own code on both sides."""
    rng = np.random.default_rng(7)
    ids = [f"{i:x}" * (1 + i % 4) for i in range(40_000)]  # 1 to 20 characters
    pred = [ids[i] for i in rng.permutation(40_000)[:35_000]]
    lab = [ids[i] for i in rng.integers(0, 40_000, 35_000)]
    cuts = [0, 1, 9_999, 20_000, 35_000]
    chunked = pa.chunked_array([pa.array(lab[a:b]) for a, b in itertools.pairwise(cuts)])
    pc, lc, size = lj.encode_keys(pa.array(pred), chunked, workers=2, verify_block=5_000)
    assert same_partition(np.concatenate([pc, lc]), pred + lab)
    assert size == len(set(pred) | set(lab))


def test_keys_of_mixed_lengths_are_padded_without_merging_any():
    """Keys of mixed lengths are NUL-padded to one width for strided reads; the lengths stay
    apart, so a key and the same key with trailing NULs, or multi-byte text, are never merged."""
    keys = ["a", "a\0", "a\0\0", "", "\0", "é", "e", "é\0", "orphan-1", "0123456789abcdef0123", None]
    pc, lc, size = lj.encode_keys(pa.array(keys), pa.array(list(reversed(keys))))
    assert same_partition(np.concatenate([pc, lc]), keys + list(reversed(keys)))
    assert size == len(keys) - 1


# --------------------------------------------------------------------------------------------
# Verdicts and what is counted


def test_metrics_are_computed_on_joined_rows_only():
    rng = np.random.default_rng(4)
    n = 400
    y = rng.integers(0, 2, n)
    p = np.clip(0.35 * y + rng.random(n) * 0.65, 0, 1)
    keys = [f"r{i}" for i in range(n)]
    labelled = [i for i in range(n) if i % 3]  # a third has no label yet
    res = evaluate_performance(
        preds(keys, [int(v > 0.5) for v in p], list(p)),
        labels([keys[i] for i in labelled], [int(y[i]) for i in labelled]),
        settings(),
        now=NOW,
    )
    idx = np.array(labelled)
    assert res.labelled == len(labelled)
    assert res.coverage == pytest.approx(len(labelled) / n)
    assert metric(res, "auc").value == pytest.approx(skm.roc_auc_score(y[idx], p[idx]), abs=1e-12)
    assert metric(res, "accuracy").value == pytest.approx(skm.accuracy_score(y[idx], p[idx] > 0.5), abs=1e-12)
    assert (res.verdict, res.reason) == ("Healthy", "NoThresholds")


def test_low_coverage_is_inconclusive_never_healthy():
    keys = [f"r{i}" for i in range(10)]
    res = evaluate_performance(
        preds(keys, [1] * 10, [0.9] * 10),
        labels(keys[:3], [1, 1, 1]),
        settings(minCoverage=0.5, metrics=[{"name": "accuracy", "min": 0.5}]),
        now=NOW,
    )
    assert metric(res, "accuracy").passed is True
    assert (res.verdict, res.reason) == ("Inconclusive", "InsufficientLabels")
    assert "coverage 30.0%" in res.message
    assert "minCoverage 50%" in res.message
    res = evaluate_performance(preds(keys, [1] * 10), labels(keys, [1] * 10), settings(minLabels=20), now=NOW)
    assert (res.verdict, res.reason) == ("Inconclusive", "InsufficientLabels")
    assert "minLabels 20" in res.message


def test_absolute_and_relative_thresholds():
    keys = [f"r{i}" for i in range(8)]
    y = [1, 1, 1, 1, 0, 0, 0, 0]
    pred = [1, 1, 1, 0, 0, 0, 0, 1]  # accuracy 0.75
    p = [0.9, 0.8, 0.7, 0.45, 0.3, 0.2, 0.1, 0.4]  # auc 1.0
    cfg = settings(
        metrics=[
            {"name": "accuracy", "maxRelativeDrop": 0.05},
            {"name": "auc", "min": 0.8},
            {"name": "logLoss", "maxRelativeDrop": 0.1},
        ]
    )
    res = evaluate_performance(
        preds(keys, pred, p), labels(keys, y), cfg, now=NOW, registered={"accuracy": 0.9, "log_loss": 0.5}
    )
    acc, auc, loss = metric(res, "accuracy"), metric(res, "auc"), metric(res, "logLoss")
    assert (acc.min, acc.registered, acc.passed) == (pytest.approx(0.855), 0.9, False)
    assert (auc.value, auc.passed) == (1.0, True)
    assert (loss.max, loss.registered) == (pytest.approx(0.55), 0.5)  # lower is better: the bound is above
    assert loss.passed is (loss.value <= 0.55)
    assert (res.verdict, res.reason) == ("Degraded", "PerformanceDegraded")
    assert res.message.startswith("accuracy 0.75 < 0.855")


def test_a_judged_metric_that_is_undefined_is_inconclusive():
    keys = ["a", "b", "c"]
    res = evaluate_performance(
        preds(keys, [1, 1, 0], [0.9, 0.7, 0.2]),
        labels(keys, [1, 1, 1]),
        settings(metrics=[{"name": "auc", "min": 0.7}]),
        now=NOW,
    )
    assert metric(res, "auc").value is None
    assert (res.verdict, res.reason) == ("Inconclusive", "UndefinedMetric")
    assert "only one class" in res.message


def test_window_late_labels_and_outside_labels():
    keys = ["old", "w1", "w2", "w3", "w4"]
    times = [NOW - 30 * H, NOW - 20 * H, NOW - 10 * H, NOW - 5 * H, NOW - 2 * H]
    lab_times = [NOW - 25 * H, NOW - 15 * H, NOW - 5 * H, NOW + 2 * H, NOW + 3 * H]  # w3, w4: known later
    cfg = settings(window="24h", labelDelay="0s")
    start, end = check_window(cfg, NOW)
    p = preds(keys, [1, 1, 0, 1, 0], times=times)
    lab = labels(keys, [1, 1, 0, 1, 0], lab_times)
    res = evaluate_performance(p, lab, cfg, now=NOW, start=start, end=end)
    assert (res.predictions, res.labelled) == (4, 2)
    assert (res.quality.future_labels, res.quality.labels_outside_window) == (2, 1)
    assert res.median_label_delay_seconds == pytest.approx(5 * 3600)
    # Four hours on, the late labels have arrived (the window moved too: "old" is further out).
    later = NOW + 4 * H
    res = evaluate_performance(p, lab, cfg, now=later, start=later - 24 * H, end=later)
    assert (res.predictions, res.labelled, res.quality.future_labels) == (4, 4, 0)


def test_a_window_needs_timestamps():
    err = bad(lambda: evaluate_performance(preds(["a"], [1]), labels(["a"], [1]), settings(), now=NOW, start=NOW - H))
    assert (err.reason, "no timestamps" in err.message) == ("MissingColumns", True)


def test_duplicate_prediction_keys_get_no_label():
    """A batched request logs several rows under one request_id: which label is whose is unknown."""
    res = evaluate_performance(
        preds(["req1", "req1", "req2"], [1, 0, 1]), labels(["req1", "req2"], [1, 1]), settings(), now=NOW
    )
    assert (res.labelled, res.quality.duplicate_prediction_rows) == (1, 2)


def test_unknown_classes_mistyped_and_missing_labels_are_counted_not_scored():
    keys = [f"r{i}" for i in range(6)]
    res = evaluate_performance(
        preds(keys, [1, 0, 1, 0, 1, 0]),
        labels(keys, [1.0, 0.0, 2.0, 0.5, None, 1.0]),
        settings(),
        now=NOW,
    )
    q = res.quality
    assert (q.unknown_classes, q.unknown_class_values, q.mistyped_labels, q.missing_labels) == (1, ["2"], 1, 1)
    assert res.labelled == 3
    assert metric(res, "accuracy").value == pytest.approx(2 / 3)


def test_booleans_string_classes_and_an_explicit_positive_class():
    keys = ["a", "b", "c", "d"]
    res = evaluate_performance(preds(keys, [1, 0, 1, 0]), labels(keys, [True, False, False, False]), settings(),
                               now=NOW)  # fmt: skip
    assert metric(res, "accuracy").value == 0.75
    cfg = settings(classes=["stay", "churn"], positiveClass="churn")
    res = evaluate_performance(
        preds(keys, ["churn", "stay", "churn", "stay"]), labels(keys, ["churn", "stay", "stay", "gone"]), cfg, now=NOW
    )
    assert metric(res, "precision").value == 0.5
    assert metric(res, "recall").value == 1.0
    assert res.quality.unknown_class_values == ["gone"]


def test_nan_predictions_are_left_out_and_the_rest_equals_sklearn():
    rng = np.random.default_rng(9)
    n = 300
    y = rng.integers(0, 2, n)
    p = rng.random(n)
    p[::7] = np.nan
    keys = [f"r{i}" for i in range(n)]
    res = evaluate_performance(
        preds(keys, [None if math.isnan(v) else int(v > 0.5) for v in p], list(p)),
        labels(keys, list(y)),
        settings(),
        now=NOW,
    )
    ok = ~np.isnan(p)
    assert res.quality.invalid_predictions == int(np.count_nonzero(~ok))
    assert res.labelled == int(np.count_nonzero(ok))
    assert metric(res, "auc").value == pytest.approx(skm.roc_auc_score(y[ok], p[ok]), abs=1e-12)
    assert metric(res, "logLoss").value == pytest.approx(skm.log_loss(y[ok], y_proba=p[ok], labels=[0, 1]), abs=1e-12)


def test_multiclass_and_regression_tasks():
    keys = [f"r{i}" for i in range(6)]
    proba = {f"predict_proba_{j}": pa.chunked_array([pa.array(np.eye(3)[[0, 1, 2, 0, 1, 2]][:, j])]) for j in range(3)}
    data = PredictionData(keys=pa.chunked_array([pa.array(keys)]), time_us=None, rows=6,
                          outputs={"predict": pa.chunked_array([pa.array([0, 1, 2, 0, 1, 2])]), **proba})  # fmt: skip
    res = evaluate_performance(data, labels(keys, [0, 1, 2, 0, 2, 2]), settings(task="multiclass"), now=NOW)
    assert metric(res, "accuracy").value == pytest.approx(5 / 6)
    assert metric(res, "recall").value == pytest.approx(skm.recall_score([0, 1, 2, 0, 2, 2], [0, 1, 2, 0, 1, 2],
                                                                         average="macro"))  # fmt: skip
    reg = PredictionData(keys=pa.chunked_array([pa.array(keys)]), time_us=None, rows=6,
                         outputs={"predict": pa.chunked_array([pa.array([1.0, 2, 3, 4, 5, 6])])})  # fmt: skip
    res = evaluate_performance(reg, labels(keys, ["1", "2", "3", "4", "5", "x"]), settings(task="regression"), now=NOW)
    assert (metric(res, "mae").value, metric(res, "rmse").value, metric(res, "r2").value) == (0.0, 0.0, 1.0)
    assert res.quality.mistyped_labels == 1


def test_estimate_is_reported_next_to_the_realised_values():
    rng = np.random.default_rng(1)
    p = rng.beta(2, 2, 2000)
    y = (rng.random(p.size) < p).astype(int)
    keys = [f"r{i}" for i in range(p.size)]
    res = evaluate_performance(
        preds(keys, list((p > 0.5).astype(int)), list(p)), labels(keys[:1000], list(y[:1000])), settings(estimate=True),
        now=NOW,
    )  # fmt: skip
    est = res.estimate
    assert est is not None
    assert est.rows == 2000
    assert est.realised_auc == metric(res, "auc").value
    assert est.auc == pytest.approx(est.realised_auc, abs=0.03)
    assert est.accuracy == pytest.approx(est.realised_accuracy, abs=0.03)
    assert "calibrated" in est.assumptions


def test_chunks_report_metrics_per_window():
    times = [NOW - timedelta(hours=h) for h in (1, 2, 7, 8, 13)]
    keys = [f"r{i}" for i in range(5)]
    res = evaluate_performance(
        preds(keys, [1, 1, 1, 0, 1], times=times), labels(keys, [1, 0, 1, 0, 1]), settings(chunk="6h"), now=NOW,
        start=NOW - 24 * H, end=NOW,
    )  # fmt: skip
    assert res.windows is not None
    got = [(w.start.hour, w.predictions, next(m.value for m in w.metrics if m.name == "accuracy")) for w in res.windows]
    assert got == [(18, 1, 1.0), (0, 2, 1.0), (6, 2, 0.5)]


# --------------------------------------------------------------------------------------------
# Reading the sources, and every bad-data reason


def write_log(path: Path, n: int = 50, fmt: str = "jsonl", start: datetime = NOW - 2 * H) -> Path:
    rows = [
        {
            "timestamp": (start + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
            "model": "churn",
            "version": "1",
            "track": "stable",
            "replica": "pod-w0",
            "request_id": f"req-{i}",
            "inputs": {"customer_id": 1000 + i, "tenure": float(i)},
            "outputs": {
                "predict": i % 2,
                "predict_proba_0": 0.4 if i % 2 else 0.6,
                "predict_proba_1": 0.6 if i % 2 else 0.4,
            },
        }
        for i in range(n)
    ]
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        for r in rows:
            r["timestamp"] = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00"))
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def cfg_for(labels_path: Path, **extra: Any) -> PerformanceSettings:
    doc: dict[str, Any] = {"labels": {"uri": str(labels_path)}, "task": "binary", "minLabels": 1}
    doc.update(extra)
    return PerformanceSettings.model_validate(doc)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_reads_the_servers_prediction_log(tmp_path, fmt):
    log = write_log(tmp_path / f"p.{fmt}", fmt=fmt)
    lab = tmp_path / "labels.csv"
    lab.write_text("request_id,label\n" + "".join(f"req-{i},{i % 2}\n" for i in range(50)))
    res = check_performance(cfg_for(lab), str(log), now=NOW, start=NOW - 24 * H, end=NOW)
    assert (res.predictions, res.labelled, metric(res, "accuracy").value, metric(res, "auc").value) == (
        50,
        50,
        1.0,
        1.0,
    )


def test_a_directory_of_logs_and_an_input_as_join_key(tmp_path):
    logdir = tmp_path / "log"
    logdir.mkdir()
    write_log(logdir / "a.jsonl", n=20)
    write_log(logdir / "b.jsonl", n=20, start=NOW - 20 * H)  # same ids: duplicated request ids
    data = read_predictions(str(logdir), "auto", "customer_id", ["predict"], probability_prefix="predict_proba_")
    assert (data.rows, data.files) == (40, 2)
    lab = tmp_path / "labels.jsonl"
    lab.write_text("".join(json.dumps({"customer": 1000 + i, "churned": i % 2}) + "\n" for i in range(20)))
    cfg = cfg_for(
        lab, joinKey="customer_id", labels={"uri": str(lab), "idColumn": "customer", "labelColumn": "churned"}
    )
    res = check_performance(cfg, str(logdir), now=NOW, start=NOW - 4 * H, end=NOW)
    assert (res.predictions, res.labelled, res.quality.duplicate_prediction_rows) == (20, 0, 20)


def test_a_malformed_jsonl_line_is_skipped_and_counted(tmp_path):
    log = write_log(tmp_path / "p.jsonl", n=10)
    log.write_text(log.read_text() + '{"timestamp": "2026-11-30T11:00:00Z", "request_id": "x", "outp\n')
    data = read_predictions(str(log), "auto", "request_id", ["predict"])
    assert (data.rows, data.malformed) == (10, 1)


def bad(fn: Any) -> DriftDataError:
    with pytest.raises(DriftDataError) as info:
        fn()
    return info.value


def test_every_bad_data_case_has_its_reason(tmp_path):
    log = write_log(tmp_path / "p.jsonl")
    good = tmp_path / "labels.csv"
    good.write_text("request_id,label\n" + "".join(f"req-{i},{i % 2}\n" for i in range(50)))

    def run(cfg: PerformanceSettings, predictions: str = str(log), **kw: Any) -> Any:
        return lambda: check_performance(cfg, predictions, now=NOW, **kw)

    garbage = tmp_path / "labels.parquet"
    garbage.write_bytes(b"not parquet at all")
    cases = {
        "no labels file": (run(cfg_for(tmp_path / "nope.csv")), "UnreadableData", "no such file"),
        "unreadable labels": (run(cfg_for(garbage)), "UnreadableData", "cannot read"),
        "unreadable log": (run(cfg_for(good), predictions=str(garbage)), "UnreadableData", "cannot read"),
        "no label column": (
            run(cfg_for(good, labels={"uri": str(good), "labelColumn": "churned"})),
            "MissingColumns",
            "lack column(s) churned",
        ),
        "no id column": (
            run(cfg_for(good, labels={"uri": str(good), "idColumn": "customer"})),
            "MissingColumns",
            "customer",
        ),
        "no join key": (run(cfg_for(good, joinKey="order_id")), "MissingColumns", "join key column 'order_id'"),
        "no predictions in the window": (
            run(cfg_for(good), start=NOW - 10 * H, end=NOW - 5 * H),
            "EmptyData",
            "no predictions between",
        ),
        "metric of another task": (run(cfg_for(good, metrics=[{"name": "rmse"}])), "InvalidConfig", "do not apply"),
        "relative threshold, nothing registered": (
            run(cfg_for(good, metrics=[{"name": "auc", "maxRelativeDrop": 0.05}])),
            "InvalidConfig",
            "registered spec.metrics.auc",
        ),
        "three classes for a binary task": (
            run(cfg_for(good, classes=["a", "b", "c"])),
            "InvalidConfig",
            "exactly two",
        ),
    }
    empty = tmp_path / "empty.csv"
    empty.write_text("request_id,label\n")
    cases["no labels"] = (run(cfg_for(empty)), "EmptyData", "no rows")
    mistyped = tmp_path / "mistyped.csv"
    mistyped.write_text("request_id,label\n" + "".join(f"req-{i},0.5\n" for i in range(50)))
    cases["every label mistyped"] = (run(cfg_for(mistyped)), "MistypedData", "every label")
    no_proba = tmp_path / "noproba.jsonl"
    no_proba.write_text(
        json.dumps({"timestamp": "2026-11-30T10:00:00Z", "request_id": "req-1", "outputs": {"predict": 1}}) + "\n"
    )
    cases["auc threshold without probabilities"] = (
        run(cfg_for(good, metrics=[{"name": "auc", "min": 0.8}]), predictions=str(no_proba)),
        "MissingColumns",
        "probabilities",
    )
    no_time = tmp_path / "flat.csv"
    no_time.write_text("request_id,predict\nreq-1,1\n")
    cases["a window without timestamps"] = (
        run(cfg_for(good), predictions=str(no_time), start=NOW - H, end=NOW),
        "MissingColumns",
        "'timestamp'",
    )
    for what, (fn, reason, text) in cases.items():
        err = bad(fn)
        assert (err.reason, text in err.message) == (reason, True), (what, err)


def test_the_drift_report_gains_the_performance_section():
    from modelops.drift.engine import compute_drift
    from modelops.drift.frame import frame_from_arrays
    from modelops.drift.html import render_html

    rng = np.random.default_rng(0)
    drift = compute_drift(frame_from_arrays({"x": rng.normal(size=300)}), frame_from_arrays({"x": rng.normal(size=300)}),
                          histograms=True)  # fmt: skip
    times = [NOW - timedelta(hours=h) for h in (1, 2, 7, 8)]
    keys = ["a", "b", "c", "d"]
    perf = evaluate_performance(
        preds(keys, [1, 1, 0, 0], [0.9, 0.8, 0.3, 0.6], times=times), labels(keys, [1, 0, 0, 0]),
        settings(chunk="6h", metrics=[{"name": "accuracy", "min": 0.8, "maxRelativeDrop": 0.1}]), now=NOW,
        registered={"accuracy": 0.85},
    )  # fmt: skip
    page = render_html(drift, performance=perf)
    assert page.index("features drifted") < page.index("<h2>Model performance</h2>")
    section = page[page.index("<h2>Model performance</h2>") :]
    assert "Degraded: PerformanceDegraded" in section
    assert "min 0.8000" in section  # the bound, charted
    assert "registered 0.8500" in section  # the offline value, charted
    assert section.count("<circle") == 2  # one point per window
