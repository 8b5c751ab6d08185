"""Argo CD: the Lua health checks and ModelDeployment actions under integrations/argocd/, run with a
real Lua 5.1 given only what Argo CD's sandbox gives (tests/gitops/lua_sandbox.py); the argocd-cm
snippet generated from them; the Applications of examples/gitops/argocd."""

from __future__ import annotations

import copy
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.gitops import kstatus
from tests.gitops.argocd_testdata import ACTIONS, cli_request
from tests.gitops.lifecycle import ARGOCD, ROOT, committed
from tests.gitops.lua_sandbox import HEALTH_STATUSES, LuaScriptError, Sandbox

KINDS = ("ModelVersion", "ModelDeployment", "DriftMonitor", "ModelPolicy")
SCRIPTS = sorted(ARGOCD.glob("*/**/*.lua"))
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def lua() -> Sandbox:
    return Sandbox()


def _health(kind: str) -> str:
    return (ARGOCD / kind / "health.lua").read_text()


def _testdata() -> Iterator[tuple[str, Path]]:
    for kind in KINDS:
        for path in sorted((ARGOCD / kind / "testdata").glob("*.yaml")):
            yield kind, path


# ----------------------------------------------------------------------------- Argo CD's own test files


@pytest.mark.parametrize("kind", KINDS)
def test_health_test_yaml(lua: Sandbox, kind: str):
    """What Argo CD's TestLuaHealthScript does with health_test.yaml: every case, status and message."""
    tests = yaml.safe_load((ARGOCD / kind / "health_test.yaml").read_text())["tests"]
    inputs = {t["inputPath"] for t in tests}
    assert inputs == {f"testdata/{p.name}" for p in (ARGOCD / kind / "testdata").glob("*.yaml")}
    for case in tests:
        obj = yaml.safe_load((ARGOCD / kind / case["inputPath"]).read_text())
        assert lua.health(_health(kind), obj) == case["healthStatus"], case["inputPath"]


def test_action_test_yaml(lua: Sandbox):
    """What Argo CD's TestLuaResourceActionsScript does with action_test.yaml."""
    folder = ARGOCD / "ModelDeployment" / "actions"
    tests = yaml.safe_load((folder / "action_test.yaml").read_text())
    discovery = (folder / "discovery.lua").read_text()
    assert tests["discoveryTests"]
    assert tests["actionTests"]
    for case in tests["discoveryTests"]:
        obj = yaml.safe_load((folder / case["inputPath"]).read_text())
        assert lua.discovery(discovery, obj) == {r["name"]: r["disabled"] for r in case["result"]}, case["inputPath"]
    for case in tests["actionTests"]:
        obj = yaml.safe_load((folder / case["inputPath"]).read_text())
        expected = yaml.safe_load((folder / case["expectedOutputPath"]).read_text())
        script = (folder / case["action"] / "action.lua").read_text()
        assert lua.action(script, obj) == expected, case


def test_each_action_has_a_test_and_a_discovery_entry(lua: Sandbox):
    folder = ARGOCD / "ModelDeployment" / "actions"
    assert sorted(p.parent.name for p in folder.glob("*/action.lua")) == sorted(ACTIONS)
    tested = {t["action"] for t in yaml.safe_load((folder / "action_test.yaml").read_text())["actionTests"]}
    assert tested == set(ACTIONS)


# ----------------------------------------------------------------------------- agreement


ARGO_FOR_KSTATUS = {
    "Current": {"Healthy", "Suspended"},
    "InProgress": {"Progressing", "Suspended"},
    "Failed": {"Degraded"},
    "Terminating": {"Progressing"},
}


@pytest.mark.parametrize("name", sorted(committed()))
def test_argocd_agrees_with_kstatus(lua: Sandbox, name: str):
    obj = committed()[name]
    point = name.split("-", 1)[1]
    health = lua.health(_health(obj["kind"]), obj)
    if point == "fresh":
        assert health["status"] == "Progressing"  # not kstatus's Current: the operator has not looked yet
    else:
        assert health["status"] in ARGO_FOR_KSTATUS[kstatus.compute(obj).status], (health, obj.get("status"))


def test_a_rollback_names_the_failed_metric(lua: Sandbox):
    obj = committed()["modeldeployment-failed"]
    run = obj["status"]["analysisRuns"][-1]
    failed = next(m for m in run["measurements"] if m["phase"] == "Failed")
    health = lua.health(_health("ModelDeployment"), obj)
    assert health["status"] == "Degraded"
    assert health["message"].startswith(f"RolledBack: metric {failed['name']} failed: {failed['message']}")


