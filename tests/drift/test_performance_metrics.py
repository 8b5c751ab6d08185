"""Performance metrics equal scikit-learn's within 1e-9, and are undefined (None) exactly where
scikit-learn raises or warns (the definitions are in modelops.drift.performance_metrics)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from modelops.drift import performance_metrics as pm

TOL = 1e-9
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TIED_SCORES = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
ANY_SCORES = st.floats(0, 1, allow_nan=False)


def sk_log_loss(y, proba, labels):
    try:
        return skm.log_loss(y, y_proba=proba, labels=labels)
    except TypeError:  # scikit-learn < 1.9 names it y_pred
        return skm.log_loss(y, proba, labels=labels)


def close(ours: float | None, theirs: float) -> bool:
    if ours is None:
        return math.isnan(theirs)
    return math.isclose(ours, theirs, rel_tol=TOL, abs_tol=TOL)


def sk_or_nan(fn, *args, **kwargs) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # r2_score(force_finite=False) on constant labels
        try:
            return float(fn(*args, **kwargs))
        except ValueError:
            return math.nan


def sklearn_says_only_one_class(y, score) -> bool:
    """scikit-learn 1.9 warns and returns NaN; earlier versions raise."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = skm.roc_auc_score(y, score)
        except ValueError as exc:
            return "Only one class" in str(exc)
    return math.isnan(value) and any("Only one class" in str(w.message) for w in caught)


@st.composite
def binary_data(draw, scores=ANY_SCORES):
    n = draw(st.integers(1, 60))
    y = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), dtype=np.int64)
    pred = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), dtype=np.int64)
    score = np.array(draw(st.lists(scores, min_size=n, max_size=n)), dtype=np.float64)
    return y, pred, score


@SETTINGS
@given(data=st.one_of(binary_data(TIED_SCORES), binary_data()), positive=st.integers(0, 1))
def test_binary_metrics_equal_sklearn(data, positive):
    """The positive class may be either (scikit-learn's pos_label); the score is its probability."""
    y, pred, score = data
    got = pm.classification_metrics(y, pred, 2, positive=positive, proba=score)
    assert close(got["accuracy"].value, skm.accuracy_score(y, pred))
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        theirs = sk_or_nan(fn, y, pred, pos_label=positive, zero_division=np.nan)
        assert close(got[name].value, theirs), (name, got[name], theirs)
        assert (got[name].value is None) == (got[name].note is not None)
    is_pos = (y == positive).astype(np.int64)
    auc = sk_or_nan(skm.roc_auc_score, is_pos, score)
    assert close(got["auc"].value, auc), (got["auc"], auc)
    if got["auc"].value is None:
        assert got["auc"].note == "only one class in the labels"
        assert sklearn_says_only_one_class(is_pos, score)
    assert close(got["logLoss"].value, sk_log_loss(is_pos, score, labels=[0, 1]))


@st.composite
def multiclass_data(draw):
    k = draw(st.integers(3, 5))
    n = draw(st.integers(1, 60))
    y = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)), dtype=np.int64)
    pred = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)), dtype=np.int64)
    # Small integer weights give tied probabilities; every row sums to one.
    weights = np.array(draw(st.lists(st.lists(st.integers(1, 4), min_size=k, max_size=k), min_size=n, max_size=n)))
    proba = weights / weights.sum(axis=1, keepdims=True)
    return k, y, pred, proba.astype(np.float64)


