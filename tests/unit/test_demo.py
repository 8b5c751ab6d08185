"""`modelops demo` without running it: what it ships, what it applies, how it prints and fails.

The demo itself is the full-loop integration test (tests/integration/demo/test_demo.py); these are
the fast checks of its parts.
"""

from __future__ import annotations

import fnmatch
import hashlib
import random
import re
import tomllib
from pathlib import Path

import pytest

from modelops.api.driftmonitor import DriftMonitorSpec
from modelops.api.modeldeployment import ModelDeploymentSpec
from modelops.api.modelpolicy import ModelPolicySpec
from modelops.api.modelversion import ModelVersionSpec
from modelops.demo import assets, view
from modelops.demo.stage import DemoFailure
from modelops.demo.story import Story, failure_line
from modelops.demo.traffic import FEATURE_NAMES, SHIFT, customer_rows, request_body

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "modelops"
FILES = sorted(p.relative_to(assets.ASSETS).as_posix() for p in assets.ASSETS.rglob("*") if p.is_file())
MANIFESTS = [f for f in FILES if f.endswith(".yaml")]
VALUES = {
    "MODELOPS_EXAMPLES": str(assets.ASSETS),
    "MODELOPS_PREDICTION_LOG": "file:///tmp/prediction-log",
    "MODELOPS_MODELS_DIR": "/tmp/models",
    "MODELOPS_IMAGE": "ghcr.io/modelops/modelops:test",
}
SPECS = {
    "ModelVersion": ModelVersionSpec,
    "ModelPolicy": ModelPolicySpec,
    "ModelDeployment": ModelDeploymentSpec,
    "DriftMonitor": DriftMonitorSpec,
}


# -- what ships --------------------------------------------------------------------------------


def test_the_package_ships_assets_for_every_step():
    assert set(FILES) >= {
        "artifacts/churn-v1.joblib",
        "artifacts/churn-v2.joblib",
        "artifacts/churn-v3-shifted.joblib",
        "registry/churn-v1.yaml",
        "registry/churn-v2.yaml",
        "canary/churn-policy.yaml",
        "canary/churn-deployment.yaml",
        "canary/churn-v3.yaml",
        "drift/churn-drift.yaml",
        "retrain/reference.csv",
    }


@pytest.mark.parametrize("relative", FILES)
def test_each_asset_is_the_example_of_the_checkout_byte_for_byte(relative):
    example = ROOT / "examples" / relative
    assert example.is_file(), f"examples/{relative} is missing: the demo ships a copy of each example it applies"
    assert (assets.ASSETS / relative).read_bytes() == example.read_bytes(), (
        f"operator/modelops/demo/assets/{relative} differs from examples/{relative}: "
        f"cp examples/{relative} operator/modelops/demo/assets/{relative}"
    )


def test_the_wheel_takes_every_asset_along():
    """Each asset matches a package-data pattern of pyproject.toml (setuptools' globs, where * spans '/')."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["modelops"]
    for relative in FILES:
        inside = (assets.ASSETS / relative).relative_to(PACKAGE).as_posix()
        assert any(fnmatch.fnmatch(inside, p) for p in patterns), f"{inside} is not package data"


def test_every_asset_is_used():
    """By the demo's code or by a manifest the demo applies: nothing ships for nothing."""
    code = "".join(p.read_text() for p in (PACKAGE / "demo").glob("*.py"))
    named = set(re.findall(r"\"((?:artifacts|registry|canary|drift|retrain)/[\w.-]+)\"", code))
    for manifest in MANIFESTS:
        named |= set(re.findall(r"\$\{MODELOPS_EXAMPLES\}/([\w./-]+)", (assets.ASSETS / manifest).read_text()))
    assert set(FILES) == named


# -- what it applies ---------------------------------------------------------------------------


@pytest.mark.parametrize("relative", MANIFESTS)
def test_each_manifest_fills_and_validates(relative):
    docs = assets.load_all(relative, VALUES)
    assert docs
    for doc in docs:
        if doc["kind"] in SPECS:
            SPECS[doc["kind"]].model_validate(doc["spec"])


def test_a_variable_without_a_value_is_an_error_not_an_empty_string():
    with pytest.raises(ValueError, match="MODELOPS_PREDICTION_LOG"):
        assets.load_all("canary/churn-deployment.yaml", {"MODELOPS_EXAMPLES": "/x"})


@pytest.mark.parametrize("relative", [m for m in MANIFESTS if "churn-v" in m])
def test_each_model_version_digest_is_its_shipped_artifact(relative):
    spec = assets.load(relative, VALUES)["spec"]
    path = Path(spec["artifact"]["uri"].removeprefix("file://"))
    assert path.is_relative_to(assets.ASSETS)
    assert spec["artifact"]["digest"] == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_drift_reference_is_the_traffic_before_the_shift():
    """Same columns, mean ~0 and sd ~1 per feature, as the load generator sends before SHIFT."""
    monitor = assets.load("drift/churn-drift.yaml", VALUES)["spec"]
    lines = Path(monitor["reference"]["uri"].removeprefix("file://")).read_text().split()
    assert tuple(lines[0].split(",")) == FEATURE_NAMES
    assert monitor["columnMapping"]["numerical"] == list(FEATURE_NAMES)
    rows = [[float(v) for v in line.split(",")] for line in lines[1:]]
    for j in range(len(FEATURE_NAMES)):
        col = [r[j] for r in rows]
        mean = sum(col) / len(col)
        sd = (sum((v - mean) ** 2 for v in col) / len(col)) ** 0.5
        assert abs(mean) < 0.1
        assert abs(sd - 1) < 0.1


