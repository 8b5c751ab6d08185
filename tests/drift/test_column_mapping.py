"""Evidently's column-mapping rule: an unset role is inferred, a given role is exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelops.api.driftmonitor import ColumnMapping
from modelops.drift.engine import run_check
from modelops.drift.readers import load_frame, load_reference


@pytest.fixture
def csvs(tmp_path: Path) -> tuple[str, str]:
    rng = np.random.default_rng(0)

    def write(name: str, shift: float) -> str:
        rows = [f"{rng.normal(shift, 1):.4f},{rng.normal(0, 1):.4f},{rng.choice(['a', 'b'])}" for _ in range(300)]
        path = tmp_path / name
        path.write_text("x,y,plan\n" + "\n".join(rows) + "\n")
        return str(path)

    return write("ref.csv", 0.0), write("cur.csv", 0.0)


@pytest.mark.parametrize(
    ("mapping", "checked"),
    [
        (None, {"x", "y", "plan"}),
        ({"categorical": ["plan"]}, {"x", "y", "plan"}),
        ({"numerical": ["x"]}, {"x", "plan"}),
        ({"numerical": ["x"], "categorical": ["plan"]}, {"x", "plan"}),
        ({"numerical": [], "categorical": ["plan"]}, {"plan"}),
    ],
)
def test_unset_roles_are_inferred_given_roles_are_exact(csvs, mapping, checked):
    ref, cur = csvs
    cm = ColumnMapping.model_validate(mapping) if mapping is not None else None
    result = run_check(load_reference(ref, mapping=cm, cache=None), load_frame(cur, mapping=cm), mapping=cm)
    assert {f.name for f in result.features} == checked


def test_unseen_categories_and_reference_nans_reach_the_status(tmp_path):
    ref = tmp_path / "ref.csv"
    cur = tmp_path / "cur.csv"
    ref.write_text("plan,x\n" + "\n".join(f"{'ab'[i % 2]},{'' if i % 50 == 0 else i}" for i in range(200)) + "\n")
    cur.write_text("plan,x\n" + "\n".join(f"{'abc'[i % 3]},{i}" for i in range(200)) + "\n")
    result = run_check(load_reference(str(ref), cache=None), load_frame(str(cur)))
    by_name = {f.name: f for f in result.features}
    assert by_name["plan"].unseen_categories == ["c"]
    assert by_name["x"].nan_reference == 4
    wire = result.to_wire()
    assert next(f for f in wire["features"] if f["name"] == "plan")["unseenCategories"] == ["c"]
