"""`modelops registry ...` against the fake API server with the operator running."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest
import yaml

from modelops.cli import main
from tests.integration.registry.conftest import status, wait_for
from tests.support.faultproxy import kubeconfig_for


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_register_dry_run_prints_valid_yaml(capsys, tmp_path):
    model = tmp_path / "m.joblib"
    model.write_bytes(b"weights")
    code, out, _ = run(
        capsys,
        "registry",
        "register",
        str(model),
        "--name",
        "churn",
        "--version",
        "3",
        "--metrics",
        "auc=0.91",
        "--dataset-uri",
        "s3://d/x.parquet",
        "--code-commit",
        "abc123",
        "--parent",
        "churn-v2",
        "--dry-run",
    )
    assert code == 0
    doc = yaml.safe_load(out)
    assert doc["kind"] == "ModelVersion"
    assert doc["metadata"]["name"] == "churn-v3"
    assert doc["spec"]["artifact"]["digest"] == "sha256:" + hashlib.sha256(b"weights").hexdigest()
    assert doc["spec"]["metrics"] == {"auc": 0.91}
    assert doc["spec"]["lineage"] == {
        "dataset": {"uri": "s3://d/x.parquet"},
        "codeCommit": "abc123",
        "parentVersion": "churn-v2",
    }


@pytest.mark.usefixtures("operator")
def test_register_list_promote_lineage(capsys, tmp_path, kubeconfig, custom_objects):
    kc = ["--kubeconfig", str(kubeconfig)]
    for version, parent in (("1", None), ("2", "churn-v1")):
        path = tmp_path / f"v{version}.joblib"
        path.write_bytes(f"model {version}".encode())
        extra = ["--parent", parent] if parent else []
        code, out, err = run(
            capsys,
            "registry",
            "register",
            str(path),
            "--name",
            "churn",
            "--version",
            version,
            "--code-commit",
            f"c{version}",
            *extra,
            *kc,
        )
        assert code == 0, err
        assert f"modelversion/churn-v{version} created" in out
    wait_for(custom_objects, "churn-v2", lambda o: status(o).get("phase") == "Verified")

    code, out, _ = run(capsys, "registry", "promote", "churn-v2", "--to", "Production", *kc)
    assert code == 1
    assert "refused" in out
    assert "approval" in out

    code, out, _ = run(
        capsys,
        "registry",
        "promote",
        "churn-v2",
        "--to",
        "Production",
        "--approved-by",
        "alice",
        "--reason",
        "better AUC",
        *kc,
    )
    assert code == 0, out
    assert "approved by alice" in out

    code, out, _ = run(capsys, "registry", "list", "--model", "churn", *kc)
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["NAME", "MODEL", "VERSION", "STAGE", "PHASE"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["churn-v2"][3:5] == ["Production", "Verified"]
    assert rows["churn-v1"][3:5] == ["None", "Verified"]

    code, out, _ = run(capsys, "registry", "lineage", "churn-v2", *kc)
    assert code == 0
    first, second = out.splitlines()
    assert first.startswith("churn-v2: churn 2 [Production, Verified]")
    assert "commit=c2" in first
    assert second.strip().startswith("churn-v1: churn 1")

    code, out, _ = run(capsys, "registry", "show", "churn-v2", *kc)
    shown = yaml.safe_load(out)
    assert shown["status"]["stage"] == "Production"
    assert shown["spec"]["approval"]["approvedBy"] == "alice"


def test_broken_kubeconfig_is_one_line(capsys, tmp_path):
    bad = tmp_path / "kubeconfig"
    bad.write_text("this: [is not a kubeconfig")
    code, _out, err = run(capsys, "registry", "list", "--kubeconfig", str(bad))
    assert code == 1
    assert err.count("\n") == 1
    assert err.startswith("modelops: error: cannot load kubeconfig")
    assert "Traceback" not in err


def test_unreachable_api_is_one_line(capsys, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kc = kubeconfig_for(f"http://127.0.0.1:{port}", str(tmp_path / "kc"))
    code, _, err = run(capsys, "registry", "list", "--kubeconfig", kc)
    assert code == 1
    assert err.count("\n") == 1
    assert f"cannot reach the Kubernetes API at http://127.0.0.1:{port}" in err


def test_missing_object_is_one_line(capsys, kubeconfig):
    code, _, err = run(capsys, "registry", "show", "nope", "--kubeconfig", str(kubeconfig))
    assert code == 1
    assert err.startswith("modelops: error: not found")


def test_register_missing_file_is_one_line(capsys, tmp_path: Path):
    code, _, err = run(
        capsys, "registry", "register", str(tmp_path / "absent"), "--name", "m", "--version", "1", "--dry-run"
    )
    assert code == 1
    assert "cannot read" in err
    assert err.count("\n") == 1


def test_run_without_scope_is_a_clear_error(capsys):
    code, _, err = run(capsys, "run")
    assert code == 1
    assert "--namespace" in err
