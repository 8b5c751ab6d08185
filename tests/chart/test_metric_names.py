"""Every metric an alert, a dashboard panel or the documentation names is one that modelops exports:
the operator (modelops.telemetry), the model server (modelops.server.metrics), Prometheus itself
(`up`), or the kube-state-metrics snippet of examples/observability."""

from __future__ import annotations

import datetime as dt
import functools
import json
import re

import yaml
from prometheus_client import generate_latest

from modelops import telemetry
from modelops.api.driftmonitor import DriftMonitorStatus, MonitorPhase
from modelops.core import model_server_manifests as servers
from modelops.server.metrics import Slots, make_registry

from ._promql import exposed_names, family_names, grafana_query_names, metric_names
from ._support import CHART_DIR, ROOT

ALERTS = CHART_DIR / "files" / "alerts.yaml"
DASHBOARD = CHART_DIR / "files" / "dashboards" / "modelops.json"
KSM_VALUES = ROOT / "examples" / "observability" / "kube-prometheus-stack-values.yaml"
DOCS = [
    ROOT / "README.md",
    CHART_DIR / "README.md",
    CHART_DIR / "values.yaml",
    ALERTS,
    *sorted((ROOT / "docs").glob("*.md")),
]
DOC_METRIC = re.compile(r"(?<![\w./-])(modelops_[a-z0-9_]*[a-z0-9]|kube_modelops_[a-z0-9_]*[a-z0-9])(?![\w-])")


def server_registry():  # type: ignore[no-untyped-def]
    return make_registry(
        Slots.local(), {"model": "m", "version": "1", "track": "stable", "deployment": "d"}, lambda: ["y"]
    )


def ksm_names() -> set[str]:
    config = yaml.safe_load(KSM_VALUES.read_text())["kube-state-metrics"]["customResourceState"]["config"]
    return {f"{r['metricNamePrefix']}_{m['name']}" for r in config["spec"]["resources"] for m in r["metrics"]}


@functools.cache
def queryable() -> frozenset[str]:
    """Every sample name Prometheus can hold from a modelops setup."""
    return frozenset(exposed_names(telemetry.REGISTRY) | exposed_names(server_registry()) | ksm_names() | {"up"})


def test_the_exported_names_are_what_the_exposition_shows() -> None:
    # exposed_names works from the registries' families; the text Prometheus scrapes agrees.
    text = generate_latest(server_registry()).decode()
    scraped = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    assert scraped <= exposed_names(server_registry())
    assert "modelops_inference_requests_total" in scraped
    assert "modelops_prediction_value_bucket" in scraped


def test_alerts_read_only_exported_metrics() -> None:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    for rule in (r for g in groups for r in g["rules"]):
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= queryable(), f"{rule['alert']} reads {sorted(names - queryable())}, which nothing exports"


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [
        (f"panel {p['title']!r}", t["expr"]) for p in dashboard["panels"] for t in p.get("targets", []) if "expr" in t
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            queries.append((f"variable {variable['name']}", variable["query"]["query"]))
    return queries


def test_dashboard_reads_only_exported_metrics() -> None:
    queries = dashboard_queries()
    assert len(queries) > 20
    for where, query in queries:
        names = grafana_query_names(query)
        assert names, where
        assert names <= queryable(), f"{where} reads {sorted(names - queryable())}, which nothing exports"


def pod_label_names() -> set[str]:
    """Label names a `kubernetes-pods` scrape job's labelmap makes of the model-server pods' own labels
    (`modelops.dev/track` -> `modelops_dev_track`): not metrics, but they look like ones in the docs."""
    keys = (servers.DEPLOYMENT_LABEL, servers.TRACK_LABEL, servers.VERSION_LABEL)
    return {re.sub(r"[^a-zA-Z0-9_]", "_", key) for key in keys}


def test_docs_name_only_exported_metrics() -> None:
    known = queryable() | family_names(telemetry.REGISTRY) | family_names(server_registry()) | pod_label_names()
    found: dict[str, set[str]] = {}
    for path in DOCS:
        for name in DOC_METRIC.findall(path.read_text()):
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert "modelops_rollout_phase" in found  # the scan sees the docs at all
    unknown = {name: sorted(where) for name, where in found.items() if name not in known}
    assert unknown == {}, "documented metrics that nothing exports"


def test_the_checks_catch_a_metric_nothing_exports() -> None:
    # The subset checks above are only worth something if a misspelt name fails them.
    assert metric_names('modelops_rollout_phases{phase="RolledBack"} == 1') - queryable() == {"modelops_rollout_phases"}
    assert grafana_query_names("label_values(modelops_rolout_phase, namespace)") - queryable() == {
        "modelops_rolout_phase"
    }
    # A counter is queried by its _total samples, never by its family name.
    assert "modelops_reconcile" not in queryable()


def test_drift_monitor_phase_is_exported_one_hot_and_forgotten() -> None:
    namespace, monitor = "metric-names-test", "phase-check"
    status = DriftMonitorStatus.model_validate(
        {"phase": "Error", "lastCheckTime": dt.datetime(2026, 11, 30, tzinfo=dt.UTC).isoformat()}
    )

    def phases() -> dict[str, float]:
        out = {}
        for family in telemetry.REGISTRY.collect():
            if family.name == "modelops_drift_monitor_phase":
                for sample in family.samples:
                    if sample.labels["namespace"] == namespace and sample.labels["monitor"] == monitor:
                        out[sample.labels["phase"]] = sample.value
        return out

    telemetry.set_drift_metrics(namespace, monitor, status)
    try:
        exported = phases()
        assert set(exported) == {p.value for p in MonitorPhase}
        assert exported["Error"] == 1
        assert sum(exported.values()) == 1
        status = status.model_copy(update={"phase": MonitorPhase.HEALTHY})
        telemetry.set_drift_metrics(namespace, monitor, status)
        assert phases()["Healthy"] == 1
        assert sum(phases().values()) == 1
    finally:
        telemetry.forget_drift_metrics(namespace, monitor)
    assert phases() == {}
