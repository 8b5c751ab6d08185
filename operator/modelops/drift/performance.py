"""Model performance from delayed labels: join, metrics, thresholds and a verdict.

Entry point :func:`evaluate_performance` takes the prediction log and the labels as read by
:mod:`modelops.drift.performance_io`, the monitor's ``spec.performance`` settings, the check time
and the ModelVersion's registered offline metrics, and returns the
:class:`~modelops.api.driftmonitor.PerformanceResult` the DriftMonitor status holds (the CLI
prints the same object).

Verdicts:

- ``Inconclusive`` (reason ``InsufficientLabels``) when fewer than ``minLabels`` predictions of
  the window have a usable label, or their share (the label coverage) is below ``minCoverage``:
  too few labels are never "fine". Also (reason ``UndefinedMetric``) when a metric with a
  threshold is undefined on this data (e.g. AUC with one class only).
- ``Degraded`` (reason ``PerformanceDegraded``) when a metric is past a threshold: ``min``/``max``
  absolute bounds, or ``maxRelativeDrop`` below (scores) / above (losses, errors) the
  registered value.
- ``Healthy`` otherwise.

Data the check cannot judge raises :class:`~modelops.drift.errors.DriftDataError` (phase Error):
unreadable sources, missing columns, no predictions in the window, every label mistyped, a
configuration that does not fit the data.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from modelops.api.performance import (
    LabelQuality,
    PerformanceEstimate,
    PerformanceMetric,
    PerformanceMetricResult,
    PerformanceResult,
    PerformanceSettings,
    PerformanceWindow,
    WindowMetric,
)
from modelops.drift import performance_metrics as pm
from modelops.drift.durations import parse_duration
from modelops.drift.errors import DriftDataError
from modelops.drift.labels_join import KEY_DUPLICATE, KEY_MISSING, as_arrow, encode_keys, join_codes
from modelops.drift.performance_io import LabelData, PredictionData, Prefetch, ReadPlan, read_sources

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
NO_TIME = np.iinfo(np.int64).min
LABEL_MISSING, LABEL_MISTYPED, LABEL_UNKNOWN = 1, 2, 3
MAX_WINDOWS = 60
UNKNOWN_SHOWN = 10

ASSUMPTIONS = (
    "Confidence-based estimate (CBPE): assumes the logged probabilities are calibrated and that "
    "P(label | inputs) is unchanged since training (no concept drift). It follows shifts in the "
    "inputs, not changes in what the right answer is; probabilities are not recalibrated here."
)

REGISTERED_ALIASES: dict[str, tuple[str, ...]] = {
    "auc": ("auc", "rocauc", "roc"),
    "logLoss": ("logloss", "crossentropy"),
    "f1": ("f1", "f1score"),
    "r2": ("r2", "r2score"),
    "accuracy": ("accuracy", "acc"),
    "precision": ("precision",),
    "recall": ("recall",),
    "mae": ("mae", "meanabsoluteerror"),
    "rmse": ("rmse", "rootmeansquarederror"),
}


def _norm(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def registered_value(registered: Mapping[str, float] | None, metric: PerformanceMetric) -> float | None:
    """The ModelVersion's offline value of ``metric``: ``registeredName``, else the name or an alias."""
    if not registered:
        return None
    if metric.registered_name is not None:
        value = registered.get(metric.registered_name)
        return float(value) if value is not None else None
    aliases = {_norm(a) for a in REGISTERED_ALIASES.get(metric.name, (metric.name,))} | {_norm(metric.name)}
    for key, value in registered.items():
        if _norm(key) in aliases:
            return float(value)
    return None


# --------------------------------------------------------------------------------------------
# Labels and predictions as class codes or numbers


def _combine(column: Any) -> Any:
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    return column


