"""Fixtures for the chart, image and alert tests: the chart rendered by the real Helm engine."""

from __future__ import annotations

import copy
from types import ModuleType
from typing import Any

import pytest
import yaml

from ._support import CHART_DIR, NAMESPACE, RELEASE, VALUE_SETS, Renderer, load_render_chart


@pytest.fixture(scope="session")
def render_chart() -> ModuleType:
    return load_render_chart()


@pytest.fixture(scope="session")
def render(render_chart: ModuleType) -> Renderer:
    """Render the chart with `values`; returns fresh manifest dicts (rendered once per value set)."""
    cache: dict[str, list[dict[str, Any]]] = {}

    def _render(values: dict[str, Any]) -> list[dict[str, Any]]:
        key = yaml.safe_dump(values, sort_keys=True)
        if key not in cache:
            docs = render_chart.render_documents(values, release=RELEASE, namespace=NAMESPACE, chart_dir=CHART_DIR)
            cache[key] = [render_chart.load(doc) for doc in docs]
        return copy.deepcopy(cache[key])

    return _render


@pytest.fixture(params=sorted(VALUE_SETS), scope="session")
def value_set(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param, VALUE_SETS[request.param]


@pytest.fixture(scope="session")
def manifests(render: Renderer, value_set: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return render(value_set[1])