@SETTINGS
@given(data=multiclass_data())
def test_multiclass_metrics_equal_sklearn_macro_and_ovr(data):
    k, y, pred, proba = data
    got = pm.classification_metrics(y, pred, k, positive=None, proba=proba)
    assert close(got["accuracy"].value, skm.accuracy_score(y, pred))
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        theirs = sk_or_nan(fn, y, pred, average="macro", zero_division=np.nan)
        assert close(got[name].value, theirs), (name, got[name], theirs)
    assert close(got["logLoss"].value, sk_log_loss(y, proba, labels=list(range(k))))
    if len(np.unique(y)) == k:
        assert close(got["auc"].value, skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    else:
        # scikit-learn raises when a class is missing from the labels; ours averages the classes
        # it can score, each equal to scikit-learn's binary AUC.
        per_class = [skm.roc_auc_score(y == c, proba[:, c]) for c in range(k) if 0 < np.count_nonzero(y == c) < y.size]
        if per_class:
            assert close(got["auc"].value, float(np.mean(per_class)))
        else:
            assert got["auc"].value is None


@SETTINGS
@given(
    pairs=st.lists(
        st.tuples(st.floats(-1e3, 1e3, allow_nan=False), st.floats(-1e3, 1e3, allow_nan=False)),
        min_size=1,
        max_size=60,
    ),
    constant=st.booleans(),
)
def test_regression_metrics_equal_sklearn(pairs, constant):
    y = np.array([a for a, _ in pairs])
    p = np.array([b for _, b in pairs])
    if constant:
        y = np.full_like(y, y[0])
    got = pm.regression_metrics(y, p)
    assert close(got["mae"].value, skm.mean_absolute_error(y, p))
    assert close(got["rmse"].value, skm.root_mean_squared_error(y, p))
    r2 = sk_or_nan(skm.r2_score, y, p, force_finite=False)
    if y.size >= 2 and (np.all(y == y[0]) or np.sum((y - np.mean(y)) ** 2) == 0.0):
        assert got["r2"].value is None
        assert got["r2"].note == "constant labels"
    elif y.size < 2:
        assert got["r2"].value is None
        assert math.isnan(r2)
    else:
        assert close(got["r2"].value, r2)


def test_r2_of_labels_whose_spread_underflows_is_undefined_not_a_crash():
    """0 and the smallest subnormal differ, but their squared spread is 0.0: scikit-learn divides
    by it (nan/-inf); the check reports R² undefined, as for constant labels."""
    got = pm.regression_metrics(np.array([0.0, 5e-324]), np.array([1.0, 2.0]))
    assert got["r2"].value is None
    assert got["r2"].note == "constant labels"
    assert got["mae"].value == 1.5


def test_all_correct_predictions_score_perfectly():
    y = np.array([0, 1, 1, 0, 1], dtype=np.int64)
    got = pm.classification_metrics(y, y.copy(), 2, positive=1, proba=y.astype(np.float64))
    assert {k: v.value for k, v in got.items()} == {
        "accuracy": 1.0,
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "auc": 1.0,
        "logLoss": pytest.approx(sk_log_loss(y, y.astype(float), [0, 1]), abs=TOL),
    }
    multi = np.array([0, 2, 1, 2], dtype=np.int64)
    got = pm.classification_metrics(multi, multi.copy(), 3, positive=None, proba=np.eye(3)[multi])
    assert [got[n].value for n in ("accuracy", "precision", "recall", "f1", "auc")] == [1.0] * 5
    reg = pm.regression_metrics(np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0, 4.0]))
    assert [reg[n].value for n in ("mae", "rmse", "r2")] == [0.0, 0.0, 1.0]


def test_one_class_only_leaves_auc_and_undefined_ratios_unset():
    y = np.ones(4, dtype=np.int64)
    got = pm.classification_metrics(y, np.array([1, 1, 0, 1]), 2, positive=1, proba=np.array([0.9, 0.8, 0.3, 0.7]))
    assert got["auc"].value is None
    assert got["recall"].value == 0.75  # defined: there are positive labels
    negatives = np.zeros(3, dtype=np.int64)
    got = pm.classification_metrics(negatives, negatives.copy(), 2, positive=1, proba=np.array([0.1, 0.2, 0.3]))
    assert (got["precision"].value, got["precision"].note) == (None, "no predicted positives")
    assert (got["recall"].value, got["recall"].note) == (None, "no positive labels")
    assert got["f1"].value is None
    assert got["accuracy"].value == 1.0


def test_large_sample_auc_is_exact():
    """int64 pair counts: no rounding drift at 200,000 rows with heavy ties."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200_000)
    score = np.round(rng.random(200_000) * 0.6 + y * 0.3, 2)
    got = pm.roc_auc_binary(y == 1, score).value
    assert got is not None
    assert abs(got - skm.roc_auc_score(y, score)) <= TOL


def test_estimated_auc_is_the_expected_pair_ordering():
    """CBPE's AUC: pairs (i positive with weight p_i, j negative with weight 1 - p_j), ties one half."""
    rng = np.random.default_rng(5)
    p = np.round(rng.random(40), 1)
    num = sum(
        p[i] * (1 - p[j]) * (1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
        for i in range(p.size)
        for j in range(p.size)
    )
    expected = num / (p.sum() * (p.size - p.sum()))
    assert pm.estimated_auc(p).value == pytest.approx(expected, abs=TOL)
    assert pm.estimated_accuracy(np.array([0.9, 0.6])).value == pytest.approx(0.75)
    assert pm.estimated_auc(np.ones(3)).value is None


def test_estimates_track_realised_values_on_calibrated_probabilities():
    rng = np.random.default_rng(11)
    p = rng.beta(2, 2, 50_000)
    y = (rng.random(p.size) < p).astype(np.int64)  # labels drawn from the probabilities: calibrated
    pred = (p > 0.5).astype(np.int64)
    realised = pm.classification_metrics(y, pred, 2, positive=1, proba=p)
    p_pred = np.where(pred == 1, p, 1 - p)
    assert pm.estimated_accuracy(p_pred).value == pytest.approx(realised["accuracy"].value, abs=0.01)
    assert pm.estimated_auc(p).value == pytest.approx(realised["auc"].value, abs=0.01)