def class_tokens(column: Any, what: str) -> tuple[Any, BoolArray]:
    """Class labels as text (numbers without a trailing ``.0``; booleans ``true``/``false``; null
    when missing), and which values are mistyped (non-integral numbers)."""
    import pyarrow as pa

    from modelops.drift import arrow_kernels as ak

    col = _combine(column)
    typ = col.type
    n = len(col)
    mistyped = np.zeros(n, dtype=np.bool_)
    if pa.types.is_boolean(typ):
        tokens = ak.call("if_else", col, "true", "false")
    elif pa.types.is_integer(typ):
        tokens = ak.cast(col, pa.string())
    elif pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        values = ak.cast(col, pa.float64())
        integral = ak.call("and", ak.call("is_finite", values), ak.call("equal", ak.call("floor", values), values))
        whole = ak.cast(ak.call("if_else", integral, values, 0.0), pa.int64())
        tokens = ak.call("if_else", integral, ak.cast(whole, pa.string()), pa.scalar(None, pa.string()))
        bad = ak.call("and", ak.call("is_finite", values), ak.call("invert", integral))
        mistyped = np.asarray(ak.fill_null(bad, False).to_numpy(zero_copy_only=False), dtype=np.bool_)
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
        stripped = ak.call("utf8_trim_whitespace", col)
        tokens = ak.call(
            "if_else", ak.call("equal", stripped, ""), pa.scalar(None, pa.string()), ak.cast(stripped, pa.string())
        )
    elif pa.types.is_null(typ):
        tokens = pa.nulls(n, pa.string())
    else:
        raise DriftDataError("MistypedData", f"{what} holds {typ}, not class labels")
    return ak.cast(tokens, pa.string()), mistyped


