"""The CI skip guard (tests/support/skipguard.py): under MODELOPS_CI=1 an unexpected skip fails the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import ROOT

TESTS = """
import pytest

def test_passes():
    pass

def test_needs_a_tool():
    pytest.skip("the tool is not installed")

@pytest.mark.e2e
def test_needs_docker():
    pytest.skip("docker info failed")

@pytest.mark.xfail(reason="known")
def test_known_bug():
    assert False
"""


def run_pytest(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(TESTS)
    env = {k: v for k, v in os.environ.items() if k != "MODELOPS_CI"} | ({"MODELOPS_CI": "1"} if ci else {})
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # the sample needs no plugin but the guard: start fast
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.support.skipguard", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path / "test_sample.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("ci", [True, False], ids=["ci", "local"])
def test_an_unexpected_skip_fails_only_ci(tmp_path: Path, ci: bool) -> None:
    result = run_pytest(tmp_path, ci)
    if ci:
        assert result.returncode == 1, result.stdout
        assert "1 unexpected skip(s): MODELOPS_CI=1 allows only `e2e`" in result.stdout
        assert "SKIPPED test_sample.py::test_needs_a_tool: the tool is not installed" in result.stdout
        assert "test_needs_docker" not in result.stdout.split("unexpected skip")[1]  # marked e2e
        assert "test_known_bug" not in result.stdout.split("unexpected skip")[1]  # xfail is not a skip
    else:
        assert result.returncode == 0, result.stdout
        assert "unexpected skip" not in result.stdout


def test_a_module_skipped_at_import_is_reported_not_a_crash(tmp_path: Path) -> None:
    """A module-level skip is a CollectReport (no keywords): named as unexpected, no INTERNALERROR."""
    (tmp_path / "test_module_skip.py").write_text('import pytest\npytest.skip("no tool", allow_module_level=True)\n')
    env = {k: v for k, v in os.environ.items() if k != "MODELOPS_CI"} | {"MODELOPS_CI": "1"}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.support.skipguard", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path / "test_module_skip.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert "INTERNALERROR" not in result.stdout + result.stderr
    assert result.returncode != 0, result.stdout  # (5 here: the only module was skipped, nothing ran)
    assert "1 unexpected skip(s)" in result.stdout
    assert "SKIPPED test_module_skip.py: no tool" in result.stdout
