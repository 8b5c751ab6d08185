"""A ModelDeployment's children as pure manifests: per-track Deployments running `modelops serve`
(or a custom v2 image), the Services and the HTTPRoute; validated against the Kubernetes schemas."""

from __future__ import annotations

import kubernetes_validate
import pytest

from modelops.api.modeldeployment import ModelDeploymentSpec
from modelops.api.modelversion import Phase, Stage
from modelops.commands.serve import register as register_serve
from modelops.core.model_server_manifests import (
    DeploymentRef,
    ServerOptions,
    build_http_route,
    build_scale,
    build_services,
    build_track_deployment,
    dns1035,
    server_revision,
)
from modelops.core.version_selection import VersionInfo

K8S = kubernetes_validate.latest_version()
OWNER = DeploymentRef("churn", "ml", "0b6a1f9e-8f5c-4f55-9d0e-1b2c3d4e5f60")
OPTIONS = ServerOptions(image="ghcr.io/modelops/modelops:0.1.0")
V2 = VersionInfo(
    name="churn-v2",
    model_name="churn",
    version="2",
    uri="s3://models/churn/2/model.joblib",
    digest="sha256:" + "ab" * 32,
    phase=Phase.VERIFIED,
    stage=Stage.PRODUCTION,
    approved=True,
)


def md(**spec) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate({"model": {"versionRef": "churn-v2"}, **spec})


def container(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_builtin_track_deployment_runs_modelops_serve_restricted_and_labelled():
    d = build_track_deployment(OWNER, md(replicas=3), "canary", V2, 2, OPTIONS)
    kubernetes_validate.validate(d, K8S, strict=True)
    assert d["metadata"]["name"] == "churn-canary"
    assert d["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid
    assert d["spec"]["replicas"] == 2
    assert d["spec"]["selector"]["matchLabels"] == {"modelops.dev/deployment": "churn", "modelops.dev/track": "canary"}
    labels = d["spec"]["template"]["metadata"]["labels"]
    assert labels["modelops.dev/version"] == "churn-v2"
    assert labels["app.kubernetes.io/version"] == "2"
    c = container(d)
    assert c["image"] == "ghcr.io/modelops/modelops:0.1.0"
    args = c["args"]
    assert args[0] == "serve"
    flags = dict(zip(args[1::2], args[2::2], strict=False))
    assert flags["--model-uri"] == "s3://models/churn/2/model.joblib"
    assert flags["--digest"] == V2.digest
    assert flags["--track"] == "canary"
    assert flags["--deployment"] == "churn"
    assert (flags["--port"], flags["--metrics-port"]) == ("8080", "8082")
    assert flags["--prediction-log"] == "/var/lib/modelops/predictions"
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"http": 8080, "metrics": 8082}
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    pod = d["spec"]["template"]
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8082",
        "prometheus.io/path": "/metrics",
    }
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert {"/tmp", "/var/lib/modelops/predictions"} <= mounts


def test_serve_accepts_every_flag_the_builder_passes():
    import argparse

    parser = argparse.ArgumentParser()
    register_serve(parser.add_subparsers())
    args = container(build_track_deployment(OWNER, md(), "stable", V2, 1, OPTIONS))["args"]
    parsed = parser.parse_args(args)
    assert parsed.deployment == "churn"