def test_a_rollback_by_abort_names_no_metric(lua: Sandbox):
    obj = copy.deepcopy(committed()["modeldeployment-failed"])
    obj["status"]["analysisRuns"] = []
    health = lua.health(_health("ModelDeployment"), obj)
    assert health["status"] == "Degraded"
    assert "metric" not in health["message"]
    assert health["message"].startswith("AnalysisFailed: ")


@pytest.mark.parametrize("name", ["modeldeployment-paused", "modeldeployment-failed", "modeldeployment-healthy"])
@pytest.mark.parametrize("action", ACTIONS)
def test_actions_are_enabled_when_the_cli_accepts_and_patch_as_it_does(lua: Sandbox, name: str, action: str):
    obj = committed()[name]
    folder = ARGOCD / "ModelDeployment" / "actions"
    disabled = lua.discovery((folder / "discovery.lua").read_text(), obj)[action]
    patch = cli_request(action, obj)
    assert disabled == (patch is None)
    script = (folder / action / "action.lua").read_text()
    if patch is None:
        with pytest.raises(LuaScriptError):
            lua.action(script, obj)
        return
    out = lua.action(script, obj)
    changed = {
        k: out["status"].get(k)
        for k in set(out["status"]) | set(obj["status"])
        if out["status"].get(k) != obj["status"].get(k)
    }
    assert changed == {k: v for k, v in patch.items() if obj["status"].get(k) != v}
    assert {k: v for k, v in out.items() if k != "status"} == {k: v for k, v in obj.items() if k != "status"}


def test_promote_lifts_a_user_pause_as_the_cli_does(lua: Sandbox):
    obj = copy.deepcopy(committed()["modeldeployment-paused"])
    obj["status"]["pausedByUser"] = True
    out = lua.action((ARGOCD / "ModelDeployment" / "actions" / "promote" / "action.lua").read_text(), obj)
    assert cli_request("promote", obj) == {"promoteStep": 1, "pausedByUser": False}
    assert (out["status"]["promoteStep"], out["status"]["pausedByUser"]) == (1, False)


# ----------------------------------------------------------------------------- bad input


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def _variants(obj: Obj) -> Iterator[tuple[str, Obj]]:
    """The object with each field removed, and with each field replaced by a value of each other Lua
    type (a string, a table, a boolean; numbers are covered by the strings, tonumber() reads both)."""
    for path in _paths(obj):
        if path[0] in ("apiVersion", "kind"):
            continue
        for label, replacement in (("removed", None), ("''", ""), ("{}", {}), ("true", True)):
            variant = copy.deepcopy(obj)
            parent = variant
            for key in path[:-1]:
                parent = parent[key]
            if replacement is None:
                del parent[path[-1]]
            else:
                parent[path[-1]] = replacement
            yield f"{'.'.join(map(str, path))} {label}", variant


@pytest.mark.parametrize("kind", KINDS)
def test_the_health_checks_never_fail_on_partial_or_malformed_objects(lua: Sandbox, kind: str):
    """Every fixture of the kind, each field missing or of the wrong type: a valid status, never an error."""
    script = _health(kind)
    discovery = (ARGOCD / kind / "actions" / "discovery.lua").read_text() if kind == "ModelDeployment" else None
    objs = [yaml.safe_load(p.read_text()) for k, p in _testdata() if k == kind]
    count = 0
    for obj in objs:
        for label, variant in _variants(obj):
            try:
                health = lua.health(script, variant)
                if discovery is not None:
                    lua.discovery(discovery, variant)
            except LuaScriptError as exc:
                pytest.fail(f"{kind} {obj['metadata'].get('name')} with {label}: {exc}")
            assert health["status"] in HEALTH_STATUSES, (label, health)
            assert health["status"] != "Unknown", (label, health)
            assert isinstance(health["message"], str)
            count += 1
    assert count > 500


def test_the_sandbox_is_argo_cds():
    """What the scripts may not use fails here as it does in Argo CD (no string, math, io, os global)."""
    lua = Sandbox()
    for snippet in (
        'string.format("%d", 1)',
        "math.floor(1.5)",
        'io.open("/etc/passwd")',
        "os.exit(1)",
        '("x"):upper()',
    ):
        with pytest.raises(LuaScriptError):
            lua.run(f"return {snippet}", {})
    assert lua.run('local os = require("os"); return type(os.time())', {}) == "number"
    assert lua.run("return table.concat({'a', 'b'}, ',')", {}) == "a,b"
    assert lua.run("return _VERSION", {}) == "Lua 5.1"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(ARGOCD)))
