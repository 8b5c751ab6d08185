"""The check: default tests, overrides, corrections, verdicts, NaNs, profiles, bad data."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest
from scipy import stats

from modelops.api.driftmonitor import CheckResult, ColumnMapping, DriftSettings, FeatureTest
from modelops.drift import (
    CategoricalColumn,
    DriftDataError,
    ReferenceProfile,
    build_profile,
    compute_drift,
    default_method,
    frame_from_arrays,
    run_check,
)
from modelops.drift.engine import FeatureDrift, apply_correction
from modelops.drift.profile import DEFAULT_KS_SAMPLE

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _frames(n: int, seed: int = 0, shift: float = 0.0, n_cur: int | None = None):
    rng = np.random.default_rng(seed)
    m = n_cur or n
    ref = {
        "x": rng.normal(size=n),
        "y": rng.normal(size=n),
        "color": rng.choice(["red", "green", "blue"], n),
        "small": rng.integers(0, 3, n),
    }
    cur = {
        "x": rng.normal(size=m) + shift,
        "y": rng.normal(size=m),
        "color": rng.choice(["red", "green", "blue"], m, p=[0.6, 0.2, 0.2] if shift else None),
        "small": rng.integers(0, 3, m),
    }
    return frame_from_arrays(ref), frame_from_arrays(cur)


@pytest.mark.parametrize(
    ("kind", "n_reference", "n_distinct", "expected"),
    [
        ("numerical", 1000, 6, "ks"),
        ("numerical", 1001, 6, "wasserstein"),
        ("numerical", 1000, 5, "chi2"),
        ("numerical", 1001, 5, "jensenshannon"),
        ("numerical", 10, 2, "chi2"),
        ("categorical", 1000, 50, "chi2"),
        ("categorical", 1001, 2, "jensenshannon"),
        ("categorical", 5, 1, "chi2"),
    ],
)
def test_default_rule(kind, n_reference, n_distinct, expected):
    assert default_method(kind, n_reference, n_distinct) == expected


@pytest.mark.parametrize(
    ("n", "numeric_test", "cat_test"), [(800, "ks", "chi2"), (5000, "wasserstein", "jensenshannon")]
)
def test_defaults_applied_by_sample_size(n, numeric_test, cat_test):
    ref, cur = _frames(n)
    tests = {f.name: f.test for f in compute_drift(ref, cur, now=NOW).features}
    assert tests["x"] == numeric_test
    assert tests["color"] == cat_test
    assert tests["small"] == cat_test  # three distinct values: compared as categories


def test_shift_is_flagged_and_others_are_not():
    ref, cur = _frames(5000, shift=0.8)
    report = compute_drift(ref, cur, now=NOW)
    drifted = {f.name for f in report.features if f.drifted}
    assert drifted == {"x", "color"}
    assert report.dataset_drift  # 2 of 4 reaches the default share 0.5
    assert report.sorted_features()[0].drifted


def test_ks_in_engine_equals_scipy():
    ref, cur = _frames(700, shift=0.2)
    feature = next(f for f in compute_drift(ref, cur, now=NOW).features if f.name == "x")
    expected = stats.ks_2samp(ref["x"], cur["x"])
    assert feature.test == "ks"
    assert feature.statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert feature.p_value == pytest.approx(expected.pvalue, abs=1e-9)


def test_per_feature_method_and_threshold_override_global():
    ref, cur = _frames(3000, shift=0.3)
    settings = DriftSettings(
        method="psi",
        threshold=0.5,
        features=[FeatureTest(name="x", method="ks", threshold=0.01), FeatureTest(name="y", threshold=0.2)],
    )
    by_name = {f.name: f for f in compute_drift(ref, cur, settings, now=NOW).features}
    assert (by_name["x"].test, by_name["x"].threshold) == ("ks", 0.01)
    assert (by_name["y"].test, by_name["y"].threshold) == ("psi", 0.2)
    assert (by_name["color"].test, by_name["color"].threshold) == ("psi", 0.5)


def test_inapplicable_test_is_a_config_error():
    ref, cur = _frames(100)
    settings = DriftSettings(features=[FeatureTest(name="color", method="ks")])
    with pytest.raises(DriftDataError) as err:
        compute_drift(ref, cur, settings, now=NOW)
    assert err.value.reason == "InvalidConfig"


def _pfeature(name: str, p: float, threshold: float = 0.05) -> FeatureDrift:
    return FeatureDrift(name, "numerical", "ks", 0.1, p, threshold, p < threshold, 10, 10, p_value_raw=p)


@pytest.mark.parametrize(
    ("correction", "pvalues", "expected_drifted"),
    [
        ("none", [0.01, 0.02, 0.04, 0.3], [True, True, True, False]),
        ("bonferroni", [0.01, 0.02, 0.04, 0.3], [True, False, False, False]),  # alpha / 4 = 0.0125
        ("benjamini-hochberg", [0.01, 0.02, 0.04, 0.3], [True, True, False, False]),  # k/4 * 0.05
        ("benjamini-hochberg", [0.001, 0.0125, 0.0375, 0.04], [True, True, True, True]),
    ],
)
def test_corrections(correction, pvalues, expected_drifted):
    features = [_pfeature(f"f{i}", p) for i, p in enumerate(pvalues)]
    corrected = apply_correction(features, correction)
    assert [f.drifted for f in corrected] == expected_drifted
    assert [f.p_value_raw for f in corrected] == pvalues
    assert all(f.p_value >= f.p_value_raw for f in corrected)


def test_corrections_leave_distances_alone():
    dist = FeatureDrift("d", "numerical", "wasserstein", 0.2, None, 0.1, True, 10, 10)
    assert apply_correction([dist, _pfeature("p", 0.01)], "bonferroni")[0] == dist


@pytest.mark.parametrize(
    ("drifted", "share", "expected"),
    [(2, 0.5, True), (1, 0.5, False), (1, 0.25, True), (0, 0.01, False), (4, 1.0, True), (3, 1.0, False)],
)
def test_dataset_verdict(drifted, share, expected):
    rng = np.random.default_rng(1)
    n = 2000
    ref = {f"f{i}": rng.normal(size=n) for i in range(4)}
    cur = {f"f{i}": rng.normal(size=n) + (2.0 if i < drifted else 0.0) for i in range(4)}
    report = compute_drift(frame_from_arrays(ref), frame_from_arrays(cur), DriftSettings(drift_share=share), now=NOW)
    assert report.drifted_features == drifted
    assert report.dataset_drift is expected


def test_nans_are_counted_not_dropped_silently():
    ref, cur = _frames(2000)
    cur = dict(cur)
    x = cur["x"].copy()
    x[:37] = np.nan
    cur["x"] = x
    color = cur["color"]
    assert isinstance(color, CategoricalColumn)
    codes = color.codes.copy()
    codes[:5] = -1
    cur["color"] = CategoricalColumn(codes, color.categories)
    by_name = {f.name: f for f in compute_drift(ref, cur, now=NOW).features}
    assert (by_name["x"].nan_current, by_name["x"].n_current) == (37, 1963)
    assert (by_name["color"].nan_current, by_name["color"].n_current) == (5, 1995)


def test_all_nan_feature_is_bad_data():
    ref, cur = _frames(200)
    cur = {**cur, "x": np.full(200, np.nan)}
    with pytest.raises(DriftDataError, match="no non-missing values") as err:
        compute_drift(ref, cur, now=NOW)
    assert err.value.reason == "EmptyData"


def test_unseen_categories_are_reported():
    ref, cur = _frames(500)
    cur = {**cur, "color": frame_from_arrays({"c": ["red"] * 400 + ["purple"] * 100})["c"]}
    feature = next(f for f in compute_drift(ref, cur, now=NOW).features if f.name == "color")
    assert feature.unseen_categories == ("purple",)
    assert feature.drifted
    assert feature.to_dict()["unseenCategories"] == ["purple"]


def test_missing_columns_and_empty_data():
    ref, cur = _frames(100)
    with pytest.raises(DriftDataError, match="current data lacks column") as err:
        compute_drift(ref, {k: v for k, v in cur.items() if k != "y"}, now=NOW)
    assert err.value.reason == "MissingColumns"
    with pytest.raises(DriftDataError) as err:
        compute_drift(ref, cur, now=NOW, min_rows=101)
    assert err.value.reason == "EmptyData"
    with pytest.raises(DriftDataError) as err:
        compute_drift(ref, cur, mapping=ColumnMapping(numerical=["x", "zz"]), now=NOW)
    assert err.value.reason == "MissingColumns"


def test_mapping_selects_types_and_renames():
    ref, cur = _frames(1500, shift=1.0)
    cur = {("X" if k == "x" else k): v for k, v in cur.items()}
    mapping = ColumnMapping(numerical=["x"], categorical=["small"], rename={"X": "x"})
    report = compute_drift(ref, cur, mapping=mapping, now=NOW)
    assert [(f.name, f.kind) for f in report.features] == [("x", "numerical"), ("small", "categorical")]
    assert report.features[0].drifted


def test_mistyped_current_column():
    ref, cur = _frames(100)
    cur = {**cur, "x": frame_from_arrays({"c": ["a"] * 100})["c"]}
    with pytest.raises(DriftDataError) as err:
        compute_drift(ref, cur, now=NOW)
    assert err.value.reason == "MistypedData"


@pytest.mark.parametrize("n", [300, 4000])
def test_profile_round_trip_gives_same_verdicts(tmp_path, n):
    ref, cur = _frames(n, shift=0.3)
    settings = DriftSettings(features=[FeatureTest(name="y", method="psi"), FeatureTest(name="small", method="chi2")])
    raw = compute_drift(ref, cur, settings, now=NOW)
    drifted = {f.name for f in raw.features if f.drifted}
    assert {"x", "color"} <= drifted  # the shifted columns: the comparison below is not of two blanks
    assert "y" not in drifted
    path = tmp_path / "ref.profile"
    build_profile(ref).save(path)
    loaded = ReferenceProfile.load(path)
    again = compute_drift(loaded, cur, settings, now=NOW)
    assert again.to_check_result() == raw.to_check_result()


def test_bounded_profile_keeps_ks_close():
    rng = np.random.default_rng(3)
    n = 3 * DEFAULT_KS_SAMPLE
    ref = {"x": rng.normal(size=n)}
    cur = {"x": rng.normal(size=40_000) + 0.01}
    profile = build_profile(ref)
    assert profile.columns["x"].values.size <= DEFAULT_KS_SAMPLE
    feature = compute_drift(profile, cur, DriftSettings(method="ks"), now=NOW).features[0]
    expected = stats.ks_2samp(ref["x"], cur["x"]).statistic
    assert abs(feature.statistic - expected) <= 2.0 / DEFAULT_KS_SAMPLE
    w = compute_drift(profile, cur, DriftSettings(method="wasserstein"), now=NOW).features[0].statistic
    assert w == pytest.approx(stats.wasserstein_distance(ref["x"], cur["x"]) / np.std(ref["x"]), rel=0.05)


def test_run_check_maps_onto_status_model():
    ref, cur = _frames(2000, shift=1.0)
    result = run_check(ref, cur, DriftSettings(), None, NOW)
    assert isinstance(result, CheckResult)
    assert result.time == NOW
    assert result.total_features == 4
    assert result.drifted_features == sum(f.drifted for f in result.features)
    assert result.drift_share == result.drifted_features / 4
    assert {f.name for f in result.features if f.drifted} == {"x", "color"}  # the two shifted columns
    assert result.drifted_features == 2
    assert result.dataset_drift is True
    wire = result.to_wire()
    assert {"datasetDrift", "driftShare", "features"} <= wire.keys()
    assert all(math.isfinite(f["threshold"]) for f in wire["features"])
    assert CheckResult.model_validate(wire) == result


def test_constant_reference_column():
    ref = frame_from_arrays({"c": np.full(3000, 5.0)})
    same = compute_drift(ref, frame_from_arrays({"c": np.full(100, 5.0)}), now=NOW).features[0]
    moved = compute_drift(ref, frame_from_arrays({"c": np.full(100, 6.0)}), now=NOW).features[0]
    assert not same.drifted
    assert moved.drifted


def test_raw_reference_ks_is_exact_beyond_the_profile_bound():
    rng = np.random.default_rng(4)
    ref = {"x": rng.normal(size=DEFAULT_KS_SAMPLE + 5_000)}
    cur = {"x": rng.normal(size=12_000) + 0.03}
    feature = compute_drift(ref, cur, DriftSettings(method="ks"), now=NOW).features[0]
    expected = stats.ks_2samp(ref["x"], cur["x"])
    assert abs(feature.statistic - expected.statistic) <= 1e-9
    assert abs(feature.p_value - expected.pvalue) <= 1e-9
