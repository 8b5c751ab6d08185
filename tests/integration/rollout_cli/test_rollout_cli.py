"""`modelops rollout ...` as a real process against the sandbox API server.

Write commands must change exactly the status fields they ask for (through the status
subresource), never spec or generation; `undo` alone edits spec.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops.cli import main
from modelops.k8s.client import load_api_client
from modelops.k8s.resources import MODEL_DEPLOYMENT, CustomObjects
from tests.integration.rollout_cli.conftest import (
    PROGRESSING,
    InterleavingProxy,
    create_version,
    create_with_status,
    model_deployment,
    run_cli,
)
from tests.support.faultproxy import kubeconfig_for

Obj = dict[str, Any]


def merged(status: Obj, patch: Obj) -> Obj:
    out = dict(status)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def in_process(capsys: pytest.CaptureFixture[str], kubeconfig: Path | str, *argv: str) -> tuple[int, str, str]:
    """The same CLI through `main()` (the refusals and errors: a process start saved per case)."""
    code = main(["rollout", *argv, "--kubeconfig", str(kubeconfig)])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(api: CustomObjects, name: str = "churn") -> Obj:
    return api.get(MODEL_DEPLOYMENT, "default", name)


# (command, status before, exact status patch expected, stdout line)
WRITES = [
    (
        ["promote"],
        PROGRESSING,
        {"promoteStep": 0},
        "modeldeployment/churn: requested to advance churn-v2 past step 1/4 (setWeight 20)",
    ),
    (
        ["promote", "--full"],
        {**PROGRESSING, "pausedByUser": True},
        {"promoteFull": True, "pausedByUser": False},
        "modeldeployment/churn: requested full promotion of churn-v2 and lifted the user pause: "
        "the remaining steps are skipped and it becomes stable",
    ),
    (
        ["pause"],
        PROGRESSING,
        {"pausedByUser": True},
        "modeldeployment/churn: requested pause at step 1/4 (setWeight 20), canary churn-v2 at 20%",
    ),
    (
        ["resume"],
        {**PROGRESSING, "pausedByUser": True},
        {"pausedByUser": False},
        "modeldeployment/churn: requested resume of churn-v2",
    ),
    (
        ["abort"],
        PROGRESSING,
        {"abort": True},
        "modeldeployment/churn: requested abort: canary churn-v2 to 0%, churn-v1 back to 100%",
    ),
    (
        ["retry"],
        {
            "phase": "RolledBack",
            "observedGeneration": 1,
            "stableVersion": "churn-v1",
            "failedVersion": "churn-v2",
            "abort": True,
        },
        {"abort": False, "failedVersion": None},
        "modeldeployment/churn: requested retry: churn-v2 will be rolled out again from the first step",
    ),
]


@pytest.mark.parametrize(("argv", "before", "patch", "line"), WRITES, ids=[" ".join(w[0]) for w in WRITES])
def test_write_command_patches_exactly_its_status_fields_and_never_spec(
    kubeconfig: Path, objects: CustomObjects, argv: list[str], before: Obj, patch: Obj, line: str
) -> None:
    create_with_status(objects, model_deployment(), before)
    old = snapshot(objects)
    result = run_cli(kubeconfig, *argv, "churn")
    assert result.returncode == 0, result.stderr
    assert result.stdout == line + "\n"
    new = snapshot(objects)
    assert new["status"] == merged(old["status"], patch)
    assert new["spec"] == old["spec"]
    assert new["metadata"]["generation"] == old["metadata"]["generation"] == 1


@pytest.mark.parametrize(
    ("argv", "status", "error"),
    [
        (
            ["promote"],
            {"phase": "Healthy", "observedGeneration": 1, "stableVersion": "churn-v2"},
            "modeldeployment/churn has no canary in progress (phase Healthy, churn-v2 serves 100%): nothing to promote",
        ),
        (
            ["retry"],
            {"phase": "Healthy", "observedGeneration": 1, "stableVersion": "churn-v2"},
            "modeldeployment/churn: nothing failed (phase Healthy): retry rolls a rolled-back version out again",
        ),
        (["pause"], {**PROGRESSING, "pausedByUser": True}, "modeldeployment/churn is already paused"),
        (
            ["resume"],
            {**PROGRESSING, "phase": "Paused", "currentStepIndex": 1},
            "modeldeployment/churn waits at step 2/4 (pause (until promoted)), a step, not a user pause: "
            "`modelops rollout promote churn` goes on",
        ),
    ],
)
def test_refusal_is_one_line_exit_1_and_writes_nothing(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    objects: CustomObjects,
    argv: list[str],
    status: Obj,
    error: str,
) -> None:
    create_with_status(objects, model_deployment(), status)
    old = snapshot(objects)
    assert in_process(capsys, kubeconfig, *argv, "churn") == (1, "", f"modelops: error: {error}\n")
    assert snapshot(objects)["metadata"]["resourceVersion"] == old["metadata"]["resourceVersion"]


def test_conflict_is_retried_on_the_fresh_object(apiserver, tmp_path: Path, objects: CustomObjects) -> None:
    """The operator moves to step 2 between our read and our write: the 409 makes the CLI decide
    again, so it promotes past the step the rollout is at now, not the one it first saw."""
    create_with_status(objects, model_deployment(), PROGRESSING)

    def operator_advances() -> None:
        objects.patch_status(MODEL_DEPLOYMENT, "default", "churn", {"currentStepIndex": 1, "phase": "Paused"})

    with InterleavingProxy(apiserver.url, operator_advances) as proxy:
        kc = kubeconfig_for(proxy.url, str(tmp_path / "proxied"))
        result = run_cli(kc, "promote", "churn")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "modeldeployment/churn: requested to advance churn-v2 past step 2/4 (pause (until promoted))\n"
    )
    patches = [(m, s) for m, p, s in proxy.requests if m == "PATCH"]
    assert patches == [("PATCH", 409), ("PATCH", 200)]
    status = snapshot(objects)["status"]
    assert (status["currentStepIndex"], status["promoteStep"]) == (1, 1)


def _start_status(kubeconfig: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "modelops.cli", "rollout", "status", "churn", "--kubeconfig", str(kubeconfig), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.timeout(30)
def test_status_waits_for_the_new_generation_then_exits_0_when_healthy(
    kubeconfig: Path, objects: CustomObjects
) -> None:
    create_with_status(
        objects, model_deployment(), {"phase": "Healthy", "observedGeneration": 1, "stableVersion": "churn-v1"}
    )
    # A new spec the operator has not seen: the old Healthy status must not count as done.
    objects.patch(MODEL_DEPLOYMENT, "default", "churn", {"spec": {"replicas": 4}})
    proc = _start_status(kubeconfig, "--timeout", "20s")
    assert proc.stdout is not None
    assert proc.stdout.readline() == (
        'Waiting for modeldeployment "churn" to be observed by the operator (generation 2, observed 1)...\n'
    )
    objects.patch_status(MODEL_DEPLOYMENT, "default", "churn", {**PROGRESSING, "observedGeneration": 2})
    assert proc.stdout.readline() == (
        'Waiting for modeldeployment "churn" rollout of churn-v2 to finish: '
        "step 1/4 setWeight 20, canary weight 20%, canary 1/1 ready...\n"
    )
    objects.patch_status(
        MODEL_DEPLOYMENT,
        "default",
        "churn",
        {
            "phase": "Healthy",
            "stableVersion": "churn-v2",
            "canaryVersion": None,
            "currentStepIndex": None,
            "canaryWeight": 0,
            "tracks": {"stable": {"version": "churn-v2", "replicas": 4, "readyReplicas": 4}, "canary": None},
        },
    )
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert out == 'modeldeployment "churn" successfully rolled out: churn-v2 serves 100%, 4/4 ready\n'


@pytest.mark.timeout(30)
def test_status_exits_1_with_reason_and_message_when_rolled_back(kubeconfig: Path, objects: CustomObjects) -> None:
    create_with_status(objects, model_deployment(), PROGRESSING)
    proc = _start_status(kubeconfig)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith('Waiting for modeldeployment "churn" rollout of churn-v2')
    objects.patch_status(
        MODEL_DEPLOYMENT,
        "default",
        "churn",
        {
            "phase": "RolledBack",
            "canaryVersion": None,
            "failedVersion": "churn-v2",
            "message": "errorRate errors = 0.2 > max 0.01",
            "conditions": [
                {"type": "Stalled", "status": "True", "reason": "AnalysisFailed", "message": "errors 0.2 > 0.01"}
            ],
        },
    )
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 1
    assert out == ""
    assert err == (
        'modelops: error: modeldeployment "churn" RolledBack (AnalysisFailed): errorRate errors = 0.2 > max 0.01\n'
    )


def test_status_times_out_with_exit_2(kubeconfig: Path, objects: CustomObjects) -> None:
    create_with_status(objects, model_deployment(), PROGRESSING)
    result = run_cli(kubeconfig, "status", "churn", "--timeout", "1s")
    assert result.returncode == 2
    assert result.stdout.startswith('Waiting for modeldeployment "churn" rollout of churn-v2 to finish')
    assert (
        result.stderr == 'modelops: error: timed out after 1s waiting for modeldeployment "churn" (phase Progressing)\n'
    )


def test_get_shows_steps_replicas_and_measurements(kubeconfig: Path, objects: CustomObjects) -> None:
    status = {
        **PROGRESSING,
        "currentStepIndex": 2,
        "stepStartedAt": "2026-11-30T11:00:00Z",
        "analysisRuns": [
            {
                "stepIndex": 2,
                "startedAt": "2026-11-30T11:00:00Z",
                "version": "churn-v2",
                "measurements": [
                    {"name": "errors", "value": 0.004, "stableValue": 0.003, "samples": 640, "phase": "Successful"}
                ],
            }
        ],
    }
    create_with_status(objects, model_deployment(), status)
    result = run_cli(kubeconfig, "get", "churn")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        "Name:          churn",
        "Namespace:     default",
        "Model:         churn-v2 (versionRef)",
        "Phase:         Progressing",
    ]
    assert "Stable:        churn-v1   3/3 ready" in lines
    assert "Canary:        churn-v2   1/1 ready" in lines
    assert lines[lines.index("Steps:") + 1 :][:4] == [
        "  [x] 1/4  setWeight 20",
        "  [x] 2/4  pause (until promoted)",
        "  [>] 3/4  analysis errors",
        "  [ ] 4/4  setWeight 60",
    ]
    assert "  errors   1/3     0.004    0.003    640       Successful" in lines


@pytest.mark.timeout(30)
def test_get_watch_appends_a_block_per_change_and_exits_when_healthy(kubeconfig: Path, objects: CustomObjects) -> None:
    create_with_status(objects, model_deployment(), PROGRESSING)
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelops.cli", "rollout", "get", "churn", "--watch", "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = [proc.stdout.readline() for _ in range(4)]
    assert first[3] == "Phase:         Progressing\n"
    objects.patch_status(MODEL_DEPLOYMENT, "default", "churn", {"currentStepIndex": 1, "phase": "Paused"})
    objects.patch_status(
        MODEL_DEPLOYMENT,
        "default",
        "churn",
        {"phase": "Healthy", "stableVersion": "churn-v2", "canaryVersion": None, "currentStepIndex": None},
    )
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    blocks = ("".join(first) + out).split("\n\nName:")
    assert "Phase:         Healthy" in blocks[-1]
    assert "\x1b[" not in out  # no terminal: blocks are appended, never cleared
    assert len(blocks) >= 2


def test_undo_sets_version_ref_to_the_previous_stable(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, objects: CustomObjects
) -> None:
    create_version(objects, "churn-v1", "1")
    create_version(objects, "churn-v2", "2")
    status = {
        "phase": "Healthy",
        "observedGeneration": 1,
        "stableVersion": "churn-v2",
        "history": [{"time": "2026-11-30T10:00:00Z", "event": "Promoted", "from": "churn-v1", "to": "churn-v2"}],
    }
    create_with_status(objects, model_deployment(), status)
    old = snapshot(objects)
    result = run_cli(kubeconfig, "undo", "churn")
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout
        == "modeldeployment/churn: spec.model.versionRef churn-v2 -> churn-v1 (rolled out by the operator)\n"
    )
    new = snapshot(objects)
    assert new["spec"]["model"] == {**old["spec"]["model"], "versionRef": "churn-v1"}
    assert {k: v for k, v in new["spec"].items() if k != "model"} == {
        k: v for k, v in old["spec"].items() if k != "model"
    }
    assert new["metadata"]["generation"] == 2
    assert new["status"] == old["status"]

    code, out, _ = in_process(capsys, kubeconfig, "undo", "churn", "--to-version", "2")
    assert (code, out) == (
        0,
        "modeldeployment/churn: spec.model.versionRef churn-v1 -> churn-v2 (rolled out by the operator)\n",
    )
    assert snapshot(objects)["spec"]["model"]["versionRef"] == "churn-v2"


def test_undo_refuses_on_a_model_name_deployment(kubeconfig: Path, objects: CustomObjects) -> None:
    create_with_status(
        objects,
        model_deployment(model={"modelName": "churn"}),
        {"phase": "Healthy", "observedGeneration": 1, "stableVersion": "churn-v2"},
    )
    result = run_cli(kubeconfig, "undo", "churn")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "tracks the newest Production version of model churn (spec.model.modelName)" in result.stderr
    assert snapshot(objects)["metadata"]["generation"] == 1


@pytest.mark.kubectl
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")
def test_kubectl_plugin_uses_the_context_namespace(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, tmp_path: Path, plugin_path: Path, k8s_api_client
) -> None:
    from kubernetes import client

    client.CoreV1Api(k8s_api_client).create_namespace({"metadata": {"name": "ml"}})
    api = CustomObjects(load_api_client(str(kubeconfig)))
    create_with_status(api, model_deployment(), PROGRESSING, namespace="ml")
    config = yaml.safe_load(kubeconfig.read_text())
    config["contexts"][0]["context"]["namespace"] = "ml"
    kc = tmp_path / "ml-kubeconfig"
    kc.write_text(yaml.safe_dump(config))
    env = {**os.environ, "KUBECONFIG": str(kc), "PATH": f"{plugin_path}{os.pathsep}{os.environ['PATH']}"}

    result = subprocess.run(
        ["kubectl", "modelops", "rollout", "get", "churn"],
        capture_output=True,
        text=True,
        env=env,
        timeout=20,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["Name:          churn", "Namespace:     ml"]

    # The same default without kubectl: `-n` omitted means the context's namespace.
    code, _, err = in_process(capsys, kc, "abort", "churn")
    assert code == 0, err
    assert api.get(MODEL_DEPLOYMENT, "ml", "churn")["status"]["abort"] is True


def test_missing_object_is_one_line(capsys: pytest.CaptureFixture[str], kubeconfig: Path) -> None:
    assert in_process(capsys, kubeconfig, "promote", "nope") == (
        1,
        "",
        'modelops: error: not found: modeldeployment "nope" in namespace "default"\n',
    )


def test_broken_kubeconfig_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "kubeconfig"
    bad.write_text("this: [is not a kubeconfig")
    code, _, err = in_process(capsys, bad, "get", "churn")
    assert code == 1
    assert err.startswith(f"modelops: error: cannot load kubeconfig {bad}")
    assert err.count("\n") == 1


@pytest.mark.parametrize("argv", [["get", "churn"], ["status", "churn"], ["abort", "churn"], ["undo", "churn"]])
def test_unreachable_api_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kc = kubeconfig_for(f"http://127.0.0.1:{port}", str(tmp_path / "kc"))
    code, _, err = in_process(capsys, kc, *argv)
    assert code == 1
    assert err.count("\n") == 1
    assert f"cannot reach the Kubernetes API at http://127.0.0.1:{port}" in err


def test_plugin_usage_names_kubectl(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        kubectl_main_with(["rollout", "--help"])
    assert capsys.readouterr().out.startswith("usage: kubectl modelops rollout")


def kubectl_main_with(argv: list[str]) -> int:
    return main(argv, prog="kubectl modelops")
