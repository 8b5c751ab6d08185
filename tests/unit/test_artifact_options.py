"""The artifact policy as an operator setting: chart values -> `modelops run` flags (or env) -> policy."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
import yaml

from modelops.cli import build_parser, main
from modelops.commands.artifact_options import artifact_config, parse_size
from tests.support.render_chart import render_documents

ENV = (
    "MODELOPS_ARTIFACT_SCHEMES",
    "MODELOPS_ARTIFACT_HOSTS",
    "MODELOPS_ARTIFACT_ALLOW_NETWORKS",
    "MODELOPS_ALLOW_FILE_ARTIFACTS",
    "MODELOPS_ARTIFACT_MAX_BYTES",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def config(*argv: str) -> Any:
    args = ["run", "--all-namespaces", *argv]
    return artifact_config(build_parser(args).parse_args(args))


def chart_args(values: dict[str, Any]) -> list[str]:
    docs = [yaml.safe_load(d) for d in render_documents(values)]
    deployment = next(d for d in docs if d and d["kind"] == "Deployment")
    return list(deployment["spec"]["template"]["spec"]["containers"][0]["args"])


def test_defaults_are_a_clusters() -> None:
    policy, fetch = config()
    assert policy.schemes == {"http", "https", "s3", "gs", "gcs", "az", "abfs", "abfss"}
    assert policy.hosts == ()
    assert policy.allow_networks == ()
    assert policy.max_bytes == 10 * 1024**3
    assert (fetch.connect_timeout, fetch.read_timeout) == (10.0, 30.0)
    assert (fetch.max_concurrent, fetch.max_per_namespace) == (32, 16)


def test_flags() -> None:
    policy, fetch = config(
        "--artifact-schemes",
        "https,s3",
        "--allow-file-artifacts",
        "--artifact-hosts",
        "models.example.com,*.store.example",
        "--artifact-allow-network",
        "169.254.20.10/32",
        "--artifact-allow-network",
        "fd00:ec2::254/128",
        "--artifact-max-bytes",
        "500Mi",
        "--artifact-read-timeout",
        "5",
        "--artifact-max-per-namespace",
        "4",
    )
    assert policy.schemes == {"https", "s3", "file"}
    assert policy.hosts == ("models.example.com", "*.store.example")
    assert policy.allow_networks == (
        ipaddress.ip_network("169.254.20.10/32"),
        ipaddress.ip_network("fd00:ec2::254/128"),
    )
    assert policy.max_bytes == 500 * 1024**2
    assert (fetch.read_timeout, fetch.max_per_namespace) == (5.0, 4)


def test_environment_when_no_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELOPS_ARTIFACT_SCHEMES", "https")
    monkeypatch.setenv("MODELOPS_ALLOW_FILE_ARTIFACTS", "true")
    monkeypatch.setenv("MODELOPS_ARTIFACT_HOSTS", "a.example")
    monkeypatch.setenv("MODELOPS_ARTIFACT_ALLOW_NETWORKS", "169.254.1.0/24")
    monkeypatch.setenv("MODELOPS_ARTIFACT_MAX_BYTES", "1Gi")
    policy, _ = config()
    assert policy.schemes == {"https", "file"}
    assert policy.hosts == ("a.example",)
    assert policy.allow_networks == (ipaddress.ip_network("169.254.1.0/24"),)
    assert policy.max_bytes == 1024**3
    flagged, _ = config("--artifact-schemes", "http", "--artifact-max-bytes", "2Gi")
    assert flagged.schemes == {"http", "file"}
    assert flagged.max_bytes == 2 * 1024**3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--artifact-allow-network", "169.254.0.0/40"], "artifact policy: not a CIDR network: '169.254.0.0/40'"),
        (["--artifact-read-timeout", "0"], "--artifact-read-timeout must be positive, got 0.0"),
        (["--artifact-max-concurrent", "-1"], "--artifact-max-concurrent must be positive, got -1"),
    ],
)
def test_bad_settings_fail_in_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--all-namespaces", *argv]) == 1
    assert message in capsys.readouterr().err


def test_bad_size_is_an_argument_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser(["run"]).parse_args(["run", "-A", "--artifact-max-bytes", "ten gigs"])
    assert "not a size: 'ten gigs'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "size"),
    [("1048576", 1048576), ("10Gi", 10 * 1024**3), ("500Mi", 500 * 1024**2), ("1k", 1000), ("2G", 2 * 10**9)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_chart_default_renders_the_cluster_policy() -> None:
    args = chart_args({})
    assert "--allow-file-artifacts" not in args
    policy, fetch = config(*args[args.index("--artifact-schemes") :])
    default, _ = config()
    assert policy == default
    assert fetch.read_timeout == 30.0


def test_chart_values_reach_the_policy() -> None:
    args = chart_args(
        {
            "artifacts": {
                "schemes": ["https"],
                "allowFile": True,
                "hosts": ["models.example.com", "*.store.example"],
                "allowNetworks": ["169.254.20.10/32"],
                "maxBytes": 1048576,
                "connectTimeoutSeconds": 3,
                "readTimeoutSeconds": 7,
            }
        }
    )
    policy, fetch = config(*args[args.index("--artifact-schemes") :])
    assert policy.schemes == {"https", "file"}
    assert policy.hosts == ("models.example.com", "*.store.example")
    assert policy.allow_networks == (ipaddress.ip_network("169.254.20.10/32"),)
    assert policy.max_bytes == 1048576
    assert (fetch.connect_timeout, fetch.read_timeout) == (3.0, 7.0)
