"""Train the small churn models the examples and the demo use, and print their digests.

Run once; the .joblib files are committed so the digests in examples/*/*.yaml stay valid (an
existing file is never rewritten).
    python examples/make_artifacts.py

- churn-v1, churn-v2: good models (v2 is the retrained successor).
- churn-v3-shifted: a regression a canary must catch by its predictions: its intercept is pushed
  so that it answers "churn" for nearly every customer. Requests succeed and are fast; only the
  prediction distribution betrays it (`predictionShift`).
- churn-v4-schema: trained on five features, so every four-feature request of today's clients
  gets a 400: the canary's `errorRate` check must catch it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

HERE = Path(__file__).parent
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "contract_length"]


def train(seed: int, c: float) -> LogisticRegression:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2000, len(FEATURES)))
    y = (x @ np.array([-1.2, 0.8, 1.5, -0.6]) + rng.normal(scale=0.5, size=2000) > 0).astype(int)
    model = LogisticRegression(C=c, max_iter=200).fit(x, y)
    model.feature_names_in_ = np.array(FEATURES, dtype=object)
    return model


def shifted() -> LogisticRegression:
    model = train(3, 1.0)
    model.intercept_ = model.intercept_ + 6.0
    return model


def five_features() -> LogisticRegression:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2000, len(FEATURES) + 1))
    y = (x[:, 0] > 0).astype(int)
    model = LogisticRegression(max_iter=200).fit(x, y)
    model.feature_names_in_ = np.array([*FEATURES, "region"], dtype=object)
    return model


def main() -> None:
    out = HERE / "artifacts"
    out.mkdir(exist_ok=True)
    makers = {
        "churn-v1": lambda: train(1, 1.0),
        "churn-v2": lambda: train(2, 0.5),
        "churn-v3-shifted": shifted,
        "churn-v4-schema": five_features,
    }
    for name, make in makers.items():
        path = out / f"{name}.joblib"
        if not path.exists():
            joblib.dump(make(), path)
        print(path.name, "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest())


if __name__ == "__main__":
    main()