def test_credentials_env_resources_and_pvc():
    spec = md(
        server={
            "artifactCredentials": {"name": "s3-creds"},
            "env": [{"name": "OMP_NUM_THREADS", "value": "2"}],
            "predictionLog": "pvc://logs/churn",
        },
        resources={"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"nvidia.com/gpu": "1"}},
    )
    pvc_version = VersionInfo(**{**V2.__dict__, "uri": "pvc://models/churn/2/model.joblib"})
    d = build_track_deployment(OWNER, spec, "stable", pvc_version, 1, OPTIONS)
    kubernetes_validate.validate(d, K8S, strict=True)
    c = container(d)
    assert c["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    assert {"name": "OMP_NUM_THREADS", "value": "2"} in c["env"]
    assert c["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"nvidia.com/gpu": "1"}}
    flags = dict(zip(c["args"][1::2], c["args"][2::2], strict=False))
    assert flags["--model-uri"] == "file:///mnt/models/churn/2/model.joblib"
    assert flags["--prediction-log"] == "/var/lib/modelops/predictions/churn"
    volumes = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
    assert volumes["model-store"]["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert volumes["prediction-log"]["persistentVolumeClaim"] == {"claimName": "logs"}
    assert {"name": "model-store", "mountPath": "/mnt/models", "readOnly": True} in c["volumeMounts"]


def test_custom_runtime_uses_its_image_port_probes_and_fills_args():
    spec = md(
        server={
            "runtime": "custom",
            "image": "seldonio/mlserver:1.6",
            "command": ["mlserver", "start"],
            "args": ["--model-uri={{modelUri}}", "--track={{track}}"],
            "port": 9000,
            "metricsPort": 9000,
            "readinessPath": "/v2/models/churn/ready",
        }
    )
    d = build_track_deployment(OWNER, spec, "stable", V2, 1, OPTIONS)
    kubernetes_validate.validate(d, K8S, strict=True)
    c = container(d)
    assert c["image"] == "seldonio/mlserver:1.6"
    assert c["command"] == ["mlserver", "start"]
    assert c["args"] == ["--model-uri=s3://models/churn/2/model.joblib", "--track=stable"]
    assert c["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/models/churn/ready"
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["MODELOPS_MODEL_DIGEST"] == V2.digest


def test_services_and_route():
    spec = md(
        strategy={
            "canary": {
                "steps": [{"setWeight": 10}],
                "trafficRouting": {"gatewayApi": {"httpRoute": "churn-route", "parentRefs": [{"name": "public"}]}},
            }
        }
    )
    services = build_services(OWNER, spec)
    for s in services:
        kubernetes_validate.validate(s, K8S, strict=True)
    assert [s["metadata"]["name"] for s in services] == ["churn", "churn-stable", "churn-canary"]
    assert services[0]["spec"]["selector"] == {"modelops.dev/deployment": "churn"}
    assert services[2]["spec"]["selector"] == {"modelops.dev/deployment": "churn", "modelops.dev/track": "canary"}
    assert services[0]["spec"]["ports"][0] == {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    route = build_http_route(OWNER, spec, 30)
    assert route is not None
    assert route["metadata"]["name"] == "churn-route"
    assert route["spec"]["parentRefs"] == [{"name": "public"}]
    assert route["spec"]["rules"][0]["backendRefs"] == [
        {"name": "churn-stable", "port": 80, "weight": 70},
        {"name": "churn-canary", "port": 80, "weight": 30},
    ]
    assert build_http_route(OWNER, md(), 30) is None


def test_scale_patch_touches_only_replicas():
    assert build_scale(OWNER, "stable", 3) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "churn-stable", "namespace": "ml"},
        "spec": {"replicas": 3},
    }


@pytest.mark.parametrize(
    ("change", "same"),
    [
        ({"env": [{"name": "A", "value": "1"}]}, True),
        ({"predictionLogSampleRate": 0.5}, True),
        ({"artifactCredentials": {"name": "x"}}, True),
        ({"image": "other:1"}, False),
        ({"args": ["--workers", "2"]}, False),
        ({"port": 9000}, False),
        ({"readinessPath": "/ready"}, False),
    ],
)
def test_server_revision_changes_only_with_the_server(change, same):
    assert (server_revision(md().server) == server_revision(md(server=change).server)) is same


@pytest.mark.parametrize(
    ("name", "expected"), [("churn", "churn"), ("churn.prod", "churn-prod"), ("7churn", "m-7churn")]
)
def test_service_names_are_dns1035(name, expected):
    assert dns1035(name) == expected
