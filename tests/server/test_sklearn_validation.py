"""The scikit-learn framework checks finiteness itself, then lets scikit-learn skip its own checks:
the answers must not change, and NaN/inf must still be a client error."""

from __future__ import annotations

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from modelops.server.frameworks import InvalidInput
from modelops.server.frameworks.sklearn import SklearnModel


@pytest.fixture
def model(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 5))
    est = LogisticRegression().fit(x, (x[:, 0] + x[:, 1] > 0).astype(int))
    joblib.dump(est, tmp_path / "m.joblib")
    m = SklearnModel()
    m.load(tmp_path / "m.joblib")
    return m, est


def test_same_answers_as_plain_predict(model):
    m, est = model
    x = np.random.default_rng(1).normal(size=(64, 5))
    out = m.predict({"input-0": x}, ["predict", "predict_proba"], None)
    np.testing.assert_array_equal(out["predict"], est.predict(x))
    np.testing.assert_allclose(out["predict_proba"], est.predict_proba(x))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features_are_invalid_input(model, bad):
    m, _ = model
    x = np.zeros((2, 5))
    x[1, 3] = bad
    with pytest.raises(InvalidInput, match="NaN or infinity"):
        m.predict({"input-0": x}, ["predict"], None)


def test_strings_still_rejected_by_sklearn(model):
    m, _ = model
    x = np.array([["a"] * 5], dtype=object)
    with pytest.raises(InvalidInput, match="model rejected the input"):
        m.predict({"input-0": x}, ["predict"], None)
