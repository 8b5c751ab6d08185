"""Train the two small churn models the examples and the demo use, and print their digests.

Run once; the .joblib files are committed so the digests in examples/registry/*.yaml stay valid.
    python examples/make_artifacts.py
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


def main() -> None:
    out = HERE / "artifacts"
    out.mkdir(exist_ok=True)
    for version, seed, c in (("1", 1, 1.0), ("2", 2, 0.5)):
        path = out / f"churn-v{version}.joblib"
        joblib.dump(train(seed, c), path)
        print(path.name, "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest())


if __name__ == "__main__":
    main()
