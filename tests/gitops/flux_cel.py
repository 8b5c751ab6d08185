"""Flux's health check expressions (``Kustomization.spec.healthCheckExprs``), as docs/gitops.md
gives them, evaluated the way kustomize-controller does (fluxcd/pkg ``runtime/cel``
``StatusEvaluator.Evaluate``), with cel-python in place of cel-go:

1. ``status.observedGeneration`` present and different from ``metadata.generation``: InProgress
   (no expression is evaluated);
2. ``inProgress``, ``failed``, ``current`` in that order: the first that is true decides;
3. none true: InProgress. An expression that fails to evaluate is an error: Flux then reports the
   resource's status as Unknown and keeps waiting until the Kustomization's timeout.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import celpy
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "gitops.md"
FLUX_KUSTOMIZATION = ROOT / "examples" / "gitops" / "flux" / "cluster" / "ml-team-models.yaml"

_YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


@cache
def documented_exprs() -> dict[str, dict[str, str]]:
    """kind -> {inProgress, failed, current}, from the docs' yaml block with ``healthCheckExprs``."""
    for block in _YAML_BLOCK.findall(DOC.read_text()):
        doc = yaml.safe_load(block)
        exprs = (doc or {}).get("spec", {}).get("healthCheckExprs") if isinstance(doc, dict) else None
        if exprs:
            return {e["kind"]: {k: e[k] for k in ("inProgress", "failed", "current") if k in e} for e in exprs}
    raise AssertionError(f"no yaml block with spec.healthCheckExprs in {DOC}")


@cache
def _programs(kind: str) -> tuple[tuple[str, Any], ...]:
    env = celpy.Environment()
    exprs = documented_exprs()[kind]
    return tuple(
        (key, env.program(env.compile(exprs[key]))) for key in ("inProgress", "failed", "current") if key in exprs
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def flux_status(obj: Mapping[str, Any]) -> str:
    """InProgress, Failed, Current, or Unknown (an expression failed to evaluate)."""
    status = obj.get("status") or {}
    observed = _int(status.get("observedGeneration"))
    generation = _int((obj.get("metadata") or {}).get("generation"))
    if observed is not None and generation is not None and observed != generation:
        return "InProgress"
    activation = {key: celpy.json_to_cel(value) for key, value in obj.items()}
    verdict = {"inProgress": "InProgress", "failed": "Failed", "current": "Current"}
    for key, program in _programs(str(obj["kind"])):
        try:
            result = program.evaluate(activation)
        except Exception:  # cel-python raises for some evaluation errors and returns others
            return "Unknown"
        if isinstance(result, celpy.CELEvalError):
            return "Unknown"
        if bool(result):
            return verdict[key]
    return "InProgress"
