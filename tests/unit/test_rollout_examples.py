"""The ModelDeployments in examples/rollout parse with the API models and pass the CRD's CEL rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelops.api.crdgen import KINDS, crd
from modelops.api.modeldeployment import ModelDeploymentSpec
from modelops.sandbox.schema import validate_cel

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "rollout").glob("*.yaml"))


def deployments(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == "ModelDeployment"]


def test_there_is_an_example_per_routing_mode():
    specs = [ModelDeploymentSpec.model_validate(d["spec"]) for p in EXAMPLES for d in deployments(p)]
    modes = {bool(s.strategy.canary and s.strategy.canary.traffic_routing) for s in specs}
    assert modes == {False, True}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid(path):
    schema = next(crd(k) for k in KINDS if k.kind == "ModelDeployment")["spec"]["versions"][0]["schema"]
    for doc in deployments(path):
        ModelDeploymentSpec.model_validate(doc["spec"])
        spec_schema = schema["openAPIV3Schema"]["properties"]["spec"]
        assert validate_cel(doc["spec"], None, spec_schema, "spec", has_old=False) == []
