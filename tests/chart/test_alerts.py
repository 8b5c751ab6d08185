"""The alert rules (files/alerts.yaml and the rendered PrometheusRule): promtool checks and unit-tests
every alert; each one is documented (summary, description, a runbook section) and keeps the namespace
and the name of the resource it is about."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ._support import CHART_DIR, ROOT, VALUE_SETS, Renderer

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) not installed")

ALERTS = CHART_DIR / "files" / "alerts.yaml"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
RUNBOOK_BASE = "https://github.com/modelops/modelops/blob/main/docs/runbooks.md#"

# Each alert and the label naming the resource it is about (besides `namespace`).
RESOURCE_LABEL: dict[str, str | None] = {
    "ModelopsOperatorDown": "pod",
    "ModelopsOperatorAbsent": None,  # fires on the absence of any series: no namespace to keep
    "ModelopsReconcileErrorsHigh": "kind",
    "ModelopsModelVersionVerificationFailed": "name",
    "ModelopsModelVersionPending": "name",
    "ModelopsRolloutRolledBack": "deployment",
    "ModelopsRolloutDegraded": "deployment",
    "ModelopsModelServerErrorRateHigh": "deployment",
    "ModelopsDriftDetected": "monitor",
    "ModelopsDriftCheckFailing": "monitor",
}


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _rule(name: str) -> dict[str, Any]:
    return next(r for r in rules() if r.get("alert") == name)


# ---------------------------------------------------------------- static checks


def test_the_file_holds_exactly_the_known_alerts() -> None:
    names = [r["alert"] for r in rules()]
    assert len(names) == len(set(names))
    assert set(names) == set(RESOURCE_LABEL)
    assert all("record" not in r for r in rules())


@pytest.mark.parametrize("name", sorted(RESOURCE_LABEL))
def test_every_alert_is_documented_and_labelled(name: str) -> None:
    rule = _rule(name)
    assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
    assert set(rule["labels"]) == {"severity"}
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert rule["annotations"]["runbook_url"] == RUNBOOK_BASE + name.lower()
    resource = RESOURCE_LABEL[name]
    if resource is not None:
        # Both the summary and the description say where and what, from the alert's own labels.
        for key in ("summary", "description"):
            text = rule["annotations"][key]
            assert "{{ $labels.namespace }}" in text, (name, key)
            assert f"{{{{ $labels.{resource} }}}}" in text, (name, key)


def runbook_sections() -> dict[str, str]:
    """`## Heading` -> its text, from docs/runbooks.md."""
    sections: dict[str, str] = {}
    current = None
    for line in RUNBOOKS.read_text().splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return sections


def test_runbooks_have_one_section_per_alert() -> None:
    sections = runbook_sections()
    alert_sections = {s for s in sections if s.startswith("Modelops")}
    assert alert_sections == set(RESOURCE_LABEL)
    for name in RESOURCE_LABEL:
        text = sections[name]
        # What it means, what to look at, what to do: the runbook's three parts, and the expression.
        for part in ("**Meaning.**", "**Diagnosis.**", "**Mitigation.**"):
            assert part in text, (name, part)
        expr = " ".join(_rule(name)["expr"].split())
        assert expr in " ".join(text.split()), f"{name}: the runbook does not show the alert's expression"


# ---------------------------------------------------------------- promtool


@needs_promtool
def test_alerts_file_passes_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RESOURCE_LABEL)} rules found" in result.stdout


@needs_promtool
def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    broken = yaml.safe_load(ALERTS.read_text())
    broken["groups"][0]["rules"][0]["expr"] = "absent(up{job=}"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    assert promtool("check", "rules", str(path)).returncode != 0


@needs_promtool
def test_rendered_prometheus_rule_passes_promtool(render: Renderer, tmp_path: Path) -> None:
    rule = next(m for m in render(VALUE_SETS["monitoring"]) if m["kind"] == "PrometheusRule")
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    names = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert names == set(RESOURCE_LABEL)


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


OPERATOR = {"job": "modelops", "namespace": "modelops", "pod": "modelops-7d9f8-abcde", "instance": "10.0.0.5:9090"}
SERVER = {"namespace": "team-a", "deployment": "churn", "model": "churn", "version": "3"}


def _series(metric: str, labels: dict[str, str]) -> str:
    return metric + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _mv(name: str, phase: str) -> dict[str, str]:
    """The labels of modelops_model_version_info for ModelVersion team-a/<name> (churn-v<N>)."""
    version = name.rsplit("v", 1)[-1]
    return {"namespace": "team-a", "name": name, "model": "churn", "version": version, "stage": "None", "phase": phase}


# Each case: (alert, eval_time, expected alerts). Every alert has a quiet and a firing case.
CASES: list[tuple[str, str, list[dict[str, Any]]]] = [
    # The operator scraped and up for 10m, then down: pending 5m from minute 11, firing at 16m.
    ("ModelopsOperatorDown", "5m", []),
    ("ModelopsOperatorDown", "13m", []),
    ("ModelopsOperatorDown", "17m", [_alert("ModelopsOperatorDown", OPERATOR)]),
    # A target that is down is not absent.
    ("ModelopsOperatorAbsent", "30m", []),
    # ModelVersion: 20% errors for 30m. ModelDeployment: 1% errors.
    ("ModelopsReconcileErrorsHigh", "10m", []),
    (
        "ModelopsReconcileErrorsHigh",
        "30m",
        [_alert("ModelopsReconcileErrorsHigh", {"namespace": "modelops", "kind": "ModelVersion"}, value="20%")],
    ),
    # churn-v3 pending for 2m, then failed verification; churn-v4 verified.
    ("ModelopsModelVersionVerificationFailed", "1m", []),
    (
        "ModelopsModelVersionVerificationFailed",
        "3m",
        [_alert("ModelopsModelVersionVerificationFailed", _mv("churn-v3", "Failed"))],
    ),
    # churn-v5 pending for 40m; churn-v6 pending 10m, then verified (its Pending series ends).
    ("ModelopsModelVersionPending", "25m", []),
    ("ModelopsModelVersionPending", "31m", [_alert("ModelopsModelVersionPending", _mv("churn-v5", "Pending"))]),
    # A canary rolled back at minute 5; another deployment progressing.
    ("ModelopsRolloutRolledBack", "3m", []),
    (
        "ModelopsRolloutRolledBack",
        "6m",
        [_alert("ModelopsRolloutRolledBack", {"namespace": "team-a", "deployment": "fraud", "phase": "RolledBack"})],
    ),
    # Degraded from minute 3, pending 5m.
    ("ModelopsRolloutDegraded", "6m", []),
    (
        "ModelopsRolloutDegraded",
        "9m",
        [_alert("ModelopsRolloutDegraded", {"namespace": "team-b", "deployment": "search", "phase": "Degraded"})],
    ),
    # The canary answers 10% 5xx, the stable none; pending 10m.
    ("ModelopsModelServerErrorRateHigh", "8m", []),
    (
        "ModelopsModelServerErrorRateHigh",
        "20m",
        [
            _alert(
                "ModelopsModelServerErrorRateHigh",
                {"namespace": "team-a", "deployment": "churn", "track": "canary"},
                value="10%",
            )
        ],
    ),
    # Drift on one monitor only.
    ("ModelopsDriftDetected", "1m", []),
    (
        "ModelopsDriftDetected",
        "4m",
        [_alert("ModelopsDriftDetected", {"namespace": "team-a", "monitor": "fraud-drift"})],
    ),
    # A monitor in Error from minute 3, pending 15m; another Healthy.
    ("ModelopsDriftCheckFailing", "10m", []),
    (
        "ModelopsDriftCheckFailing",
        "19m",
        [
            _alert(
                "ModelopsDriftCheckFailing",
                {"namespace": "team-a", "monitor": "churn-drift", "phase": "Error"},
            )
        ],
    ),
]

INPUT_SERIES = [
    {"series": _series("up", OPERATOR), "values": "1x10 0x30"},
    {
        "series": 'modelops_reconcile_total{namespace="modelops", kind="ModelVersion", result="error"}',
        "values": "0+2x40",
    },
    {
        "series": 'modelops_reconcile_total{namespace="modelops", kind="ModelVersion", result="success"}',
        "values": "0+8x40",
    },
    {
        "series": 'modelops_reconcile_total{namespace="modelops", kind="ModelDeployment", result="error"}',
        "values": "0+1x40",
    },
    {
        "series": 'modelops_reconcile_total{namespace="modelops", kind="ModelDeployment", result="success"}',
        "values": "0+99x40",
    },
    {"series": _series("modelops_model_version_info", _mv("churn-v3", "Pending")), "values": "1x1 _x40"},
    {"series": _series("modelops_model_version_info", _mv("churn-v3", "Failed")), "values": "_x2 1x40"},
    {"series": _series("modelops_model_version_info", _mv("churn-v4", "Verified")), "values": "1x40"},
    {"series": _series("modelops_model_version_info", _mv("churn-v5", "Pending")), "values": "1x40"},
    {"series": _series("modelops_model_version_info", _mv("churn-v6", "Pending")), "values": "1x9 _x30"},
    {"series": _series("modelops_model_version_info", _mv("churn-v6", "Verified")), "values": "_x9 1x30"},
    {
        "series": 'modelops_rollout_phase{namespace="team-a", deployment="fraud", phase="RolledBack"}',
        "values": "0x4 1x30",
    },
    {
        "series": 'modelops_rollout_phase{namespace="team-a", deployment="fraud", phase="Progressing"}',
        "values": "1x4 0x30",
    },
    {"series": 'modelops_rollout_phase{namespace="team-a", deployment="churn", phase="RolledBack"}', "values": "0x40"},
    {
        "series": 'modelops_rollout_phase{namespace="team-b", deployment="search", phase="Degraded"}',
        "values": "0x2 1x30",
    },
    {
        "series": _series("modelops_inference_requests_total", {**SERVER, "track": "canary", "code": "500"}),
        "values": "0+1x40",
    },
    {
        "series": _series("modelops_inference_requests_total", {**SERVER, "track": "canary", "code": "200"}),
        "values": "0+9x40",
    },
    {
        "series": _series("modelops_inference_requests_total", {**SERVER, "track": "stable", "code": "500"}),
        "values": "0x40",
    },
    {
        "series": _series("modelops_inference_requests_total", {**SERVER, "track": "stable", "code": "200"}),
        "values": "0+30x40",
    },
    {"series": 'modelops_drift_detected{namespace="team-a", monitor="fraud-drift"}', "values": "0x2 1x30"},
    {"series": 'modelops_drift_detected{namespace="team-a", monitor="churn-drift"}', "values": "0x40"},
    {
        "series": 'modelops_drift_monitor_phase{namespace="team-a", monitor="churn-drift", phase="Error"}',
        "values": "0x2 1x30",
    },
    {
        "series": 'modelops_drift_monitor_phase{namespace="team-a", monitor="fraud-drift", phase="Error"}',
        "values": "0x40",
    },
]


def test_every_alert_has_a_quiet_and_a_firing_case() -> None:
    for name in RESOURCE_LABEL:
        outcomes = [bool(expected) for alert, _, expected in CASES if alert == name]
        if name == "ModelopsOperatorAbsent":
            continue  # its firing case needs a test without any `up` series: below
        assert True in outcomes, name
        assert False in outcomes, name
    for alert, _, expected in CASES:
        resource = RESOURCE_LABEL[alert]
        for fired in expected:
            assert resource is not None
            # The namespace and the resource name survive the expression into the alert.
            assert {"namespace", resource} <= set(fired["exp_labels"]), alert


@needs_promtool
def test_alerts_fire_when_they_should(tmp_path: Path) -> None:
    """promtool unit tests: each alert fires on its condition, with its labels, and stays quiet otherwise."""
    tests = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": INPUT_SERIES,
                "alert_rule_test": [{"eval_time": t, "alertname": a, "exp_alerts": e} for a, t, e in CASES],
            },
            {
                # No operator target at all: absent after 15m.
                "interval": "1m",
                "input_series": [{"series": 'up{job="kube-state-metrics"}', "values": "1x30"}],
                "alert_rule_test": [
                    {"eval_time": "10m", "alertname": "ModelopsOperatorAbsent", "exp_alerts": []},
                    {
                        "eval_time": "16m",
                        "alertname": "ModelopsOperatorAbsent",
                        "exp_alerts": [_alert("ModelopsOperatorAbsent", {"job": "modelops"})],
                    },
                    {"eval_time": "16m", "alertname": "ModelopsOperatorDown", "exp_alerts": []},
                ],
            },
        ],
    }
    path = tmp_path / "alerts_test.yaml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_a_wrong_expectation_fails_promtool(tmp_path: Path) -> None:
    # The unit tests are only worth something if promtool notices a wrong label.
    wrong = _alert("ModelopsDriftDetected", {"namespace": "team-b", "monitor": "fraud-drift"})
    tests = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": INPUT_SERIES,
                "alert_rule_test": [{"eval_time": "4m", "alertname": "ModelopsDriftDetected", "exp_alerts": [wrong]}],
            }
        ],
    }
    path = tmp_path / "wrong_test.yaml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    assert promtool("test", "rules", str(path)).returncode != 0