def class_codes(tokens: Any, classes: Sequence[str]) -> IntArray:
    """Index of each token in ``classes``; -1 for missing or unknown."""
    import pyarrow as pa

    from modelops.drift import arrow_kernels as ak

    if set(classes) == {"0", "1"}:
        # true/false stand for 1/0 when the classes are 0 and 1.
        index = ak.index_in(tokens, pa.array(["0", "1", "false", "true"], pa.string()))
        bit = np.asarray(ak.fill_null(index, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
        lookup = np.array([classes.index("0"), classes.index("1"), -1], dtype=np.int64)
        return lookup[np.where(bit >= 0, bit % 2, 2)]
    index = ak.index_in(tokens, pa.array(list(classes), pa.string()))
    return np.asarray(ak.fill_null(index, -1).to_numpy(zero_copy_only=False), dtype=np.int64)


@dataclass(frozen=True)
class Classified:
    """Class codes of a column (-1 where there is none) and why a value has none."""

    codes: IntArray
    missing: BoolArray
    mistyped: BoolArray

    @property
    def unknown(self) -> BoolArray:
        return (self.codes < 0) & ~self.missing & ~self.mistyped


def _integer_classes(classes: Sequence[str]) -> IntArray | None:
    if classes and all(re.fullmatch(r"-?\d+", c) for c in classes):
        return np.array([int(c) for c in classes], dtype=np.int64)
    return None


def classify(column: Any, classes: Sequence[str], what: str) -> Classified:
    """Each value's index in ``classes``, vectorised.

    Numbers (and booleans, as 0/1 or false/true) against integer classes take a numpy path
    (one ``searchsorted``); anything else is compared as text (:func:`class_tokens`).
    """
    import pyarrow as pa

    from modelops.drift import arrow_kernels as ak

    col = _combine(column)
    typ = col.type
    n = len(col)
    ints = _integer_classes(classes)
    boolean = pa.types.is_boolean(typ)
    numeric = pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ)
    if boolean and set(classes) == {"false", "true"}:
        bits = np.asarray(ak.fill_null(ak.cast(col, pa.int64()), -1).to_numpy(zero_copy_only=False))
        lookup = np.array([classes.index("false"), classes.index("true"), -1], dtype=np.int64)
        codes = lookup[np.where(bits >= 0, bits, 2)]
        return Classified(codes, bits < 0, np.zeros(n, dtype=np.bool_))
    if ints is None or not (boolean or numeric):
        tokens, mistyped = class_tokens(col, what)
        codes = class_codes(tokens, classes)
        missing = np.asarray(ak.is_null(tokens).to_numpy(zero_copy_only=False), dtype=np.bool_) & ~mistyped
        return Classified(codes, missing, mistyped)
    mistyped = np.zeros(n, dtype=np.bool_)
    if pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        floats = np.asarray(ak.cast(col, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        missing = np.isnan(floats)
        integral = np.isfinite(floats) & (np.floor(floats) == floats)
        mistyped = ~missing & ~integral
        values = np.where(integral, floats, 0).astype(np.int64)
    elif col.null_count == 0 and pa.types.is_int64(typ):
        missing = np.zeros(n, dtype=np.bool_)
        values = col.to_numpy()  # zero-copy
    else:
        missing = np.asarray(ak.is_null(col).to_numpy(zero_copy_only=False), dtype=np.bool_)
        values = np.asarray(ak.fill_null(ak.cast(col, pa.int64()), 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    if np.array_equal(ints, np.arange(ints.size)):
        # Classes 0..k-1 in order (the usual case): a value is its own code.
        hit = (values >= 0) & (values < ints.size) & ~missing & ~mistyped
        return Classified(np.where(hit, values, -1).astype(np.int64, copy=False), missing, mistyped)
    sorter = np.argsort(ints)
    ordered = ints[sorter]
    pos = np.clip(np.searchsorted(ordered, values), 0, ordered.size - 1)
    hit = (ordered[pos] == values) & ~missing & ~mistyped
    return Classified(np.where(hit, sorter[pos], -1).astype(np.int64), missing, mistyped)


def distinct_classes(column: Any, what: str) -> set[str]:
    """The distinct class labels of a column, as text (for inferring the classes)."""
    from modelops.drift import arrow_kernels as ak

    tokens, _ = class_tokens(ak.call("unique", _combine(column)), what)
    return _distinct(tokens)


def numeric_values(column: Any, what: str) -> tuple[FloatArray, BoolArray]:
    """Regression targets or predictions as float64 (NaN when missing), and the mistyped values."""
    import pyarrow as pa

    from modelops.drift import arrow_kernels as ak

    col = _combine(column)
    typ = col.type
    n = len(col)
    if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        values = ak.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        return np.array(values, dtype=np.float64), np.zeros(n, dtype=np.bool_)
    if pa.types.is_null(typ):
        return np.full(n, np.nan), np.zeros(n, dtype=np.bool_)
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        try:
            values = ak.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
            return np.array(values, dtype=np.float64), np.zeros(n, dtype=np.bool_)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            out = np.full(n, np.nan)
            bad = np.zeros(n, dtype=np.bool_)
            for i, text in enumerate(col.to_pylist()):
                if text is None or not text.strip():
                    continue
                try:
                    out[i] = float(text)
                except ValueError:
                    bad[i] = True
            return out, bad
    raise DriftDataError("MistypedData", f"{what} holds {typ}, not numbers")


def _sort_classes(tokens: set[str]) -> list[str]:
    """Integers numerically, anything else as text (scikit-learn's ``classes_`` order)."""
    if tokens and all(re.fullmatch(r"-?\d+", t) for t in tokens):
        return sorted(tokens, key=int)
    return sorted(tokens)


def _distinct(tokens: Any) -> set[str]:
    from modelops.drift import arrow_kernels as ak

    return {t for t in ak.call("unique", tokens).to_pylist() if t is not None}


def infer_classes(settings: PerformanceSettings, seen: set[str], n_proba: int) -> list[str]:
    """The classes, in probability-column order: configured, else what the model predicts.

    Labels never add classes (a label the model cannot predict is an unknown class, counted).
    """
    if settings.classes:
        if len(set(settings.classes)) != len(settings.classes):
            raise DriftDataError("InvalidConfig", "performance.classes lists a class twice")
        if settings.task == "binary" and len(settings.classes) != 2:
            raise DriftDataError("InvalidConfig", "a binary task needs exactly two performance.classes")
        return list(settings.classes)
    if settings.task == "binary":
        if seen and seen <= {"true", "false"}:
            return ["false", "true"]
        if seen <= {"0", "1"}:
            return ["0", "1"]
        if len(seen) == 2:
            return _sort_classes(seen)
        raise DriftDataError(
            "InvalidConfig",
            f"cannot tell the two classes from the predictions ({', '.join(sorted(seen)[:5]) or 'none'}); "
            "set performance.classes",
        )
    if n_proba and len(seen) < n_proba and all(t.isdigit() and int(t) < n_proba for t in seen):
        return [str(j) for j in range(n_proba)]
    if n_proba and len(seen) != n_proba:
        raise DriftDataError(
            "InvalidConfig",
            f"the predictions show {len(seen)} classes but {n_proba} probability columns; set performance.classes",
        )
    if not seen:
        raise DriftDataError("InvalidConfig", "no predicted classes to infer the classes from; set performance.classes")
    return _sort_classes(seen)


# --------------------------------------------------------------------------------------------
# The joined, typed rows


@dataclass(frozen=True)
class Prepared:
    """The rows of the window, typed: what the metrics see."""

    in_window: BoolArray
    usable: BoolArray
    y_true: Any  # IntArray (classes) or FloatArray (regression), aligned with predictions
    y_pred: Any
    proba: FloatArray | None  # (n,) binary positive probability or (n, k); aligned with predictions
    proba_ok: BoolArray | None
    classes: list[str]
    positive: int | None
    quality: LabelQuality
    time_us: IntArray | None
    label_delay_s: float | None


def _probabilities(
    data: PredictionData, settings: PerformanceSettings, classes: Sequence[str], positive: int | None
) -> tuple[FloatArray | None, BoolArray | None]:
    prefix = settings.probability_output + "_"
    columns = {int(k[len(prefix) :]): v for k, v in data.outputs.items() if k.startswith(prefix)}
    if not columns:
        return None, None
    wanted = [positive] if positive is not None else list(range(len(classes)))
    if any(j not in columns for j in wanted):
        return None, None
    arrays = []
    for j in wanted:
        values, bad = numeric_values(columns[j], f"prediction output {prefix}{j}")
        values[bad] = np.nan
        arrays.append(values)
    proba = arrays[0] if positive is not None else np.column_stack(arrays)
    valid = np.isfinite(proba) & (proba >= 0.0) & (proba <= 1.0)
    ok = valid if valid.ndim == 1 else np.all(valid, axis=1)
    return np.ascontiguousarray(proba), ok


def _window_mask(time_us: IntArray | None, n: int, start: datetime | None, end: datetime | None) -> BoolArray:
    if time_us is None or (start is None and end is None):
        return np.ones(n, dtype=np.bool_)
    mask: BoolArray = time_us != NO_TIME
    if start is not None:
        mask &= time_us >= _micros(start)
    if end is not None:
        mask &= time_us < _micros(end)
    return mask


def _micros(when: datetime) -> int:
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_micros(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))


def prepare(
    predictions: PredictionData,
    labels: LabelData,
    settings: PerformanceSettings,
    *,
    now: datetime,
    start: datetime | None,
    end: datetime | None,
) -> Prepared:
    """Join and type; raises DriftDataError when nothing can be judged.

    The keys' encoding (the join's costly half, see :func:`~modelops.drift.labels_join.encode_keys`)
    starts first, in its own thread, while the labels and predictions are typed here.
    """
    encoding = pm.in_background(encode_keys, as_arrow(predictions.keys), as_arrow(labels.ids))
    n = predictions.rows
    task = settings.task
    pred_col = predictions.column(settings.prediction_output)
    prefix = settings.probability_output + "_"
    n_proba = 1 + max((int(k[len(prefix) :]) for k in predictions.outputs if k.startswith(prefix)), default=-1)

    # Labels.
    unknown_values: list[str] = []
    y_pred_all: npt.NDArray[Any]
    if task == "regression":
        label_values, label_mistyped = numeric_values(labels.labels, f"label column of {labels.source}")
        if pred_col is None:
            raise DriftDataError(
                "MissingColumns", f"the predictions have no output {settings.prediction_output!r} to judge"
            )
        y_pred_all, pred_bad = numeric_values(pred_col, f"prediction output {settings.prediction_output!r}")
        pred_valid = np.isfinite(y_pred_all) & ~pred_bad
        classes: list[str] = []
        positive = None
        label_code_or_value = label_values
        label_missing = np.isnan(label_values) & ~label_mistyped
        label_unknown = np.zeros(labels.rows, dtype=np.bool_)
    else:
        pred_what = f"prediction output {settings.prediction_output!r}"
        if pred_col is None and n_proba == 0:
            raise DriftDataError(
                "MissingColumns",
                f"the predictions have neither output {settings.prediction_output!r} nor "
                f"{settings.probability_output}_<j> probabilities",
            )
        seen = distinct_classes(pred_col, pred_what) if pred_col is not None else set()
        classes = infer_classes(settings, seen, n_proba)
        if settings.task == "binary":
            positive_class = settings.positive_class or classes[-1]
            if positive_class not in classes:
                raise DriftDataError(
                    "InvalidConfig", f"performance.positiveClass {positive_class!r} is not one of {classes}"
                )
            positive = classes.index(positive_class)
        else:
            positive = None
        label_classes = classify(labels.labels, classes, f"label column of {labels.source}")
        codes = label_classes.codes
        label_missing, label_mistyped = label_classes.missing, label_classes.mistyped
        label_unknown = label_classes.unknown
        label_codes = codes
        label_code_or_value = np.where(codes >= 0, codes, np.where(label_unknown, -2.0, np.nan)).astype(np.float64)
        label_code_or_value[label_mistyped] = -3.0
        if pred_col is not None:
            pred_codes = classify(pred_col, classes, pred_what).codes
        else:
            pred_codes = np.full(n, -1, dtype=np.int64)
        y_pred_all = pred_codes
        pred_valid = pred_codes >= 0

    valid_labels = ~label_missing & ~label_mistyped
    if labels.rows and not np.any(valid_labels | label_missing):
        raise DriftDataError(
            "MistypedData", f"every label in {labels.source} is mistyped for a {task} task (e.g. not a class)"
        )

    now_us = _micros(now)
    known = None if labels.time_us is None else labels.time_us <= now_us
    joined = join_codes(
        *encoding.result(),
        label_time=labels.time_us,
        label_value=label_code_or_value,
        label_known=known,
    )
    if predictions.time_us is None and (start is not None or end is not None):
        raise DriftDataError(
            "MissingColumns", f"the predictions at {predictions.source} have no timestamps for a window"
        )
    in_window = _window_mask(predictions.time_us, n, start, end)
    if not np.any(in_window):
        raise DriftDataError(
            "EmptyData",
            f"no predictions between {_when(start)} and {_when(end)} in {predictions.source} "
            f"({n} rows read, {predictions.malformed} malformed)",
        )
    row = joined.label_row
    has_row = row >= 0
    matched = in_window & has_row
    safe_row = np.where(has_row, row, 0)
    # Each label's state, gathered once per prediction: 0 usable, then why not.
    state = np.zeros(labels.rows, dtype=np.int8)
    state[label_missing] = LABEL_MISSING
    state[label_mistyped] = LABEL_MISTYPED
    state[label_unknown] = LABEL_UNKNOWN
    row_state = state[safe_row]
    del state

    proba, proba_ok = (None, None)
    if task != "regression":
        proba, proba_ok = _probabilities(predictions, settings, classes, positive)
        if pred_col is None:
            if proba is None:
                raise DriftDataError(
                    "MissingColumns",
                    f"the predictions have no output {settings.prediction_output!r} and not every "
                    f"{settings.probability_output}_<j> column",
                )
            if positive is not None:
                p = np.nan_to_num(proba, nan=0.0)
                # argmax of (1 - p, p) in class order; a tie goes to the first class, as predict() does
                y_pred_all = np.where(p > 0.5, positive, np.where(p < 0.5, 1 - positive, 0)).astype(np.int64)
            else:
                y_pred_all = np.argmax(np.nan_to_num(proba, nan=-1.0), axis=1).astype(np.int64)
            assert proba_ok is not None
            pred_valid = proba_ok.copy()

    label_ok = row_state == 0
    usable = matched & label_ok & pred_valid
    unknown_rows = matched & (row_state == LABEL_UNKNOWN)
    if np.any(unknown_rows):
        import pyarrow as pa

        from modelops.drift import arrow_kernels as ak

        picked = ak.take(_combine(labels.labels), pa.array(row[unknown_rows][:10000]))
        unknown_values = sorted(distinct_classes(picked, "labels"))[:UNKNOWN_SHOWN]

    delay: Future[float | None] | None = None
    if labels.time_us is not None and predictions.time_us is not None and np.any(usable):
        # On the other core while the counts below are taken (a gather and a partition).
        delay = pm.in_background(_label_delay, labels.time_us, predictions.time_us, row, usable)

    status = joined.key_status
    invalid = int(np.count_nonzero(in_window & ~pred_valid))
    if predictions.time_us is not None and (start is not None or end is not None):
        invalid += int(np.count_nonzero(predictions.time_us == NO_TIME))  # unreadable timestamps: left out
    quality = LabelQuality(
        missing_keys=int(np.count_nonzero(in_window & (status == KEY_MISSING))),
        duplicate_prediction_rows=int(np.count_nonzero(in_window & (status == KEY_DUPLICATE))),
        missing_labels=int(joined.missing_label_ids + np.count_nonzero(matched & (row_state == LABEL_MISSING))),
        duplicate_label_ids=joined.duplicate_label_ids,
        conflicting_label_ids=joined.conflicting_label_ids,
        future_labels=joined.future_labels,
        labels_without_predictions=joined.labels_without_predictions,
        labels_outside_window=int(np.count_nonzero(~in_window & has_row)),
        unknown_classes=int(np.count_nonzero(unknown_rows)),
        unknown_class_values=unknown_values or None,
        mistyped_labels=int(np.count_nonzero(matched & (row_state == LABEL_MISTYPED))),
        invalid_predictions=invalid,
    )
    if task == "regression":
        label_values = np.asarray(label_code_or_value, dtype=np.float64)
        y_true = np.where(matched, label_values[safe_row], np.nan)
    else:
        y_true = np.where(matched & label_ok, label_codes[safe_row], -1)
    return Prepared(
        in_window=in_window,
        usable=usable,
        y_true=y_true,
        y_pred=y_pred_all,
        proba=proba,
        proba_ok=proba_ok,
        classes=classes,
        positive=positive,
        quality=quality,
        time_us=predictions.time_us,
        label_delay_s=delay.result() if delay is not None else None,
    )


def _label_delay(label_us: IntArray, pred_us: IntArray, label_row: IntArray, usable: BoolArray) -> float | None:
    """The median time from prediction to label, in seconds, over the usable pairs with both times."""
    lt = label_us[label_row[usable]]
    pt = pred_us[usable]
    ok = (lt != NO_TIME) & (pt != NO_TIME)
    return _median((lt[ok] - pt[ok]) / 1e6) if np.any(ok) else None


def _median(values: FloatArray) -> float:
    """``np.median`` of a non-empty 1-D array (the same value), without numpy.ma's import."""
    k = values.size // 2
    if values.size % 2:
        return float(np.partition(values, k)[k])
    part = np.partition(values, [k - 1, k])
    return float((part[k - 1] + part[k]) / 2)


def _when(when: datetime | None) -> str:
    return when.isoformat().replace("+00:00", "Z") if when is not None else "the start"


# --------------------------------------------------------------------------------------------
# Metrics, thresholds, verdict


def task_metrics(settings: PerformanceSettings) -> list[PerformanceMetric]:
    """The metrics to report: configured, else every metric of the task (without thresholds)."""
    names = pm.REGRESSION_METRICS if settings.task == "regression" else pm.CLASSIFICATION_METRICS
    if not settings.metrics:
        return [PerformanceMetric(name=n) for n in names]
    wrong = [m.name for m in settings.metrics if m.name not in names]
    if wrong:
        raise DriftDataError(
            "InvalidConfig",
            f"metric(s) {', '.join(wrong)} do not apply to a {settings.task} task (use {', '.join(names)})",
        )
    seen: set[str] = set()
    for m in settings.metrics:
        if m.name in seen:
            raise DriftDataError("InvalidConfig", f"metric {m.name} is listed twice")
        seen.add(m.name)
    return list(settings.metrics)


def compute_metrics(prep: Prepared, rows: BoolArray, task: str) -> dict[pm.MetricName, pm.MetricValue]:
    """Every metric of the task on the selected rows."""
    if task == "regression":
        return pm.regression_metrics(prep.y_true[rows], prep.y_pred[rows].astype(np.float64))
    proba = None if prep.proba is None else prep.proba[rows]
    proba_rows = None if prep.proba_ok is None else prep.proba_ok[rows]
    return pm.classification_metrics(
        prep.y_true[rows],
        prep.y_pred[rows],
        len(prep.classes),
        positive=prep.positive,
        proba=proba,
        proba_rows=proba_rows,
    )


@dataclass(frozen=True)
class Bounds:
    low: float | None
    high: float | None
    registered: float | None


def bounds_of(metric: PerformanceMetric, registered: Mapping[str, float] | None) -> Bounds:
    reg = registered_value(registered, metric)
    low, high = metric.min, metric.max
    if metric.max_relative_drop is not None:
        if reg is None:
            key = metric.registered_name or metric.name
            raise DriftDataError(
                "InvalidConfig",
                f"metric {metric.name}: maxRelativeDrop needs the ModelVersion's registered spec.metrics.{key}",
            )
        slack = abs(reg) * metric.max_relative_drop
        if metric.name in pm.LOWER_IS_BETTER:
            high = reg + slack if high is None else min(high, reg + slack)
        else:
            low = reg - slack if low is None else max(low, reg - slack)
    return Bounds(low, high, reg)


def judge(metric: PerformanceMetric, value: pm.MetricValue, bounds: Bounds) -> PerformanceMetricResult:
    passed: bool | None = None
    if value.value is not None and (bounds.low is not None or bounds.high is not None):
        passed = (bounds.low is None or value.value >= bounds.low) and (
            bounds.high is None or value.value <= bounds.high
        )
    return PerformanceMetricResult(
        name=metric.name,
        value=value.value,
        note=value.note,
        min=bounds.low,
        max=bounds.high,
        registered=bounds.registered,
        passed=passed,
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _failure(m: PerformanceMetricResult) -> str:
    if m.min is not None and m.value is not None and m.value < m.min:
        return f"{m.name} {_fmt(m.value)} < {_fmt(m.min)}"
    return f"{m.name} {_fmt(m.value)} > {_fmt(m.max)}"


def _windows(
    prep: Prepared, settings: PerformanceSettings, task: str, names: Sequence[str], chunk: timedelta
) -> list[PerformanceWindow]:
    if prep.time_us is None:
        raise DriftDataError("MissingColumns", "per-chunk metrics need the predictions' timestamp column")
    size = int(chunk.total_seconds() * 1_000_000)
    if size <= 0:
        raise DriftDataError("InvalidConfig", "performance.chunk must be positive")
    times = prep.time_us[prep.in_window]
    first, last = int(times.min()), int(times.max())
    start = first - first % size
    count = (last - start) // size + 1
    if count > MAX_WINDOWS:
        raise DriftDataError(
            "InvalidConfig", f"the window spans {count} chunks of {settings.chunk}; at most {MAX_WINDOWS}"
        )
    chunk_of = np.where(prep.in_window, (prep.time_us - start) // size, -1)
    out = []
    for c in range(int(count)):
        members = chunk_of == c
        n_pred = int(np.count_nonzero(members))
        if n_pred == 0:
            continue
        rows = members & prep.usable
        values = compute_metrics(prep, rows, task) if np.any(rows) else {}
        out.append(
            PerformanceWindow(
                start=_from_micros(start + c * size),
                end=_from_micros(start + (c + 1) * size),
                predictions=n_pred,
                labelled=int(np.count_nonzero(rows)),
                metrics=[WindowMetric(name=n, value=values[n].value if n in values else None) for n in names],  # type: ignore[index]
            )
        )
    return out


def _estimate(prep: Prepared, realised: Mapping[pm.MetricName, pm.MetricValue]) -> PerformanceEstimate | None:
    if prep.proba is None or prep.proba_ok is None:
        return None
    rows = prep.in_window & prep.proba_ok & (prep.y_pred >= 0)
    proba = prep.proba[rows]
    pred = prep.y_pred[rows]
    if prep.positive is not None:
        p_pred = np.where(pred == prep.positive, proba, 1.0 - proba)
        auc = pm.estimated_auc(proba)
    else:
        p_pred = proba[np.arange(pred.size), pred]
        auc = pm.estimated_auc_ovr(proba)
    return PerformanceEstimate(
        accuracy=pm.estimated_accuracy(p_pred).value,
        auc=auc.value,
        rows=int(np.count_nonzero(rows)),
        realised_accuracy=realised["accuracy"].value if "accuracy" in realised else None,
        realised_auc=realised["auc"].value if "auc" in realised else None,
        assumptions=ASSUMPTIONS,
    )


def check_window(settings: PerformanceSettings, now: datetime) -> tuple[datetime, datetime]:
    """The monitor's window of predictions: ``window`` long, ending ``labelDelay`` before ``now``."""
    try:
        end = now - parse_duration(settings.label_delay)
        return end - parse_duration(settings.window), end
    except ValueError as exc:
        raise DriftDataError("InvalidConfig", str(exc)) from exc


def evaluate_performance(
    predictions: PredictionData,
    labels: LabelData,
    settings: PerformanceSettings,
    *,
    now: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
    registered: Mapping[str, float] | None = None,
) -> PerformanceResult:
    """Join, compute, judge; see the module docstring."""
    metrics = task_metrics(settings)
    bounds = {m.name: bounds_of(m, registered) for m in metrics}
    prep = prepare(predictions, labels, settings, now=now, start=start, end=end)
    task = settings.task
    n_window = int(np.count_nonzero(prep.in_window))
    labelled = int(np.count_nonzero(prep.usable))
    coverage = labelled / n_window if n_window else 0.0
    values = compute_metrics(prep, prep.usable, task)
    if any(
        m.name in pm.PROBABILITY_METRICS and (m.min is not None or m.max is not None or m.max_relative_drop is not None)
        for m in metrics
    ) and (prep.proba is None):
        prefix = settings.probability_output
        raise DriftDataError(
            "MissingColumns",
            f"a threshold on auc/logLoss needs predicted probabilities ({prefix}_<j> outputs); the predictions "
            "have none (ask the server for the predict_proba output, or drop the threshold)",
        )
    results = [judge(m, values[m.name], bounds[m.name]) for m in metrics]
    failing = [r for r in results if r.passed is False]
    undefined = [r for r in results if r.value is None and (r.min is not None or r.max is not None)]
    cov_text = f"coverage {coverage:.1%} ({labelled:,} of {n_window:,} predictions labelled)"
    if labelled < settings.min_labels or coverage < settings.min_coverage:
        verdict, reason = "Inconclusive", "InsufficientLabels"
        need = []
        if coverage < settings.min_coverage:
            need.append(f"minCoverage {settings.min_coverage:.0%}")
        if labelled < settings.min_labels:
            need.append(f"minLabels {settings.min_labels:,}")
        message = f"{cov_text}: below {' and '.join(need)}"
    elif failing:
        verdict, reason = "Degraded", "PerformanceDegraded"
        message = f"{'; '.join(_failure(r) for r in failing)} ({cov_text})"
    elif undefined:
        verdict, reason = "Inconclusive", "UndefinedMetric"
        message = "; ".join(f"{r.name} undefined: {r.note}" for r in undefined) + f" ({cov_text})"
    else:
        verdict = "Healthy"
        judged = [r for r in results if r.passed is not None]
        reason = "WithinThresholds" if judged else "NoThresholds"
        shown = ", ".join(f"{r.name} {_fmt(r.value)}" for r in results[:4])
        message = f"{shown} ({cov_text})" + ("" if judged else "; no thresholds set")
    windows = None
    if settings.chunk:
        windows = _windows(prep, settings, task, [m.name for m in metrics], parse_duration(settings.chunk))
    estimate = _estimate(prep, values) if settings.estimate and task != "regression" else None
    return PerformanceResult(
        verdict=verdict,  # type: ignore[arg-type]
        reason=reason,
        message=message,
        task=task,
        window_start=start,
        window_end=end,
        predictions=n_window,
        labelled=labelled,
        coverage=coverage,
        min_coverage=settings.min_coverage,
        median_label_delay_seconds=prep.label_delay_s,
        metrics=results,
        quality=prep.quality,
        estimate=estimate,
        windows=windows,
    )


def finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


__all__ = [
    "Prepared",
    "check_performance",
    "check_window",
    "class_codes",
    "class_tokens",
    "evaluate_performance",
    "infer_classes",
    "prepare",
    "read_plan",
    "registered_value",
    "task_metrics",
]


def read_plan(
    settings: PerformanceSettings, predictions_uri: str, predictions_format: str, *, need_time: bool
) -> ReadPlan:
    """What :func:`check_performance` reads for these settings."""
    src = settings.labels
    return ReadPlan(
        predictions_uri=predictions_uri,
        predictions_format=predictions_format,
        join_key=settings.join_key,
        outputs=(settings.prediction_output,),
        probability_prefix=None if settings.task == "regression" else settings.probability_output + "_",
        need_time=need_time,
        labels_uri=src.uri,
        labels_format=src.format,
        id_column=src.id_column,
        label_column=src.label_column,
        event_time_column=src.event_time_column,
    )


def check_performance(
    settings: PerformanceSettings,
    predictions_uri: str,
    predictions_format: str = "auto",
    *,
    now: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
    registered: Mapping[str, float] | None = None,
    prefetched: Prefetch | None = None,
) -> PerformanceResult:
    """Read both sources and evaluate: what the CLI and the monitor's check run.

    ``prefetched``: the sources already being read (the CLI starts before validating its
    settings); used when it reads what these settings need, else they are read again.
    """
    task_metrics(settings)  # a configuration error before any I/O
    need_time = start is not None or end is not None or settings.chunk is not None
    plan = read_plan(settings, predictions_uri, predictions_format, need_time=need_time)
    if prefetched is not None and prefetched.plan == plan:
        predictions, labels = prefetched.result()
    else:
        predictions, labels = read_sources(plan)
    return evaluate_performance(predictions, labels, settings, now=now, start=start, end=end, registered=registered)