def test_scripts_use_no_library_outside_the_sandbox(path: Path):
    code = "\n".join(line.split("--", 1)[0] for line in path.read_text().splitlines())
    used = re.findall(r"\b(string|math|io|os|debug|coroutine|utf8)\s*[.:]", code)
    assert not used, f"{path.name} uses {sorted(set(used))}: absent from Argo CD's Lua sandbox"
    assert not re.search(r"[\"')\]]\s*:\s*[a-z]+\s*\(", code), f"{path.name}: string methods need the string library"


# ----------------------------------------------------------------------------- argocd-cm


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("argocd_generate", ROOT / "integrations" / "argocd" / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_argocd_cm_snippet_is_current():
    gen = _generator()
    assert gen.OUTPUT.read_text() == gen.render(), (
        "integrations/argocd/argocd-cm.yaml is stale: run python3 integrations/argocd/generate.py"
    )


def test_the_argocd_cm_snippet_carries_every_script():
    data = yaml.safe_load((ROOT / "integrations" / "argocd" / "argocd-cm.yaml").read_text())["data"]
    assert sorted(data) == [
        "resource.customizations.actions.modelops.dev_ModelDeployment",
        "resource.customizations.health.modelops.dev_DriftMonitor",
        "resource.customizations.health.modelops.dev_ModelDeployment",
        "resource.customizations.health.modelops.dev_ModelPolicy",
        "resource.customizations.health.modelops.dev_ModelVersion",
    ]
    for kind in KINDS:
        assert data[f"resource.customizations.health.modelops.dev_{kind}"] == _health(kind)
    actions = yaml.safe_load(data["resource.customizations.actions.modelops.dev_ModelDeployment"])
    folder = ARGOCD / "ModelDeployment" / "actions"
    assert actions["discovery.lua"] == (folder / "discovery.lua").read_text()
    assert {d["name"]: d["action.lua"] for d in actions["definitions"]} == {
        a: (folder / a / "action.lua").read_text() for a in ACTIONS
    }


# ----------------------------------------------------------------------------- examples/gitops/argocd


EXAMPLES = ROOT / "examples" / "gitops" / "argocd"


def _applications() -> dict[str, Obj]:
    apps = {}
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        obj = yaml.safe_load(path.read_text())
        assert (obj["apiVersion"], obj["kind"]) == ("argoproj.io/v1alpha1", "Application"), path
        apps[obj["metadata"]["name"]] = obj
    return apps


def test_the_applications_are_well_formed():
    apps = _applications()
    assert sorted(apps) == ["ml-team-models", "modelops-operator", "modelops-root"]
    allowed = {"project", "source", "destination", "syncPolicy", "ignoreDifferences"}
    for name, app in apps.items():
        assert app["metadata"]["namespace"] == "argocd", name
        assert set(app["spec"]) <= allowed, name
        src = app["spec"]["source"]
        assert src["repoURL"] == "https://github.com/modelops/modelops.git", name
        assert (ROOT / src["path"]).is_dir(), name
        assert {"server", "namespace"} <= set(app["spec"]["destination"]), name
    root = apps["modelops-root"]["spec"]["source"]["path"]
    assert sorted(p.name for p in (ROOT / root).glob("*.yaml")) == ["ml-team-models.yaml", "modelops-operator.yaml"]


def test_sync_waves_put_the_operator_and_its_crds_first():
    from tests.support.render_chart import render_documents

    apps = _applications()
    wave = {
        n: int(a["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0")) for n, a in apps.items()
    }
    assert wave["modelops-operator"] < wave["ml-team-models"]
    operator = apps["modelops-operator"]["spec"]
    assert operator["source"]["path"] == "charts/modelops"
    docs = [
        yaml.safe_load(d)
        for d in render_documents(operator["source"]["helm"]["valuesObject"], namespace="modelops-system")
    ]
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    assert set(KINDS) <= {d["spec"]["names"]["kind"] for d in crds}
    others = [
        int((d["metadata"].get("annotations") or {}).get("argocd.argoproj.io/sync-wave", "0"))
        for d in docs
        if d not in crds
    ]
    for crd in crds:
        annotations = crd["metadata"]["annotations"]
        assert int(annotations["argocd.argoproj.io/sync-wave"]) < min(others)
        assert "Prune=false" in annotations["argocd.argoproj.io/sync-options"]


def test_the_team_app_ignores_the_stage_the_operator_writes():
    team = _applications()["ml-team-models"]["spec"]
    assert team["source"]["path"] == "examples/gitops/models"
    assert team["ignoreDifferences"] == [
        {"group": "modelops.dev", "kind": "ModelVersion", "jsonPointers": ["/spec/stage"]}
    ]
    # Git drives the stages in the example: a sync must still apply a stage change from Git
    assert "RespectIgnoreDifferences=true" not in team["syncPolicy"].get("syncOptions", [])
    assert "CreateNamespace=true" in team["syncPolicy"]["syncOptions"]
