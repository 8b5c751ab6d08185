"""`modelops drift check` as the CronJob runs it: a fresh process, and what that process loads.

A check with a reference profile and the default tests needs numpy, pyarrow and the drift modules:
no scipy, no pydantic (nor the API models), no YAML, no pyarrow.compute or pyarrow.dataset. A
config file brings pydantic and YAML; a p-value test brings scipy.special; nothing brings
scipy.stats. The numbers are the in-process engine's (which tests/drift/test_stattests.py holds
to scipy). Timings: benchmarks/drift/README.md (whole process vs in process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from modelops.api.driftmonitor import DriftSettings
from modelops.drift import CategoricalColumn, compute_drift, load_frame
from modelops.drift.engine import DEFAULT_SETTINGS
from modelops.drift.profile import build_profile

ROWS = 3_000


def _table(rng: np.random.Generator, shift: float) -> pa.Table:
    plans = pa.array(rng.choice(["basic", "pro", "team"], ROWS, p=[0.5, 0.3, 0.2] if not shift else [0.2, 0.3, 0.5]))
    age = rng.normal(40 + 10 * shift, 10, ROWS)
    age[::97] = np.nan  # missing values travel as nulls
    return pa.table(
        {
            "age": pa.array(age, from_pandas=True),
            "income": rng.lognormal(10 + shift, 1, ROWS),
            "visits": pa.array(rng.poisson(3, ROWS)),
            "plan": plans.dictionary_encode(),
            "region": pa.array(rng.choice(["eu", "us", "apac"], ROWS)),  # plain strings in the file
        }
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    rng = np.random.default_rng(2026)
    folder = tmp_path_factory.mktemp("check")
    # Several row groups: columns come back in chunks, as a large file's do.
    pq.write_table(_table(rng, 0.0), folder / "reference.parquet", row_group_size=1_000)
    pq.write_table(_table(rng, 0.5), folder / "current.parquet", row_group_size=700)
    build_profile(load_frame(str(folder / "reference.parquet"))).save(folder / "profile.npz")
    (folder / "ks.yaml").write_text(
        yaml.safe_dump(
            {
                "drift": {
                    "features": [{"name": n, "method": "ks"} for n in ("age", "income", "visits")]
                    + [{"name": n, "method": "chi2"} for n in ("plan", "region")]
                }
            }
        )
    )
    return {
        "reference": folder / "reference.parquet",
        "current": folder / "current.parquet",
        "profile": folder / "profile.npz",
        "ks": folder / "ks.yaml",
    }


def check_process(*args: str | Path) -> tuple[int, dict[str, object], set[str]]:
    """Run the check as its own process; its exit code, JSON output and every module it imported."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPROFILEIMPORTTIME", "KUBECONFIG")}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "modelops", "drift", "check", "--output", "json", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    assert done.returncode in (0, 1), done.stderr[-3000:]
    return done.returncode, json.loads(done.stdout), modules


def _numbers(report: dict[str, object]) -> dict[str, tuple[object, ...]]:
    features = report["features"]
    assert isinstance(features, list)
    return {f["name"]: (f["test"], f["statistic"], f["pValue"], f["drifted"], f["nCurrent"]) for f in features}


def test_defaults_without_pydantic_are_drift_settings_defaults() -> None:
    expected = {"method": "auto", "threshold": None, "correction": "none", "drift_share": 0.5, "features": None}
    assert {k: getattr(DriftSettings(), k) for k in expected} == expected
    assert {k: getattr(DEFAULT_SETTINGS, k) for k in expected} == expected


def test_a_profile_check_loads_neither_scipy_nor_pydantic(files: dict[str, Path]) -> None:
    code, report, modules = check_process("--reference", files["profile"], "--current", files["current"])
    assert code == 1  # 3 of 5 features shifted: share 0.6 >= 0.5
    assert report["datasetDrift"] is True
    top = {m.split(".")[0] for m in modules}
    assert {"numpy", "pyarrow", "modelops"} <= top
    assert sorted(top & {"scipy", "pydantic", "pydantic_core", "yaml", "kubernetes", "kopf", "sklearn"}) == []
    assert sorted(modules & {"pyarrow.compute", "pyarrow.dataset"}) == []
    # the numbers are the in-process engine's on the same files
    from modelops.drift.profile import ReferenceProfile

    in_process = compute_drift(ReferenceProfile.load(files["profile"]), load_frame(str(files["current"])))
    assert _numbers(report) == _numbers(json.loads(json.dumps(in_process.to_dict())))


def test_p_value_tests_load_scipy_special_never_scipy_stats(files: dict[str, Path]) -> None:
    code, report, modules = check_process(
        "--reference", files["reference"], "--current", files["current"], "--config", files["ks"]
    )
    tests = {f["name"]: f["test"] for f in report["features"]}  # type: ignore[index, union-attr]
    assert tests == {"age": "ks", "income": "ks", "visits": "ks", "plan": "chi2", "region": "chi2"}
    assert {"scipy.special", "pydantic", "yaml"} <= modules  # the p-value tails; the config's models
    assert "scipy.stats" not in modules
    from scipy import stats

    ref, cur = pq.read_table(files["reference"]), pq.read_table(files["current"])
    for name in ("age", "income", "visits"):
        a = ref.column(name).to_numpy(zero_copy_only=False)
        b = cur.column(name).to_numpy(zero_copy_only=False)
        expected = stats.ks_2samp(a[~np.isnan(a)], b[~np.isnan(b)])
        feature = next(f for f in report["features"] if f["name"] == name)  # type: ignore[union-attr]
        assert abs(feature["statistic"] - expected.statistic) <= 1e-9
        assert abs(feature["pValue"] - expected.pvalue) <= 1e-9
    assert code in (0, 1)


def test_chunked_parquet_columns_read_as_the_values(files: dict[str, Path]) -> None:
    """Row groups, nulls and dictionary or plain strings: the frame holds exactly the file's values."""
    table = pq.read_table(files["current"])
    frame = load_frame(str(files["current"]))
    age = table.column("age").to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(frame["age"], age)  # NaN where null
    assert int(np.isnan(frame["age"]).sum()) == len(range(0, ROWS, 97))
    np.testing.assert_array_equal(frame["visits"], table.column("visits").to_numpy().astype(np.float64))
    for name in ("plan", "region"):
        column = frame[name]
        assert isinstance(column, CategoricalColumn)
        values = [column.categories[c] for c in column.codes]
        assert values == [str(v) for v in table.column(name).to_pylist()]
