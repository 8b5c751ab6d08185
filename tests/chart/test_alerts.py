"""The alert rules (files/alerts.yaml and the rendered PrometheusRule) checked by Prometheus' promtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ._support import CHART_DIR, VALUE_SETS, Renderer

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) not installed")

ALERTS = CHART_DIR / "files" / "alerts.yaml"
EXPECTED_ALERTS = {
    "ModelopsOperatorDown",
    "ModelopsReconcileErrorsHigh",
    "ModelopsRolloutRolledBack",
    "ModelopsDriftDetected",
}


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_alerts_file_passes_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(EXPECTED_ALERTS)} rules found" in result.stdout


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    broken = yaml.safe_load(ALERTS.read_text())
    broken["groups"][0]["rules"][0]["expr"] = "absent(up{job=}"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    assert promtool("check", "rules", str(path)).returncode != 0


def test_rendered_prometheus_rule_passes_promtool(render: Renderer, tmp_path: Path) -> None:
    rule = next(m for m in render(VALUE_SETS["monitoring"]) if m["kind"] == "PrometheusRule")
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    names = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert names == EXPECTED_ALERTS


def _rule(name: str) -> dict[str, Any]:
    rules = yaml.safe_load(ALERTS.read_text())["groups"]
    return next(r for g in rules for r in g["rules"] if r.get("alert") == name)


def _alert(name: str, labels: dict[str, str], value: str = "") -> dict[str, Any]:
    """The expected alert: the rule's labels and its annotations with the templates filled in."""
    rule = _rule(name)

    def fill(text: str) -> str:
        text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)
        return re.sub(r"\{\{ \$value[^}]*\}\}", value, text)

    return {
        "exp_labels": {"alertname": name, **rule["labels"], **labels},
        "exp_annotations": {key: fill(text) for key, text in rule["annotations"].items()},
    }


def test_alerts_fire_when_they_should(tmp_path: Path) -> None:
    """promtool unit tests: each alert fires on its condition and stays quiet otherwise."""
    tests = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # The operator scraped and up for 10m, then down.
                    {"series": 'up{job="modelops", instance="op:9090"}', "values": "1x10 0x20"},
                    # ModelVersion: 20% errors for 30m. ModelDeployment: 1% errors.
                    {"series": 'modelops_reconcile_total{kind="ModelVersion", result="error"}', "values": "0+2x40"},
                    {"series": 'modelops_reconcile_total{kind="ModelVersion", result="success"}', "values": "0+8x40"},
                    {"series": 'modelops_reconcile_total{kind="ModelDeployment", result="error"}', "values": "0+1x40"},
                    {
                        "series": 'modelops_reconcile_total{kind="ModelDeployment", result="success"}',
                        "values": "0+99x40",
                    },
                    # A canary rolled back at minute 5; another deployment progressing.
                    {"series": 'modelops_rollout_phase{deployment="fraud", phase="RolledBack"}', "values": "0x4 1x10"},
                    {"series": 'modelops_rollout_phase{deployment="fraud", phase="Progressing"}', "values": "1x4 0x10"},
                    {"series": 'modelops_rollout_phase{deployment="churn", phase="RolledBack"}', "values": "0x14"},
                    # Drift on one monitor only.
                    {"series": 'modelops_drift_detected{monitor="fraud-drift"}', "values": "0x2 1x10"},
                    {"series": 'modelops_drift_detected{monitor="churn-drift"}', "values": "0x12"},
                ],
                "alert_rule_test": [
                    {"eval_time": "5m", "alertname": "ModelopsOperatorDown", "exp_alerts": []},
                    # Down from minute 11, pending 5m: firing at 17m.
                    {"eval_time": "13m", "alertname": "ModelopsOperatorDown", "exp_alerts": []},
                    {
                        "eval_time": "17m",
                        "alertname": "ModelopsOperatorDown",
                        "exp_alerts": [_alert("ModelopsOperatorDown", {})],
                    },
                    {"eval_time": "10m", "alertname": "ModelopsReconcileErrorsHigh", "exp_alerts": []},
                    {
                        "eval_time": "30m",
                        "alertname": "ModelopsReconcileErrorsHigh",
                        "exp_alerts": [_alert("ModelopsReconcileErrorsHigh", {"kind": "ModelVersion"}, value="20%")],
                    },
                    {"eval_time": "3m", "alertname": "ModelopsRolloutRolledBack", "exp_alerts": []},
                    {
                        "eval_time": "6m",
                        "alertname": "ModelopsRolloutRolledBack",
                        "exp_alerts": [
                            _alert(
                                "ModelopsRolloutRolledBack",
                                {"deployment": "fraud", "phase": "RolledBack"},
                            )
                        ],
                    },
                    {"eval_time": "1m", "alertname": "ModelopsDriftDetected", "exp_alerts": []},
                    {
                        "eval_time": "4m",
                        "alertname": "ModelopsDriftDetected",
                        "exp_alerts": [_alert("ModelopsDriftDetected", {"monitor": "fraud-drift"})],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "alerts_test.yaml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
