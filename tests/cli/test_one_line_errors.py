"""What a user gets wrong is one line on stderr and the documented exit code, never a traceback.

Every test runs `modelops` as its own process, as a user would (issue 11's list, one by one).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from modelops.cli import build_parser, main
from tests.cli.conftest import EXAMPLES, modelops, one_line

DRIFT = EXAMPLES / "drift"


def kubeconfig_for(server: str, path: Path) -> Path:
    cluster = {"server": server, **({"insecure-skip-tls-verify": True} if server.startswith("https") else {})}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    return path


# -- serve: exit 2 bad arguments, 7 a port it cannot bind (docs/serving.md) ---------------------


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--port", "99999"], "argument --port: must be a port number (0-65535), got 99999"),
        (["--port", "-1"], "argument --port: must be a port number (0-65535), got -1"),
        (
            ["--port", "0", "--metrics-port", "70000"],
            "argument --metrics-port: must be a port number (1-65535), got 70000",
        ),
    ],
    ids=["port-too-large", "port-negative", "metrics-port-too-large"],
)
def test_serve_rejects_a_bad_port(mv_yaml: Path, flags: list[str], expected: str) -> None:
    result = modelops("serve", "--model-version", mv_yaml, *flags)
    assert result.returncode == 2
    assert one_line(result) == f"modelops serve: error: {expected} (see modelops serve --help)"


def test_serve_on_a_busy_metrics_port_exits_7(mv_yaml: Path, busy_port: int) -> None:
    result = modelops("serve", "--model-version", mv_yaml, "--port", "0", "--metrics-port", busy_port)
    assert result.returncode == 7
    line = one_line(result)
    assert f"ERROR modelops.serve: cannot listen on 0.0.0.0:{busy_port} (--metrics-port):" in line
    assert "address already in use" in line.lower()


def test_serve_on_a_busy_port_exits_7(mv_yaml: Path, busy_port: int) -> None:
    result = modelops("serve", "--model-version", mv_yaml, "--port", busy_port)
    assert result.returncode == 7
    assert f"cannot listen on 0.0.0.0:{busy_port} (--port): Address already in use" in one_line(result)


def test_serve_with_an_invalid_model_version_names_the_field(tmp_path: Path, mv_yaml: Path) -> None:
    doc = yaml.safe_load(mv_yaml.read_text())
    doc["spec"]["artifact"]["digest"] = "md5:abc"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    result = modelops("serve", "--model-version", bad)
    assert result.returncode == 2
    assert one_line(result).startswith(f"modelops: error: ModelVersion {bad} is invalid: spec.artifact.digest: ")


# -- run: exit 1, before kopf starts -----------------------------------------------------------


def test_run_against_an_unreachable_api_server(tmp_path: Path, closed_port: int) -> None:
    kubeconfig = kubeconfig_for(f"https://127.0.0.1:{closed_port}", tmp_path / "kubeconfig")
    result = modelops("run", "-A", "--kubeconfig", kubeconfig)
    assert result.returncode == 1
    line = one_line(result)
    assert line.startswith(f"modelops: error: cannot reach the Kubernetes API at https://127.0.0.1:{closed_port} ")
    assert "(GET /version, 5s timeout): " in line  # says what it tried
    assert "Connection refused" in line


@pytest.mark.parametrize("flag", ["--health-port", "--metrics-port"])
def test_run_on_a_busy_port(kubeconfig: Path, busy_port: int, closed_port: int, flag: str) -> None:
    other = "--metrics-port" if flag == "--health-port" else "--health-port"
    result = modelops("run", "-A", "--kubeconfig", kubeconfig, flag, busy_port, other, closed_port)
    assert result.returncode == 1
    assert (
        one_line(result) == f"modelops: error: {flag} {busy_port}: cannot listen on 0.0.0.0:{busy_port}: already in use"
    )


def test_run_rejects_a_bad_port() -> None:
    result = modelops("run", "-A", "--health-port", "65536")
    assert result.returncode == 2
    assert "argument --health-port: must be a port number (1-65535), got 65536" in one_line(result)


def test_run_and_serve_default_ports_do_not_collide() -> None:
    run = build_parser(["run"]).parse_args(["run", "-A"])
    serve = build_parser(["serve"]).parse_args(["serve"])
    assert (run.health_port, run.metrics_port, serve.port) == (8081, 8083, 8080)


# -- drift: exit 2 bad data or usage (docs/drift.md) ---------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["report", "--reference", DRIFT / "reference.csv", "--current", DRIFT / "current-shifted.csv",
          "-o", "/nonexistent/dir/r.html"], "-o /nonexistent/dir/r.html: directory /nonexistent/dir does not exist"),
        (["profile", DRIFT / "reference.csv", "-o", "/tmp"], "-o /tmp is a directory; name a file"),
        (["check", "--reference", DRIFT / "reference.csv", "--current", DRIFT / "current-shifted.csv",
          "-o", "/nonexistent/x.json"], "-o /nonexistent/x.json: directory /nonexistent does not exist"),
    ],
    ids=["report-missing-dir", "profile-to-a-directory", "check-missing-dir"],
)  # fmt: skip
def test_drift_output_that_cannot_be_written(command: list[str | Path], expected: str) -> None:
    result = modelops("drift", *command)
    assert result.returncode == 2
    assert one_line(result) == f"modelops: error: {expected}"


def test_drift_check_with_a_broken_config(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("drift: {driftShare: 0.5\ncolumnMapping: [\n")
    result = modelops("drift", "check", "--reference", DRIFT / "reference.csv", "--current", DRIFT / "current-stable.csv",
                      "--config", broken)  # fmt: skip
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith(f"modelops: error: InvalidConfig: config {broken} is not valid YAML: line ")


def test_drift_config_names_every_invalid_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("drift: {driftShare: 7, method: nope}\n")
    argv = ["drift", "check", "--reference", DRIFT / "reference.csv", "--current", DRIFT / "current-stable.csv"]
    assert main([*map(str, argv), "--config", str(config)]) == 2  # in-process: the message, not the process
    line = capsys.readouterr().err.strip()
    assert "drift.method: Input should be 'auto', 'ks', 'chi2'" in line
    assert "drift.driftShare: Input should be less than or equal to 1" in line


def test_drift_check_on_a_handful_of_rows_warns(tmp_path: Path) -> None:
    few = tmp_path / "few.csv"
    few.write_text("".join((DRIFT / "current-stable.csv").read_text().splitlines(keepends=True)[:6]))  # header + 5
    result = modelops("drift", "check", "--reference", DRIFT / "reference.csv", "--current", few, "--output", "json")
    assert result.returncode in (0, 1)  # a verdict, but ...
    assert one_line(result) == (
        "modelops: warning: only 5 current row(s): too few to trust the verdict "
        "(use 100 or more; --min-rows N makes fewer rows bad data)"
    )
    assert {f["nCurrent"] for f in json.loads(result.stdout)["features"]} == {5}


# -- registry: exit 1 -------------------------------------------------------------------------


def test_register_with_an_invalid_name_names_the_field_and_the_reason() -> None:
    artifact = EXAMPLES / "artifacts" / "churn-v1.joblib"
    result = modelops("registry", "register", artifact, "--name", "Churn_Model", "--version", "1", "--dry-run")
    assert result.returncode == 1
    assert one_line(result) == (
        "modelops: error: invalid ModelVersion: spec.modelName (--name 'Churn_Model'): "
        "String should match pattern '^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$'"
    )


def test_lineage_of_a_missing_version_exits_1_like_show(kubeconfig: Path) -> None:
    lineage = modelops("registry", "lineage", "nope", "--kubeconfig", kubeconfig)
    show = modelops("registry", "show", "nope", "--kubeconfig", kubeconfig)
    assert (lineage.returncode, show.returncode) == (1, 1)
    assert (
        one_line(lineage) == one_line(show) == 'modelops: error: not found: modelversions.modelops.dev "nope" not found'
    )


def test_registry_without_a_subcommand_prints_its_help() -> None:
    result = modelops("registry")
    assert result.returncode == 2
    assert result.stdout.startswith("usage: modelops registry")
    for sub in ("register", "list", "show", "promote", "lineage"):
        assert f"\n    {sub} " in result.stdout
    assert result.stderr == ""
