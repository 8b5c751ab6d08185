"""Optional: checkov's Kubernetes policies on the rendered chart.

checkov is not a dev dependency (it is large and pins many packages); the test runs where a
`checkov` command is on PATH or named by $CHECKOV, and skips otherwise. Its helm framework
silently passes without a `helm` binary, so the rendered manifests are scanned with
`--framework kubernetes`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ._support import VALUE_SETS, Renderer

CHECKOV = os.environ.get("CHECKOV") or shutil.which("checkov")

# Findings accepted on purpose, with the reason.
ACCEPTED = {
    # The operator is a Kubernetes API client: it needs its ServiceAccount token.
    "CKV_K8S_38": "Service Account Tokens are mounted where necessary",
    # The chart pins the image by tag (appVersion) by default; image.digest pins by digest once a
    # release is published. A digest cannot be known before the image is built.
    "CKV_K8S_43": "Image should use digest",
    # With a pinned tag or digest, IfNotPresent is correct and avoids a registry round trip per start.
    "CKV_K8S_15": "Image Pull Policy should be Always",
}


@pytest.mark.slow
@pytest.mark.skipif(CHECKOV is None, reason="checkov not installed (pip install checkov, or set CHECKOV)")
def test_checkov_kubernetes_policies_pass(render: Renderer, tmp_path: Path) -> None:
    assert CHECKOV is not None
    for name, values in VALUE_SETS.items():
        docs = [m for m in render(values) if m["kind"] not in {"ServiceMonitor", "PodMonitor", "PrometheusRule"}]
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    result = subprocess.run(
        [
            CHECKOV,
            "--skip-download",
            "--framework",
            "kubernetes",
            "--directory",
            str(tmp_path),
            "--skip-check",
            ",".join(ACCEPTED),
            "--output",
            "json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report: Any = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{c['check_id']} {c['check_name']} ({c['resource']})" for r in reports for c in r["results"]["failed_checks"]
    ]
    passed = sum(r["summary"]["passed"] for r in reports)
    assert failed == []
    assert passed > 50, "checkov ran no policies"
    assert result.returncode == 0, result.stderr
