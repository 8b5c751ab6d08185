"""`modelops drift` end to end on files: verdicts, exit codes, outputs, profiles."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import yaml

from modelops.cli import main

N = 3000
SHIFTED = {"income", "plan", "tenure"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    rng = np.random.default_rng(11)
    d = tmp_path_factory.mktemp("drift")

    def table(shift: bool) -> pa.Table:
        return pa.table(
            {
                "age": rng.normal(40, 10, N),
                "income": rng.lognormal(10 + (0.5 if shift else 0.0), 1, N),
                "tenure": rng.exponential(4 if shift else 3, N),
                "plan": rng.choice(["basic", "pro", "team"], N, p=[0.2, 0.3, 0.5] if shift else [0.5, 0.3, 0.2]),
                "region": rng.choice(["eu", "us", "apac"], N),
            }
        )

    pq.write_table(table(False), d / "ref.parquet")
    pacsv.write_csv(table(False), d / "same.csv")
    pacsv.write_csv(table(True), d / "shifted.csv")
    pacsv.write_csv(table(True).drop(["plan"]), d / "missing.csv")
    return d


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["drift", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_shifted_data_flags_the_right_features(files, capsys):
    code, out, _ = _run(
        capsys, "check", "--reference", files / "ref.parquet", "--current", files / "shifted.csv", "--output", "json"
    )
    assert code == 1
    body = json.loads(out)
    assert body["datasetDrift"] is True
    assert {f["name"] for f in body["features"] if f["drifted"]} == SHIFTED
    assert [f["drifted"] for f in body["features"]] == sorted((f["drifted"] for f in body["features"]), reverse=True)
    first = body["features"][0]
    assert {"test", "statistic", "pValue", "threshold", "drifted", "nReference", "nCurrent"} <= first.keys()


def test_no_drift_exits_zero_with_table(files, capsys):
    code, out, _ = _run(capsys, "check", "--reference", files / "ref.parquet", "--current", files / "same.csv")
    assert code == 0
    assert out.startswith("no dataset drift: 0/5")


def test_missing_column_is_exit_2_with_clear_message(files, capsys):
    code, out, err = _run(capsys, "check", "--reference", files / "ref.parquet", "--current", files / "missing.csv")
    assert code == 2
    assert out == ""
    assert "MissingColumns" in err
    assert "plan" in err


def test_usage_errors_exit_2(files, capsys):
    assert _run(capsys, "check", "--reference", files / "ref.parquet")[0] == 2
    with pytest.raises(SystemExit) as exc:
        main(["drift", "check", "--output", "xml"])
    assert exc.value.code == 2
    capsys.readouterr()


def test_config_file_settings(files, capsys, tmp_path):
    config = tmp_path / "monitor.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "modelops.dev/v1alpha1",
                "kind": "DriftMonitor",
                "spec": {
                    "target": {"deployment": "churn"},
                    "schedule": "@hourly",
                    "columnMapping": {"numerical": ["income", "age"], "categorical": ["plan"]},
                    "drift": {
                        "method": "ks",
                        "correction": "bonferroni",
                        "driftShare": 0.9,
                        "features": [{"name": "plan", "method": "chi2"}],
                    },
                },
            }
        )
    )
    code, out, _ = _run(
        capsys,
        "check",
        "--reference",
        files / "ref.parquet",
        "--current",
        files / "shifted.csv",
        "--config",
        config,
        "--output",
        "json",
    )
    body = json.loads(out)
    assert code == 0  # 2 of 3 drifted is below driftShare 0.9
    assert {f["name"] for f in body["features"][:2]} == {"income", "plan"}  # the drifted two first
    assert {f["name"]: f["test"] for f in body["features"]} == {"income": "ks", "age": "ks", "plan": "chi2"}
    assert body["correction"] == "bonferroni"


def test_bad_config_is_exit_2(files, capsys, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("drift:\n  driftShare: 3\n")
    code, _, err = _run(
        capsys, "check", "--reference", files / "ref.parquet", "--current", files / "same.csv", "--config", config
    )
    assert code == 2
    assert "InvalidConfig" in err
    assert "driftShare" in err


def test_profile_round_trip_same_verdicts(files, capsys, tmp_path):
    profile = tmp_path / "ref.profile"
    code, out, _ = _run(capsys, "profile", files / "ref.parquet", "-o", profile)
    assert code == 0
    assert profile.exists()
    results = []
    for ref in (files / "ref.parquet", profile):
        code, out, _ = _run(capsys, "check", "--reference", ref, "--current", files / "shifted.csv", "--output", "json")
        body = json.loads(out)
        results.append((code, [(f["name"], f["test"], f["statistic"], f["drifted"]) for f in body["features"]]))
    assert results[0] == results[1]


def test_html_report(files, capsys, tmp_path):
    out_file = tmp_path / "report.html"
    code, out, _ = _run(
        capsys, "report", "--reference", files / "ref.parquet", "--current", files / "shifted.csv", "-o", out_file
    )
    assert code == 0
    html = out_file.read_text()
    assert html.startswith("<!doctype html>")
    assert "<script" not in html
    assert "http" not in html.split("</style>", 1)[1]
    assert html.count("<svg") >= 10  # a gauge and a distribution per feature
    drifted_pos = [html.index(f'<span class="name">{n}</span>') for n in SHIFTED]
    clean_pos = [html.index(f'<span class="name">{n}</span>') for n in ("age", "region")]
    assert max(drifted_pos) < min(clean_pos)  # drifted features first
    code, out, _ = _run(
        capsys, "check", "--reference", files / "ref.parquet", "--current", files / "shifted.csv", "--output", "html"
    )
    assert code == 1
    assert out.startswith("<!doctype html>")


def test_prediction_log_as_current(files, capsys, tmp_path):
    now = datetime.now(UTC)
    rng = np.random.default_rng(5)
    rows = [
        {
            "timestamp": (now - timedelta(minutes=int(rng.integers(1, 600)))).isoformat(),
            "model": "churn",
            "version": "1",
            "track": "stable",
            "inputs": {
                "age": float(rng.normal(40, 10)),
                "income": float(rng.lognormal(10, 1)),
                "tenure": float(rng.exponential(3)),
                "plan": str(rng.choice(["basic", "pro", "team"], p=[0.5, 0.3, 0.2])),
                "region": str(rng.choice(["eu", "us", "apac"])),
            },
            "outputs": {"churn": 0},
        }
        for _ in range(800)
    ]
    log = tmp_path / "predictions.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    code, out, err = _run(
        capsys,
        "check",
        "--reference",
        files / "ref.parquet",
        "--current",
        log,
        "--prediction-log",
        "--window",
        "12h",
        "--model",
        "churn",
        "--output",
        "json",
    )
    assert code == 0, err
    assert json.loads(out)["rowsCurrent"] == 800
    code, _, err = _run(
        capsys, "check", "--reference", files / "ref.parquet", "--current", log, "--prediction-log", "--model", "nope"
    )
    assert code == 2
    assert "EmptyData" in err