def test_the_deployment_logs_predictions_where_the_monitor_reads_them():
    _, deployment = assets.load_all("canary/churn-deployment.yaml", VALUES)
    monitor = assets.load("drift/churn-drift.yaml", VALUES)
    assert deployment["spec"]["server"]["predictionLog"] == monitor["spec"]["current"]["uri"]
    assert monitor["spec"]["current"]["source"] == "predictionLog"
    assert monitor["spec"]["target"] == {"deployment": deployment["metadata"]["name"]}


# -- the load generator ------------------------------------------------------------------------


def test_request_body_is_unchanged_without_a_shift():
    """The live rollout tests share the generator: an unshifted request draws what it always drew."""
    body = request_body(random.Random(7), rows=2)
    assert body["inputs"] == [
        {
            "name": "features",
            "shape": [2, 4],
            "datatype": "FP64",
            "data": [-0.2559, 0.5114, -0.2261, -0.3151, -0.93, -0.2133, 1.1119, 0.4241],
        }
    ]


def test_the_shift_moves_only_the_shifted_features():
    rows = 4000
    values = customer_rows(random.Random(3), rows, SHIFT)
    for j, name in enumerate(FEATURE_NAMES):
        mean = sum(values[j::4]) / rows
        assert abs(mean - SHIFT.get(name, 0.0)) < 0.1, name
    assert set(SHIFT) == {"tenure_months", "support_calls"}


# -- how it prints -----------------------------------------------------------------------------


def starts(header: str, titles: list[str]) -> list[int]:
    return [header.index(t) for t in titles]


def test_table_rows_line_up_and_long_cells_wrap_at_words_inside_their_column():
    table = view.Table(
        [view.Column("TIME", 7, right=True), view.Column("PHASE", 11), view.Column("NOTE", 12)], width=50
    )
    header = table.header()
    row = table.row("12.3s", "Progressing", "the canary answered twenty five percent of requests")
    lines = row.split("\n")
    assert len(lines) > 1
    note_at = header.index("NOTE")
    assert lines[0].index("Progressing") == header.index("PHASE")
    for line in lines:
        assert len(line) <= 50
        assert line[note_at:].strip()  # every continuation sits in the NOTE column
        assert not line[:note_at].strip() or line is lines[0]
    words = " ".join(line[note_at:].strip() for line in lines).split()
    assert words == ["the", "canary", "answered", "twenty", "five", "percent", "of", "requests"]  # no word cut


def test_right_aligned_columns_end_at_the_same_place():
    table = view.Table([view.Column("TIME", 7, right=True), view.Column("X", 3)])
    a, b = table.row("1.0s", "a"), table.row("123.4s", "b")
    assert a.index("a") == b.index("b")
    assert a.index("1.0s") + 4 == b.index("123.4s") + 6


def test_a_paragraph_breaks_between_words_and_never_inside_one():
    text = "rolled back automatically: canary churn-v3 failed analysis: predictions 0.7219 > max 0.2 " * 3
    out = view.paragraph(text, "[  1.0s] ", " " * 9, width=60)
    assert all(len(line) <= 60 for line in out.split("\n"))
    assert " ".join(out.replace("[  1.0s]", "").split()) == " ".join(text.split())


@pytest.mark.parametrize(
    ("metric", "shown"),
    [
        ({"kind": "errorRate", "max": 0.05}, "max 5.0%"),
        ({"kind": "latencyP99", "max": 2}, "max 2 s"),
        ({"kind": "latencyP99", "max": 0.25}, "max 250 ms"),
        ({"kind": "latencyP99", "maxRatioToStable": 5}, "max 5x stable"),
        ({"kind": "predictionShift", "max": 0.2}, "max 0.200"),
    ],
)
def test_thresholds_are_labelled_in_the_unit_of_the_value(metric, shown):
    assert view.metric_limit(metric) == shown


def test_step_labels_and_traffic_split():
    steps = [{"setWeight": 25}, {"analysis": {}}, {"setWeight": 50}, {"analysis": {}}]
    assert [view.step_label(i, steps) for i in (None, 0, 1, 4)] == ["-", "1/4 weight 25%", "2/4 analysis", "promotion"]
    assert view.split({"1": 75, "2": 25}) == "v1 75%  v2 25%  (100)"
    assert view.split({"2": 9, "http 503": 1}) == "v2 90%  http 503 1  (10)"
    assert view.split({}) == "no answers"


# -- how it fails ------------------------------------------------------------------------------


class _Step:
    def __init__(self, step: int) -> None:
        self.step = step


def test_a_failure_is_one_line_naming_the_step_and_the_reason():
    story = _Step(3)
    line = failure_line(story, DemoFailure("churn-v3 was promoted:\n its prediction shift went unnoticed"))  # type: ignore[arg-type]
    assert "\n" not in line
    assert line.startswith("DEMO FAILED at step 3/5 (Register a broken churn-v3")
    assert line.endswith("churn-v3 was promoted: its prediction shift went unnoticed")
    assert failure_line(None, KeyError("x")) == "DEMO FAILED at setup: KeyError: 'x'"


def test_story_steps_are_five():
    assert [a for a in dir(Story) if re.fullmatch(r"step\d", a)] == ["step1", "step2", "step3", "step4", "step5"]
