"""The README's code blocks run, from the checkout, as written.

Each shell or YAML block carries a marker comment on the line before it:

    <!-- readme-test: run -->                    run here (bash -e), in a temp dir beside the checkout's examples/
    <!-- readme-test: run, exit 1 -->            ... and the block ends with that exit code
    <!-- readme-test: run in sandbox -->         run with KUBECONFIG set to the sandbox cluster (operator, pods)
    <!-- readme-test: run against apiserver -->  run with KUBECONFIG set to a bare fake API server
    <!-- readme-test: apply -->                  a YAML manifest: `kubectl apply -f -` must accept it
    <!-- readme-test: skip: <reason> -->         not run here, and why

A block without a marker fails the first test, so a new block is either run or says why not.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelops.k8s.resources import MODEL_DEPLOYMENT, MODEL_VERSION, NotFound
from tests.cli.conftest import ROOT
from tests.support.cluster import SandboxCluster

README = ROOT / "README.md"
FENCE = re.compile(r"(?:<!-- readme-test: (?P<marker>.*?) -->\n)?```(?P<lang>\w*)\n(?P<body>.*?)^```", re.S | re.M)
CHECKED = {"bash", "sh", "yaml"}


@dataclass(frozen=True)
class Block:
    line: int
    lang: str
    body: str
    marker: str

    @property
    def mode(self) -> str:
        return self.marker.split(",")[0].split(":")[0].strip()

    @property
    def exit_code(self) -> int:
        found = re.search(r"\bexit (\d+)", self.marker)
        return int(found.group(1)) if found else 0

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.marker or 'no marker'})"


def blocks() -> list[Block]:
    text = README.read_text()
    return [
        Block(text.count("\n", 0, m.start("lang")) + 1, m["lang"], m["body"], (m["marker"] or "").strip())
        for m in FENCE.finditer(text)
        if m["lang"] in CHECKED
    ]


def of_mode(mode: str) -> list[Block]:
    return [b for b in blocks() if b.mode == mode]


def test_every_block_says_whether_it_runs() -> None:
    found = blocks()
    assert len(found) >= 8
    for block in found:
        assert block.mode in {"run", "run in sandbox", "run against apiserver", "apply", "skip"}, str(block)
        if block.mode == "skip":
            assert len(block.marker) > len("skip: ") + 10, f"{block}: say why it is not run"


def test_no_block_names_a_file_the_checkout_lacks() -> None:
    """Paths under examples/, crds/ and charts/ that a block names exist."""
    for block in blocks():
        for path in re.findall(r"\b((?:examples|crds|charts)/[\w./-]*)", block.body):
            assert (ROOT / path).exists(), f"{block}: {path} does not exist"


def test_examples_name_only_files_that_exist() -> None:
    """An example manifest's ${MODELOPS_EXAMPLES}/... URIs and examples/... paths (comments too) exist."""
    for manifest in sorted((ROOT / "examples").rglob("*.yaml")):
        text = manifest.read_text()
        named = [f"examples/{p}" for p in re.findall(r"\$\{MODELOPS_EXAMPLES\}/([\w./-]+)", text)]
        named += re.findall(r"(?<![\w/])(examples/[\w./-]*[\w/])", text)
        for path in named:
            assert (ROOT / path).exists(), f"{manifest.relative_to(ROOT)} names {path}, which does not exist"


def run_block(block: Block, cwd: Path, env: dict[str, str], timeout: float = 240) -> str:
    for name in ("examples", "crds", "charts"):
        if not (cwd / name).exists():
            (cwd / name).symlink_to(ROOT / name)
    full_env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "MODELOPS_PROMETHEUS_URL")} | env
    full_env.setdefault("KUBECACHEDIR", str(cwd / ".kube-cache"))
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block.body],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == block.exit_code, f"{block} exited {result.returncode}:\n{output}"
    assert "Traceback" not in output, f"{block}:\n{output}"
    return output


def test_local_blocks_run(tmp_path: Path) -> None:
    local = of_mode("run")
    assert len(local) >= 2
    for port in (8080, 8082):  # the serve block's ports, as a user types them
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                pytest.fail(f"port {port} is in use on this machine; the README's serve block needs it")
    outputs = {}
    for block in local:
        outputs[block.line] = run_block(block, tmp_path, {})
    everything = "\n".join(outputs.values())
    assert "modelops_inference_requests_total{" in everything  # the serve block answered and counted
    assert '"model_name":"churn"' in everything.replace(" ", "")
    assert "does not have valid feature names" not in everything  # scikit-learn's warning stays out of the log
    assert "too few to trust" not in everything  # the examples are large enough
    assert (tmp_path / "report.html").read_text().lower().startswith("<!doctype html>")


def test_apiserver_blocks_run(kubeconfig: Path, tmp_path: Path) -> None:
    remote = of_mode("run against apiserver")
    assert remote
    for block in remote:
        run_block(block, tmp_path, {"KUBECONFIG": str(kubeconfig)})


def test_yaml_blocks_apply(kubeconfig: Path, tmp_path: Path) -> None:
    manifests = of_mode("apply")
    assert manifests
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(tmp_path / "cache")}
    for block in manifests:
        result = subprocess.run(
            ["kubectl", "apply", "-f", "-"], input=block.body, env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"{block}: {result.stderr}"


def test_sandbox_blocks_run(sandbox_cluster: SandboxCluster, tmp_path: Path) -> None:
    """In README order (the rollout follows the registry), in the cluster's default namespace."""
    remote = of_mode("run in sandbox")
    assert len(remote) >= 2
    try:
        outputs = [run_block(b, tmp_path, {"KUBECONFIG": str(sandbox_cluster.kubeconfig)}) for b in remote]
        registry = outputs[0]
        assert "churn-v2: churn 2 [Production, Verified]" in registry  # lineage, after both promotions
        assert "  churn-v1: churn 1 [" in registry
        assert "newest Production approved version of churn" in outputs[1]
    finally:
        for kind, name in ((MODEL_DEPLOYMENT, "churn"), (MODEL_VERSION, "churn-v2"), (MODEL_VERSION, "churn-v1")):
            with contextlib.suppress(NotFound):
                sandbox_cluster.objects.delete(kind, "default", name)
