"""Discovery documents, /version and /openapi/v3, and the standalone `modelops sandbox apiserver`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from kubernetes import client, config

from tests.integration.sandbox.conftest import Client
from tests.support.apiserver import CRDS

# `python -m modelops.cli` would make a second `modelops.cli` module (and a second CLIError class).
MODELOPS = [sys.executable, "-c", "import sys; from modelops.cli import main; sys.exit(main())"]


async def test_core_discovery(http: Client) -> None:
    api = await http.ok("GET", "/api")
    assert api["kind"] == "APIVersions"
    assert api["versions"] == ["v1"]
    v1 = await http.ok("GET", "/api/v1")
    assert v1["kind"] == "APIResourceList"
    assert v1["groupVersion"] == "v1"
    names = {r["name"]: r for r in v1["resources"]}
    assert {"namespaces", "events", "services", "serviceaccounts", "configmaps", "secrets", "pods"} <= set(names)
    assert names["namespaces"]["namespaced"] is False
    assert names["pods"]["namespaced"] is True
    assert "pods/status" in names


async def test_group_discovery(http: Client) -> None:
    groups = {g["name"]: g for g in (await http.ok("GET", "/apis"))["groups"]}
    for group, version in [
        ("apps", "v1"),
        ("batch", "v1"),
        ("rbac.authorization.k8s.io", "v1"),
        ("events.k8s.io", "v1"),
        ("coordination.k8s.io", "v1"),
        ("discovery.k8s.io", "v1"),
        ("apiextensions.k8s.io", "v1"),
        ("modelops.dev", "v1alpha1"),
    ]:
        assert groups[group]["preferredVersion"]["groupVersion"] == f"{group}/{version}"
        listing = await http.ok("GET", f"/apis/{group}/{version}")
        assert listing["groupVersion"] == f"{group}/{version}"
    apps = {r["name"] for r in (await http.ok("GET", "/apis/apps/v1"))["resources"]}
    assert {"deployments", "deployments/status"} <= apps
    batch = {r["name"] for r in (await http.ok("GET", "/apis/batch/v1"))["resources"]}
    assert {"jobs", "jobs/status", "cronjobs", "cronjobs/status"} <= batch
    mv = {r["name"]: r for r in (await http.ok("GET", "/apis/modelops.dev/v1alpha1"))["resources"]}
    assert mv["modelversions"]["shortNames"] == ["mv"]
    assert mv["modelversions"]["categories"] == ["modelops"]
    assert "modelversions/status" in mv


async def test_version_and_openapi(http: Client) -> None:
    version = await http.ok("GET", "/version")
    assert version["major"] == "1"
    assert version["gitVersion"].startswith("v1.")
    root = await http.ok("GET", "/openapi/v3")
    url = root["paths"]["apis/modelops.dev/v1alpha1"]["serverRelativeURL"]
    doc = await http.ok("GET", url.split("?")[0])
    patch = doc["paths"]["/apis/modelops.dev/v1alpha1/namespaces/{namespace}/modelversions/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"]["kind"] == "ModelVersion"
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    schema = doc["components"]["schemas"]["dev.modelops.v1alpha1.ModelVersion"]
    assert "spec" in schema["properties"]


def test_standalone_command(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc.yaml"
    proc = subprocess.Popen(
        [*MODELOPS, "sandbox", "apiserver", "--port", "0", "--kubeconfig", str(kubeconfig),
         "--crds", str(CRDS)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not kubeconfig.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no kubeconfig written"
            time.sleep(0.05)
        doc = yaml.safe_load(kubeconfig.read_text())
        assert doc["current-context"] == "sandbox"
        server = doc["clusters"][0]["cluster"]["server"]
        assert server.startswith("http://127.0.0.1:")
        assert httpx.get(f"{server}/version").json()["major"] == "1"
        api = config.new_client_from_config(config_file=str(kubeconfig))
        listed = client.CustomObjectsApi(api).list_namespaced_custom_object(
            "modelops.dev", "v1alpha1", "default", "modelversions"
        )
        assert listed["items"] == []
        api.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_standalone_command_refuses_invalid_crds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from modelops.cli import main

    bad = tmp_path / "crd.yaml"
    bad.write_text(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: x}\nspec: {}\n"
    )
    assert main(["sandbox", "apiserver", "--port", "0", "--kubeconfig", str(tmp_path / "k"), "--crds", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("modelops: error: cannot load CRDs:")
    assert "spec.group: Required value" in err
    assert not (tmp_path / "k").exists()
