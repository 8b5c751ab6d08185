"""The operator's status of all four kinds, live: the real operator against the sandbox API
server, driven through every lifecycle point once for the module (tests/gitops/lifecycle.py).

- every status the operator ever wrote carries ``observedGeneration`` and the kstatus conditions
  (Ready, Reconciling, Stalled), from the first write on: never a status a GitOps tool would
  misread as "done" or "no conditions";
- kstatus reads each point as intended, and the committed fixtures (tests/gitops/fixtures and the
  Argo CD testdata) are what the operator writes today;
- the team's models of examples/gitops/models become Current for kstatus, Flux and Argo CD.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from tests.gitops import kstatus
from tests.gitops.lifecycle import ARGOCD, Capture, capture, committed, dump, fixtures, load
from tests.gitops.test_kstatus import EXPECTED

pytestmark = pytest.mark.slow

REGEN = "python -m tests.gitops.lifecycle --write"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Capture:
    return capture(tmp_path_factory.mktemp("gitops-lifecycle"))


def _conditions(obj: dict) -> dict[str, dict]:
    return {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}


def test_every_status_write_has_observed_generation_and_the_kstatus_conditions(live: Capture):
    written = [v for v in live.versions if v.get("status")]
    kinds = {v["kind"] for v in written}
    assert kinds == {"ModelVersion", "ModelDeployment", "DriftMonitor", "ModelPolicy"}
    for obj in written:
        name = f"{obj['kind']}/{obj['metadata']['name']} rv {obj['metadata'].get('resourceVersion')}"
        status, conds = obj["status"], _conditions(obj)
        assert isinstance(status.get("observedGeneration"), int), f"{name}: no observedGeneration: {status}"
        assert {"Ready", "Reconciling", "Stalled"} <= set(conds), f"{name}: conditions {sorted(conds)}"
        both = conds["Reconciling"]["status"] == conds["Stalled"]["status"] == "True"
        assert not both, f"{name}: Reconciling and Stalled both True"
        for c in conds.values():
            assert c.get("status") in ("True", "False", "Unknown"), f"{name}: {c}"
            assert c.get("reason"), f"{name}: {c}"


def test_the_first_status_of_each_object_is_complete(live: Capture):
    """The very first write (the first reconcile) is already complete, for every object."""
    first: dict[tuple[str, str], dict] = {}
    for v in live.versions:
        if v.get("status"):
            first.setdefault((v["kind"], v["metadata"]["name"]), v)
    assert len(first) >= 15
    for (kind, name), obj in first.items():
        conds = _conditions(obj)
        assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"], (kind, name)
        assert all(
            conds[t].get("observedGeneration") == obj["metadata"]["generation"]
            for t in ("Ready", "Reconciling", "Stalled")
        )


@pytest.mark.parametrize("point", sorted(EXPECTED))
def test_kstatus_on_the_live_objects(live: Capture, point: str):
    objs = {n: o for n, o in live.snapshots.items() if n.split("-", 1)[1] == point}
    assert objs
    for name, obj in objs.items():
        assert kstatus.compute(obj).status == EXPECTED[point], (name, obj.get("status"))


def test_the_committed_fixtures_are_current(live: Capture):
    now = fixtures(live)
    saved = committed()
    assert sorted(saved) == sorted(now), f"fixtures differ in names: regenerate with `{REGEN}`"
    for name, obj in now.items():
        if saved[name] != obj:
            diff = "\n".join(difflib.unified_diff(dump(saved[name]).splitlines(), dump(obj).splitlines(), lineterm=""))
            pytest.fail(f"tests/gitops/fixtures/{name}.yaml is stale (regenerate with `{REGEN}`):\n{diff}")


def test_the_argocd_testdata_are_the_fixtures(live: Capture):
    """Argo CD's testdata/<point>.yaml are copies of the fixtures (same generator)."""
    for name, obj in fixtures(live).items():
        kind_dir = {
            "modelversion": "ModelVersion",
            "modeldeployment": "ModelDeployment",
            "driftmonitor": "DriftMonitor",
            "modelpolicy": "ModelPolicy",
        }
        kind, point = name.split("-", 1)
        path: Path = ARGOCD / kind_dir[kind] / "testdata" / f"{point}.yaml"
        assert load(path) == obj, f"{path} is stale: regenerate with `{REGEN}`"


def test_the_example_models_become_current(live: Capture):
    from tests.gitops.flux_cel import flux_status
    from tests.gitops.lua_sandbox import Sandbox

    assert sorted(live.examples) == ["DriftMonitor/churn-drift", "ModelDeployment/churn", "ModelVersion/churn-v1"]
    lua = Sandbox()
    for name, obj in live.examples.items():
        assert kstatus.compute(obj).status == "Current", (name, obj.get("status"))
        assert flux_status(obj) == "Current", name
        health = lua.health((ARGOCD / obj["kind"] / "health.lua").read_text(), obj)
        assert health["status"] == "Healthy", (name, health)
