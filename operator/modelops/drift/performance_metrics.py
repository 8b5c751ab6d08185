"""Model-performance metrics, vectorised numpy, equal to scikit-learn's (within 1e-9) where it defines them.

Classes arrive encoded as integers ``0..k-1`` (the engine maps labels and predictions onto the
configured classes first); regression targets as float64. Inputs are clean: rows with a missing
label, an unknown class or a missing prediction were counted and dropped by the engine.

Where scikit-learn raises or warns, the metric is *undefined*: its value is ``None`` with a note
saying why, never a made-up 0 or 1. Precisely:

- precision (recall) with no predicted (true) positives, F1 with neither: undefined. This is
  scikit-learn's ``zero_division=np.nan``; its default (``"warn"``) reports 0.0 instead.
- multiclass precision/recall/F1 are **macro** averages over the classes present in the labels
  or the predictions (scikit-learn's ``labels=None``), skipping classes where the value is
  undefined (``zero_division=np.nan``); undefined when every class is.
- binary precision/recall/F1 are of the positive class (``average="binary"``).
- ROC AUC: binary from the positive class's probability; multiclass one-vs-rest, macro
  (``multi_class="ovr", average="macro"``), averaged over the classes that have both positive
  and negative labels (scikit-learn raises when a class is absent from the labels); undefined
  with one class only. Ties count one half (the trapezoidal ROC, as scikit-learn).
- log loss: probabilities clipped to ``[eps, 1 - eps]`` (float64 eps), not renormalised
  (scikit-learn 1.9 only warns when rows do not sum to one).
- R²: undefined for fewer than two rows or constant labels (scikit-learn's ``force_finite``
  substitutes 1.0 or 0.0 there).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

MetricName = Literal["accuracy", "precision", "recall", "f1", "auc", "logLoss", "mae", "rmse", "r2"]
CLASSIFICATION_METRICS: tuple[MetricName, ...] = ("accuracy", "precision", "recall", "f1", "auc", "logLoss")
PROBABILITY_METRICS: tuple[MetricName, ...] = ("auc", "logLoss")
REGRESSION_METRICS: tuple[MetricName, ...] = ("mae", "rmse", "r2")
LOWER_IS_BETTER: frozenset[str] = frozenset({"logLoss", "mae", "rmse"})
EPS = float(np.finfo(np.float64).eps)
T = TypeVar("T")


@dataclass(frozen=True)
class MetricValue:
    """A metric's value, or ``None`` with the reason it is undefined on this data."""

    value: float | None
    note: str | None = None

    @staticmethod
    def undefined(note: str) -> MetricValue:
        return MetricValue(None, note)


def _finite(value: float, note: str) -> MetricValue:
    return MetricValue(float(value)) if math.isfinite(value) else MetricValue.undefined(note)


# --------------------------------------------------------------------------------------------
# Classification from predicted classes


def accuracy(y_true: IntArray, y_pred: IntArray) -> MetricValue:
    n = int(y_true.size)
    if n == 0:
        return MetricValue.undefined("no labelled predictions")
    return MetricValue(float(np.count_nonzero(y_true == y_pred)) / n)


def confusion_counts(y_true: IntArray, y_pred: IntArray, n_classes: int) -> tuple[IntArray, IntArray, IntArray]:
    """Per class: true positives, predicted count (tp + fp) and true count (tp + fn)."""
    tp = np.bincount(y_true[y_true == y_pred], minlength=n_classes).astype(np.int64)
    predicted = np.bincount(y_pred, minlength=n_classes).astype(np.int64)
    actual = np.bincount(y_true, minlength=n_classes).astype(np.int64)
    return tp, predicted, actual


def _ratio(num: IntArray, den: IntArray) -> FloatArray:
    out = np.full(num.shape, np.nan, dtype=np.float64)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


def precision_recall_f1(
    y_true: IntArray, y_pred: IntArray, n_classes: int, positive: int | None
) -> dict[MetricName, MetricValue]:
    """Binary (of ``positive``) or macro-averaged precision, recall and F1; see the module docstring."""
    if y_true.size == 0:
        none = MetricValue.undefined("no labelled predictions")
        return {"precision": none, "recall": none, "f1": none}
    tp, predicted, actual = confusion_counts(y_true, y_pred, n_classes)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, actual)
    f1 = _ratio(2 * tp, predicted + actual)  # 2tp / (2tp + fp + fn)
    if positive is not None:
        return {
            "precision": _finite(precision[positive], "no predicted positives"),
            "recall": _finite(recall[positive], "no positive labels"),
            "f1": _finite(f1[positive], "no positive labels or predictions"),
        }
    present = (predicted + actual) > 0

    def macro(values: FloatArray, what: str) -> MetricValue:
        chosen = values[present]
        chosen = chosen[~np.isnan(chosen)]
        if chosen.size == 0:
            return MetricValue.undefined(what)
        return MetricValue(float(np.mean(chosen)))

    return {
        "precision": macro(precision, "no class has predictions"),
        "recall": macro(recall, "no class has labels"),
        "f1": macro(f1, "no class has labels or predictions"),
    }


