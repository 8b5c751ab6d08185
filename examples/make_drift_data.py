"""Write the drift example data: a reference window and a current window where three of the five
features have shifted (tenure_months, support_calls, plan). Deterministic; the CSVs are committed.
    python examples/make_drift_data.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).parent / "drift"


def window(rows: int, seed: int, shifted: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "tenure_months": np.round(rng.gamma(3.0, 8.0 if not shifted else 5.0, rows), 1),
        "monthly_charges": np.round(rng.normal(70, 18, rows), 2),
        "support_calls": rng.poisson(1.5 if not shifted else 3.0, rows).astype(float),
        "contract_length": rng.choice([1.0, 12.0, 24.0], rows, p=[0.5, 0.3, 0.2]),
        "plan": rng.choice(["basic", "plus", "pro"], rows, p=[0.5, 0.3, 0.2] if not shifted else [0.25, 0.3, 0.45]),
    }


def write(path: Path, cols: dict[str, np.ndarray]) -> None:
    names = list(cols)
    rows = zip(*(cols[n] for n in names), strict=True)
    path.write_text(",".join(names) + "\n" + "\n".join(",".join(str(v) for v in row) for row in rows) + "\n")


def main() -> None:
    HERE.mkdir(exist_ok=True)
    write(HERE / "reference.csv", window(2000, 1, shifted=False))
    write(HERE / "current-stable.csv", window(1000, 2, shifted=False))
    write(HERE / "current-shifted.csv", window(1000, 3, shifted=True))


if __name__ == "__main__":
    main()
