"""`modelops --help` and every `<command> --help` start without the heavy stack (issue 11).

A behaviour test, not a timing one: each help runs as its own process under ``python -X
importtime`` and the modules it imported are read back from that report. Building the parsers
must need the standard library and light modelops modules only; numpy, scipy, pydantic,
kubernetes, kopf, aiohttp and the rest are imported by a command when it runs. (Timings:
benchmarks/cli/README.md.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from modelops.cli import COMMANDS

HEAVY = (
    "aiohttp",
    "celpy",
    "fsspec",
    "joblib",
    "kmock",
    "kopf",
    "kubernetes",
    "numpy",
    "onnxruntime",
    "pandas",
    "prometheus_client",
    "pyarrow",
    "pydantic",
    "scipy",
    "sklearn",
    "urllib3",
    "yaml",
)
"""Third-party packages no help may import: each costs 0.1-2 s of startup on 2 cores."""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "PYTHONPROFILEIMPORTTIME")}


def imported_by(*argv: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -X importtime -m modelops ARGV``; the top-level packages it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "modelops", *argv],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        check=False,
    )
    # "import time:   self [us] | cumulative | <indent>package.module"
    packages = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    packages.discard("imported package")  # the report's header line
    return done, packages


def test_the_command_list_is_what_the_issue_names() -> None:
    """Every command below gets its own process; none may be missing from the list."""
    assert {"crds", "run", "registry", "rollout", "sandbox", "demo", "drift", "serve"} <= set(COMMANDS)


def test_the_report_is_read_right() -> None:
    """The reader finds what a command that runs does import (so an empty set is not a blind spot)."""
    done, packages = imported_by("registry", "register", "--help")
    assert done.returncode == 0
    assert {"modelops", "argparse", "encodings"} <= packages
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import yaml"], capture_output=True, text=True, check=True
    )
    assert "yaml" in {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.count("|") == 2}


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_imports_nothing_heavy(command: str) -> None:
    argv = [command, "--help"] if command else ["--help"]
    done, packages = imported_by(*argv)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage: modelops"), done.stdout[:300]
    assert sorted(packages & set(HEAVY)) == []


def test_every_subcommand_help_imports_nothing_heavy() -> None:
    """Every `modelops <group> <sub> --help` in one process, then what that process holds."""
    code = """
import argparse, contextlib, io, json, sys
from modelops.cli import COMMANDS, build_parser, main

def subcommands(group):
    parser = build_parser([group])
    for action in parser._subparsers._group_actions:
        sub = action.choices[group]
        for inner in sub._actions:
            if isinstance(inner, argparse._SubParsersAction):
                return list(inner.choices)
    return []

seen = []
for group in COMMANDS:
    for name in subcommands(group):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main([group, name, "--help"])
        assert out.getvalue().startswith("usage: modelops " + group + " " + name), (group, name)
        seen.append(group + " " + name)
print(json.dumps({"seen": seen, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.splitlines()[-1])
    # The groups with subcommands, and a few of theirs: the walk really walked.
    assert {"drift check", "drift profile", "registry register", "rollout status", "sandbox up"} <= set(report["seen"])
    assert sorted(set(report["modules"]) & set(HEAVY)) == []


def test_registry_stage_choices_are_the_api_stages() -> None:
    """`registry promote --to` lists the stages without importing the API models: same values."""
    from modelops.api.modelversion import Stage
    from modelops.commands.registry import STAGES

    assert STAGES == ("None", "Staging", "Production", "Archived")
    assert [s.value for s in Stage] == list(STAGES)


def test_python_dash_m_modelops_is_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "modelops", "--version"], capture_output=True, text=True, env=_env(), check=False
    )
    assert (done.returncode, done.stdout.split()[0]) == (0, "modelops")
