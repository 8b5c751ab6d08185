"""The CLI's own words match what it does: help without markup, kubectl columns that show what is set."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from modelops.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _parsers(parser: argparse.ArgumentParser, path: str = "modelops") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_help_has_no_markup() -> None:
    """`--help` is read in a terminal: no RST ``literals`` or Markdown `code` quotes."""
    seen = []
    for path, parser in _parsers(build_parser()):
        text = parser.format_help()
        assert "`" not in text, f"{path} --help shows markup:\n{text}"
        seen.append(path)
    assert {"modelops serve", "modelops drift check", "modelops registry register", "modelops run"} <= set(seen)


DRIFT_MONITORS = """
apiVersion: modelops.dev/v1alpha1
kind: DriftMonitor
metadata: {name: on-version}
spec: {target: {modelVersion: churn-v2}, schedule: "@hourly"}
---
apiVersion: modelops.dev/v1alpha1
kind: DriftMonitor
metadata: {name: on-deployment}
spec: {target: {deployment: churn}, schedule: "@hourly"}
"""


@pytest.mark.kubectl
def test_kubectl_get_dm_shows_the_target_of_either_kind(kubeconfig: Path, tmp_path: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(tmp_path / "cache")}

    def kubectl(*args: str, stdin: str | None = None) -> str:
        proc = subprocess.run(["kubectl", *args], env=env, input=stdin, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    kubectl("apply", "-f", "-", stdin=DRIFT_MONITORS)
    rows = [line.split() for line in kubectl("get", "dm").splitlines()]
    assert rows[0][:3] == ["NAME", "TARGET", "SCHEDULE"]
    assert {row[0]: row[1] for row in rows[1:]} == {"on-deployment": "churn", "on-version": "churn-v2"}


def test_the_dm_target_column_covers_both_fields() -> None:
    crd = yaml.safe_load((ROOT / "crds" / "driftmonitors.modelops.dev.yaml").read_text())
    columns = {c["name"]: c["jsonPath"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns["Target"] == ".spec.target['deployment','modelVersion']"


def test_serve_exit_codes_agree_in_docs_help_and_code() -> None:
    from modelops.commands import serve
    from modelops.server import runtime

    documented = {
        int(m.group(1)) for m in re.finditer(r"^\| (\d) \|", (ROOT / "docs" / "serving.md").read_text(), re.M)
    }
    help_text = " ".join(modelops_help("serve").split())
    in_help = {int(n) for n in re.findall(r"(\d) [a-z]", help_text.split("Exit codes:")[1].split(".")[0])}
    in_code = {
        0,
        serve.EXIT_USAGE,
        runtime.EXIT_DIGEST_MISMATCH,
        runtime.EXIT_UNREACHABLE,
        runtime.EXIT_LOAD_FAILED,
        runtime.EXIT_WORKER_DIED,
        runtime.EXIT_BIND_FAILED,
    }
    assert documented == in_help == in_code == {0, 2, 3, 4, 5, 6, 7}
    assert (serve.EXIT_USAGE, runtime.EXIT_BIND_FAILED) == (2, 7)


def modelops_help(command: str) -> str:
    parser = build_parser([command])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return sub.format_help()
