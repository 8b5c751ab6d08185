"""Constants and helpers shared by the chart tests (fixtures are in conftest.py)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "charts" / "modelops"
RELEASE = "modelops"
NAMESPACE = "modelops"

# The value sets every rendering test runs on.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    "namespaced": {"watchNamespaces": ["team-a", "team-b"]},
    "monitoring": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "podMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {"enabled": True},
        "grafanaDashboard": {"enabled": True},
    },
    # Two replicas, one active (leader election; tests/chart/test_chart_ha.py).
    "ha": {"replicas": 2, "leaderElection": {"enabled": True}, "podDisruptionBudget": {"enabled": True}},
}

Renderer = Callable[[dict[str, Any]], list[dict[str, Any]]]


def load_render_chart() -> ModuleType:
    """tests/support/render_chart.py, loaded by path (works whether or not tests/ is a package)."""
    spec = importlib.util.spec_from_file_location(
        "modelops_render_chart", ROOT / "tests" / "support" / "render_chart.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