# --------------------------------------------------------------------------------------------
# Ranking and probabilities


def _tie_groups(score: FloatArray) -> tuple[IntArray, IntArray]:
    """The ascending sort order, and the start index of each run of equal scores in it."""
    order = np.argsort(score).astype(np.int64)
    ordered = score[order]
    starts = np.concatenate(([0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1)).astype(np.int64)
    return order, starts


def roc_auc_binary(positive: BoolArray, score: FloatArray) -> MetricValue:
    """Mann-Whitney U / (P * N), ties counting one half: the area under the trapezoidal ROC.

    One sort; each run of tied scores contributes ``pos * (negatives below) + pos * neg / 2``,
    counted in int64 (exact), divided once. Non-negative scores (probabilities) are sorted as
    packed integer keys (the float's bits, then the label bit): a plain sort, no argsort.
    """
    n = int(score.size)
    n_pos = int(np.count_nonzero(positive))
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        return MetricValue.undefined("only one class in the labels")
    values: npt.NDArray[Any]
    if np.all(score >= 0.0):
        # +0.0 turns -0.0 into 0.0; non-negative float64 bits order like the floats themselves.
        bits = (score + 0.0).view(np.uint64)
        keys = np.sort((bits << np.uint64(1)) | positive.astype(np.uint64))
        values = keys >> np.uint64(1)
        keys &= np.uint64(1)  # now each row's label
        labels: npt.NDArray[Any] = keys
    else:
        order = np.argsort(score)
        values = score[order]
        labels = positive[order].astype(np.int64)
    starts = np.concatenate(([0], np.flatnonzero(values[1:] != values[:-1]) + 1)).astype(np.int64)
    ends = np.append(starts[1:], n)
    pos_through = np.cumsum(labels)[ends - 1].astype(np.int64)
    pos_before = np.concatenate(([0], pos_through[:-1]))
    pos_in = pos_through - pos_before
    neg_in = (ends - starts) - pos_in
    neg_below = starts - pos_before
    twice_u = int(np.sum(pos_in * (2 * neg_below + neg_in)))
    return MetricValue(twice_u / (2.0 * n_pos * n_neg))


def roc_auc_ovr(y_true: IntArray, proba: FloatArray) -> MetricValue:
    """One-vs-rest macro AUC over the classes with both positive and negative labels."""
    k = proba.shape[1]
    scores = []
    for c in range(k):
        value = roc_auc_binary(y_true == c, np.ascontiguousarray(proba[:, c])).value
        if value is not None:
            scores.append(value)
    if not scores:
        return MetricValue.undefined("only one class in the labels")
    return MetricValue(float(np.mean(scores)))


def log_loss_binary(positive: BoolArray, p_positive: FloatArray) -> MetricValue:
    if p_positive.size == 0:
        return MetricValue.undefined("no labelled predictions")
    p = np.clip(p_positive, EPS, 1 - EPS)
    q = np.clip(1.0 - p_positive, EPS, 1 - EPS)
    return MetricValue(float(-np.mean(np.log(np.where(positive, p, q)))))


def log_loss_multiclass(y_true: IntArray, proba: FloatArray) -> MetricValue:
    if y_true.size == 0:
        return MetricValue.undefined("no labelled predictions")
    p = proba[np.arange(y_true.size), y_true]
    return MetricValue(float(-np.mean(np.log(np.clip(p, EPS, 1 - EPS)))))


# --------------------------------------------------------------------------------------------
# Regression


def mae(y_true: FloatArray, y_pred: FloatArray) -> MetricValue:
    if y_true.size == 0:
        return MetricValue.undefined("no labelled predictions")
    return _finite(float(np.mean(np.abs(y_pred - y_true))), "overflow")


def rmse(y_true: FloatArray, y_pred: FloatArray) -> MetricValue:
    if y_true.size == 0:
        return MetricValue.undefined("no labelled predictions")
    return _finite(math.sqrt(float(np.mean((y_true - y_pred) ** 2))), "overflow")


def r2(y_true: FloatArray, y_pred: FloatArray) -> MetricValue:
    if y_true.size < 2:
        return MetricValue.undefined("fewer than two labelled predictions")
    if np.all(y_true == y_true[0]):
        # Tested on the values: the mean of equal floats need not equal them, and the tiny
        # non-zero denominator would give a huge meaningless R².
        return MetricValue.undefined("constant labels")
    numerator = float(np.sum((y_true - y_pred) ** 2))
    denominator = float(np.sum((y_true - np.mean(y_true)) ** 2))
    if denominator == 0.0:
        # Labels that differ only in subnormal digits (0 and 5e-324): the spread squares to 0.
        return MetricValue.undefined("constant labels")
    return _finite(1.0 - numerator / denominator, "overflow")


# --------------------------------------------------------------------------------------------
# All metrics of a task


def classification_metrics(
    y_true: IntArray,
    y_pred: IntArray,
    n_classes: int,
    *,
    positive: int | None,
    proba: FloatArray | None = None,
    proba_rows: BoolArray | None = None,
) -> dict[MetricName, MetricValue]:
    """Accuracy, precision, recall, F1 from classes; AUC and log loss from ``proba`` when given.

    ``proba`` is ``(n, k)`` (multiclass) or ``(n,)`` (binary: the positive class's probability);
    ``proba_rows`` selects the rows whose probabilities are valid (the others are left out of
    AUC and log loss only).
    """
    auc: Future[MetricValue] | None = None
    if proba is not None:
        yt = y_true if proba_rows is None else y_true[proba_rows]
        pr = proba if proba_rows is None else proba[proba_rows]
        if positive is not None:
            is_pos = yt == positive
            if is_pos.size >= CONCURRENT_ROWS:
                # The AUC's sort on another core while the rest is counted (numpy releases the GIL).
                auc = in_background(roc_auc_binary, is_pos, pr)
    out: dict[MetricName, MetricValue] = {"accuracy": accuracy(y_true, y_pred)}
    out.update(precision_recall_f1(y_true, y_pred, n_classes, positive))
    if proba is None:
        none = MetricValue.undefined("no predicted probabilities in the prediction log")
        out["auc"] = none
        out["logLoss"] = none
        return out
    if positive is not None:
        out["auc"] = auc.result() if auc is not None else roc_auc_binary(is_pos, pr)
        out["logLoss"] = log_loss_binary(is_pos, pr)
    else:
        out["auc"] = roc_auc_ovr(yt, pr)
        out["logLoss"] = log_loss_multiclass(yt, pr)
    return out


CONCURRENT_ROWS = 200_000
"""From this many rows the binary AUC runs in a thread of its own (below, a thread costs more than it saves)."""


def in_background(func: Callable[..., T], *args: Any) -> Future[T]:
    """``func(*args)`` in a thread of its own (numpy and Arrow release the GIL on big arrays)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(func, *args)
    finally:
        pool.shutdown(wait=False)


def regression_metrics(y_true: FloatArray, y_pred: FloatArray) -> dict[MetricName, MetricValue]:
    return {"mae": mae(y_true, y_pred), "rmse": rmse(y_true, y_pred), "r2": r2(y_true, y_pred)}


# --------------------------------------------------------------------------------------------
# Confidence-based performance estimation (label-free)


def estimated_accuracy(p_predicted: FloatArray) -> MetricValue:
    """Expected accuracy if the probabilities are calibrated: the mean probability of the predicted class."""
    if p_predicted.size == 0:
        return MetricValue.undefined("no predictions with probabilities")
    return MetricValue(float(np.mean(p_predicted)))


def estimated_auc(p_positive: FloatArray, score: FloatArray | None = None) -> MetricValue:
    """Expected ROC AUC (NannyML's CBPE): each row is positive with weight p and negative with 1 - p.

    The ROC of expected true/false positive rates over every threshold of ``score`` (the same
    probabilities, unless given), integrated with ties counting one half.
    """
    score = p_positive if score is None else score
    if score.size == 0:
        return MetricValue.undefined("no predictions with probabilities")
    w_pos_total = float(np.sum(p_positive))
    w_neg_total = float(score.size - w_pos_total)
    if w_pos_total <= 0.0 or w_neg_total <= 0.0:
        return MetricValue.undefined("every probability is 0 or 1 for one class")
    order, starts = _tie_groups(score)
    pos_in = np.add.reduceat(p_positive[order], starts)
    size = np.diff(np.append(starts, score.size)).astype(np.float64)
    neg_in = size - pos_in
    neg_below = np.cumsum(neg_in) - neg_in
    area = float(np.sum(pos_in * neg_below + 0.5 * pos_in * neg_in))
    return MetricValue(area / (w_pos_total * w_neg_total))


def estimated_auc_ovr(proba: FloatArray) -> MetricValue:
    values = [estimated_auc(np.ascontiguousarray(proba[:, c])).value for c in range(proba.shape[1])]
    defined = [v for v in values if v is not None]
    if not defined:
        return MetricValue.undefined("every probability is 0 or 1 for one class")
    return MetricValue(float(np.mean(defined)))
