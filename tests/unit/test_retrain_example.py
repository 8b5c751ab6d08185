"""The packaged retraining script (`python -m modelops.examples.retrain`) without a cluster: what it
writes, what it refuses."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import joblib
import numpy as np
import pytest

from modelops.examples.retrain import main

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "examples" / "retrain" / "reference.csv"
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "contract_length"]


def shifted(path: Path, rows: int = 400, label: bool = False) -> Path:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(rows, 4)) + np.array([-1.0, 0.0, 1.0, 0.0])
    header = [*FEATURES, *(["churned"] if label else [])]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row in x:
            w.writerow([*map(float, row), *([int(row[2] - row[0] > 0)] if label else [])])
    return path


def run(tmp_path: Path, *extra: str) -> int:
    return main(
        [
            "--reference",
            str(REFERENCE),
            "--current",
            str(shifted(tmp_path / "current.csv")),
            "--model-name",
            "churn",
            "--version",
            "3",
            "--out-dir",
            str(tmp_path / "models"),
            "--no-register",
            "--no-compare-parent",
            *extra,
        ]
    )


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")  # positional rows, as served
def test_writes_a_servable_model_and_the_exact_dataset(tmp_path, capsys):
    assert run(tmp_path, "--labels", "simulated") == 0
    out = tmp_path / "models" / "churn-v3"
    model = joblib.load(out / "model.joblib")
    assert list(model.feature_names_in_) == FEATURES  # the parent's order: clients send positional rows
    assert model.predict_proba(np.zeros((1, 4))).shape == (1, 2)
    with (out / "dataset.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2000 + 400
    assert {r["split"] for r in rows if r["source"] == "current"} == {"train", "holdout"}
    assert sum(r["split"] == "holdout" for r in rows) == 100
    printed = capsys.readouterr().out
    digest = "sha256:" + hashlib.sha256((out / "dataset.csv").read_bytes()).hexdigest()
    assert f"--dataset-digest {digest}" in printed
    assert "labels: SIMULATED" in printed
    assert "--metrics auc=" in printed


def test_never_overwrites_a_versions_files(tmp_path, capsys):
    assert run(tmp_path, "--labels", "simulated") == 0
    before = (tmp_path / "models" / "churn-v3" / "model.joblib").read_bytes()
    assert run(tmp_path, "--labels", "simulated", "--seed", "1") == 1
    assert "never overwritten" in capsys.readouterr().err
    assert (tmp_path / "models" / "churn-v3" / "model.joblib").read_bytes() == before


def test_without_outcomes_it_says_how_to_get_labels(tmp_path, capsys):
    assert run(tmp_path) == 1
    err = capsys.readouterr().err
    assert "no label column 'churned'" in err
    assert "--labels simulated" in err
    assert not (tmp_path / "models" / "churn-v3" / "model.joblib").exists()


def test_registering_needs_a_version(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MODELOPS_NEXT_VERSION", raising=False)
    code = main(["--reference", str(REFERENCE), "--current", str(REFERENCE), "--model-name", "churn"])
    assert code == 1
    assert "MODELOPS_NEXT_VERSION" in capsys.readouterr().err
