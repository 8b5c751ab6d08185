"""The Grafana dashboard (files/dashboards/modelops.json) and the ConfigMap that ships it: importable
as provisioned (fixed uid, a DS_PROMETHEUS datasource variable, no __inputs), the four sections the
issue asks for, and every panel query parsed by promtool."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ._promql import substitute_grafana
from ._support import CHART_DIR, NAMESPACE, Renderer

DASHBOARD = CHART_DIR / "files" / "dashboards" / "modelops.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) not installed")
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}

SECTIONS = {
    "Rollouts": {"Rollout phase", "Canary weight", "Canary step", "Analysis measurements per step"},
    "Model servers": {
        "Requests per second by track",
        "Error rate by track",
        "p99 latency by track",
        "Prediction distribution: stable",
        "Prediction distribution: canary",
    },
    "Drift": {"Drift score per feature", "Drift share", "Last check age", "Drifted features"},
    "Registry": {"Versions per stage", "Versions per model and stage"},
}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def variables() -> list[str]:
    return [v["name"] for v in dashboard()["templating"]["list"]]


def test_provisioning_friendly() -> None:
    board = dashboard()
    assert board["uid"] == "modelops"  # links and alerts can point at it in every Grafana
    # __inputs and __requires mark an export for sharing, not a provisioned dashboard.
    assert "__inputs" not in board
    assert "__requires" not in board
    assert board.get("id") is None  # Grafana assigns its own
    [ds] = [v for v in board["templating"]["list"] if v["name"] == "DS_PROMETHEUS"]
    assert ds["type"] == "datasource"
    assert ds["query"] == "prometheus"


def _datasources(node: Any) -> list[Any]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                found.append(value)
            else:
                found += _datasources(value)
    elif isinstance(node, list):
        for value in node:
            found += _datasources(value)
    return found


def test_every_query_uses_the_datasource_variable() -> None:
    board = dashboard()
    for panel in panels():
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
    # Nowhere a datasource by a concrete uid or name.
    assert {json.dumps(d, sort_keys=True) for d in _datasources(board)} == {json.dumps(DATASOURCE, sort_keys=True)}


def test_the_four_sections_and_their_panels() -> None:
    board = dashboard()
    sections: dict[str, set[str]] = {}
    current = None
    for panel in board["panels"]:
        if panel["type"] == "row":
            current = panel["title"]
            sections[current] = set()
        else:
            assert current is not None, f"{panel['title']} is above the first row"
            sections[current].add(panel["title"])
    for section, titles in SECTIONS.items():
        assert section in sections
        assert titles <= sections[section], section


def test_layout() -> None:
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0, panel["title"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine


def test_panels_filter_by_the_dashboard_variables() -> None:
    used = {"namespace", "deployment", "monitor", "model"}
    assert used <= set(variables())
    for panel in panels():
        for target in panel["targets"]:
            expr = target["expr"]
            referenced = set(re.findall(r"\$(\w+)", expr)) - {"__rate_interval", "__interval", "__range"}
            assert referenced <= set(variables()), (panel["title"], referenced)
    # A namespace picked at the top narrows every modelops panel (the operator's own are global).
    global_panels = {"Operator up", "Reconciles per second", "Reconcile p99 duration"}
    for panel in panels():
        if panel["title"] not in global_panels:
            assert all("$namespace" in t["expr"] for t in panel["targets"]), panel["title"]


def promtool_check(exprs: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`promtool check rules` on a rule file holding each expression as a recording rule."""
    assert PROMTOOL is not None
    rules = [{"record": f"dashboard:{key}", "expr": expr} for key, expr in exprs.items()]
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, sort_keys=False))
    return subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)


def panel_exprs() -> dict[str, str]:
    names = variables()
    return {
        f"panel_{p['id']}_{t['refId']}": substitute_grafana(t["expr"], names) for p in panels() for t in p["targets"]
    }


@needs_promtool
def test_every_panel_query_parses(tmp_path: Path) -> None:
    exprs = panel_exprs()
    assert len(exprs) >= len(panels())
    for expr in exprs.values():
        assert "$" not in expr, expr  # every Grafana variable was substituted
    result = promtool_check(exprs, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


@needs_promtool
def test_a_broken_panel_query_fails_the_check(tmp_path: Path) -> None:
    exprs = panel_exprs()
    key = next(iter(exprs))
    exprs[key] = exprs[key] + " +"  # a dangling operator
    assert promtool_check(exprs, tmp_path).returncode != 0


# ---------------------------------------------------------------- the ConfigMap


def dashboard_config_map(render: Renderer, values: dict[str, Any]) -> dict[str, Any]:
    [cm] = [m for m in render(values) if m["kind"] == "ConfigMap" and m["metadata"]["name"].endswith("-dashboard")]
    return cm


def test_config_map_ships_the_dashboard_for_the_sidecar(render: Renderer) -> None:
    assert not [m for m in render({}) if m["kind"] == "ConfigMap"]  # off by default
    cm = dashboard_config_map(render, {"grafanaDashboard": {"enabled": True}})
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == NAMESPACE
    assert list(cm["data"]) == ["modelops.json"]
    assert json.loads(cm["data"]["modelops.json"]) == dashboard()


def test_config_map_namespace_labels_and_folder(render: Renderer) -> None:
    cm = dashboard_config_map(
        render,
        {
            "grafanaDashboard": {
                "enabled": True,
                "namespace": "monitoring",
                "labels": {"grafana_dashboard": "modelops"},
                "annotations": {"grafana_folder": "MLOps"},
            }
        },
    )
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "modelops"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "MLOps"}
