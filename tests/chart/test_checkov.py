"""checkov's Kubernetes policies on the rendered chart and on every manifest the operator creates.

The operator's children (drift-check CronJob and its RBAC, the retraining Job and its RBAC, the
model-server Deployments of both tracks with a built-in and a custom server, the Services) are
built with the same pure builders the operator uses. checkov runs once over all of them.

checkov is installed by `.ci/run` into its own virtualenv, `.ci/.checkov` (its pins clash with the
dev extra's: it would downgrade packaging, networkx and python-dateutil); the test finds it there,
or at $CHECKOV, or on PATH. Where none exists the test skips, naming the command that installs it.

Offline, checkov reports no severities (they come from the Prisma Cloud API), so every failed
check counts: the test passes only with no finding outside `checkov_accepted.yaml`, where each
accepted finding is listed per check and resource with the reason it is accepted.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops.api.driftmonitor import CheckResult, DriftMonitorSpec, FeatureResult
from modelops.api.modeldeployment import ModelDeploymentSpec
from modelops.api.modelversion import Phase, Stage
from modelops.core.drift_cronjob import (
    CheckJobOptions,
    MonitorRef,
    build_cronjob,
    build_retrain_job,
    build_role,
    build_role_binding,
    build_service_account,
    retrain_children,
)
from modelops.core.model_server_manifests import (
    DeploymentRef,
    ServerOptions,
    build_services,
    build_track_deployment,
)
from modelops.core.version_selection import VersionInfo

from ._support import ROOT, VALUE_SETS, Renderer

ACCEPTED_FILE = Path(__file__).with_name("checkov_accepted.yaml")
VENV_CHECKOV = ROOT / ".ci" / ".checkov" / "bin" / "checkov"


def find_checkov() -> str | None:
    if os.environ.get("CHECKOV"):
        return os.environ["CHECKOV"]
    if VENV_CHECKOV.exists():
        return str(VENV_CHECKOV)
    return shutil.which("checkov")


CHECKOV = find_checkov()
OUTPUT = ("--output", "json", "--compact")  # not --quiet: the passed checks name the files scanned
IMAGE = "ghcr.io/modelops/modelops:0.1.0"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
RESTRICTED_TRAINER: dict[str, Any] = {
    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "train",
            "image": "ghcr.io/acme/train:1",
            "args": ["fit"],
            "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
        }
    ],
}


def accepted() -> list[dict[str, str]]:
    entries = yaml.safe_load(ACCEPTED_FILE.read_text())["accepted"]
    for e in entries:
        assert set(e) == {"check", "resource", "severity", "reason"}, e
        assert e["severity"] in ("LOW", "MEDIUM"), f"a HIGH finding is never accepted: {e}"
        assert len(e["reason"]) > 40, f"say why: {e}"
    return list(entries)


def operator_children() -> list[dict[str, Any]]:
    """Every kind of object the operator creates, from its own builders."""
    monitor = MonitorRef("churn-drift", "ml", "6f1c4d0e-2b1a-4a8e-9a53-0d4c8c5b2f10")
    spec = DriftMonitorSpec.model_validate(
        {
            "target": {"deployment": "churn"},
            "schedule": "*/15 * * * *",
            "dataSecretRef": {"name": "s3-creds"},
            # The retraining pod is the user's template: its security context and resources are the
            # user's (a restricted one here, as docs/drift.md shows); the operator adds env, labels,
            # owner and ServiceAccount.
            "jobTemplate": {"spec": {"template": {"spec": RESTRICTED_TRAINER}}},
        }
    )
    feature = FeatureResult(
        name="x", test="ks", statistic=0.3, p_value=0.001, threshold=0.05, drifted=True, n_reference=100, n_current=90
    )
    result = CheckResult(
        time=NOW, dataset_drift=True, drift_share=1.0, drifted_features=1, total_features=1, features=[feature]
    )
    assert spec.job_template is not None
    job = build_retrain_job(
        monitor,
        spec.job_template,
        model_name="churn",
        model_version="3",
        result=result,
        reference_uri="s3://data/ref.parquet",
        now=NOW,
    )
    owner = DeploymentRef("churn", "ml", "0b6a1f9e-8f5c-4f55-9d0e-1b2c3d4e5f60")
    version = VersionInfo(
        name="churn-v2",
        model_name="churn",
        version="2",
        uri="s3://models/churn/2/model.joblib",
        digest="sha256:" + "ab" * 32,
        phase=Phase.VERIFIED,
        stage=Stage.PRODUCTION,
        approved=True,
    )
    resources = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}}
    builtin = ModelDeploymentSpec.model_validate(
        {"model": {"versionRef": "churn-v2"}, "replicas": 2, "resources": resources}
    )
    custom = ModelDeploymentSpec.model_validate(
        {"model": {"versionRef": "churn-v2"}, "server": {"image": "ghcr.io/acme/v2-server:1"}, "resources": resources}
    )
    bare = ModelDeploymentSpec.model_validate({"model": {"versionRef": "churn-v2"}})  # no spec.resources
    custom_owner = DeploymentRef("custom", "ml", "1c6a1f9e-8f5c-4f55-9d0e-1b2c3d4e5f61")
    bare_owner = DeploymentRef("bare", "ml", "2d6a1f9e-8f5c-4f55-9d0e-1b2c3d4e5f62")
    options = ServerOptions(image=IMAGE)
    return [
        build_cronjob(monitor, spec, CheckJobOptions(image=IMAGE)),
        build_service_account(monitor),
        build_role(monitor, spec, record_events=True),
        build_role_binding(monitor),
        *retrain_children(monitor, spec),
        job,
        build_track_deployment(owner, builtin, "stable", version, 2, options),
        build_track_deployment(owner, builtin, "canary", version, 1, options),
        build_track_deployment(custom_owner, custom, "stable", version, 1, options),
        build_track_deployment(bare_owner, bare, "stable", version, 1, options),
        *build_services(owner, builtin),
    ]


def resource_of(check: dict[str, Any]) -> str:
    """``Kind/namespace/name`` of a finding (checkov's resource id is ``Kind.namespace.name...``)."""
    kind, _, rest = str(check["resource"]).partition(".")
    namespace, _, name = rest.partition(".")
    return f"{kind}/{namespace}/{name}"


@pytest.mark.slow
@pytest.mark.skipif(
    CHECKOV is None,
    reason="checkov not installed: python3 -m venv .ci/.checkov && .ci/.checkov/bin/pip install checkov (.ci/run does)",
)
def test_checkov_finds_nothing_unexplained(render: Renderer, tmp_path: Path) -> None:
    assert CHECKOV is not None
    for name, values in VALUE_SETS.items():
        # monitoring.coreos.com kinds: checkov has no policies for them
        docs = [m for m in render(values) if m["kind"] not in {"ServiceMonitor", "PodMonitor", "PrometheusRule"}]
        (tmp_path / f"chart-{name}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    children = operator_children()
    assert {c["kind"] for c in children} >= {"CronJob", "Job", "Deployment", "Role", "RoleBinding", "ServiceAccount"}
    (tmp_path / "operator-children.yaml").write_text(yaml.safe_dump_all(children, sort_keys=False))
    result = subprocess.run(
        [CHECKOV, "--skip-download", "--framework", "kubernetes", "--directory", str(tmp_path), *OUTPUT],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.stdout.strip(), result.stderr
    report: Any = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    assert all(r["summary"]["parsing_errors"] == 0 for r in reports)
    passed = sum(r["summary"]["passed"] for r in reports)
    assert passed > 300, "checkov ran (almost) no policies"
    allowed = accepted()
    unexplained = []
    for r in reports:
        for c in r["results"]["failed_checks"]:
            res = resource_of(c)
            if not any(c["check_id"] == a["check"] and fnmatch.fnmatchcase(res, a["resource"]) for a in allowed):
                unexplained.append(f"{c['check_id']} {c['check_name']}: {res} ({Path(c['file_path']).name})")
    assert unexplained == []
    # The operator's children are scanned too (checkov names the file of each finding and pass).
    scanned = {Path(c["file_path"]).name for r in reports for c in r["results"]["passed_checks"]}
    assert "operator-children.yaml" in scanned
