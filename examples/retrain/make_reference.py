"""Write reference.csv: the churn model's inputs as the demo's clients send them, before any shift.

The demo's load generator (modelops.demo.traffic) sends the four features standardised, N(0, 1),
which is also what examples/make_artifacts.py trains churn-v1 and churn-v2 on; this is 2,000 such
rows, the DriftMonitor's reference in churn-drift-retrain.yaml. Deterministic; the CSV is committed.
    python examples/retrain/make_reference.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "contract_length"]


def main() -> None:
    rng = np.random.default_rng(11)
    x = np.round(rng.normal(size=(2000, len(FEATURES))), 4)
    lines = [",".join(FEATURES), *(",".join(str(v) for v in row) for row in x)]
    (Path(__file__).parent / "reference.csv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
