"""Pure manifest builders for a ModelDeployment's children: a Deployment per track, the Services,
and the HTTPRoute (``get_*``-style builders, as :mod:`modelops.core.drift_cronjob`; the k8s layer
applies them).

Every child is labelled ``modelops.dev/deployment``, ``modelops.dev/track`` and (where one
version runs) ``modelops.dev/version``, and owned by the ModelDeployment. A track's Deployment
selects on deployment and track only, never on version: a selector is immutable, the version is
not. The pod runs the restricted Pod Security Standard with a read-only root filesystem, like the
drift check, and mounts no ServiceAccount token: a model server never talks to the API server.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from modelops.api.modeldeployment import ModelDeploymentSpec, ServerSpec
from modelops.core.drift_cronjob import container_security_context, pod_security_context
from modelops.core.naming import dns1123
from modelops.core.version_selection import VersionInfo

API_VERSION = "modelops.dev/v1alpha1"
KIND = "ModelDeployment"
DEPLOYMENT_LABEL = "modelops.dev/deployment"
TRACK_LABEL = "modelops.dev/track"
VERSION_LABEL = "modelops.dev/version"
VERSION_ANNOTATION = "modelops.dev/model-version"
"""The full ModelVersion name (a label value is cut at 63 characters)."""
REVISION_ANNOTATION = "modelops.dev/server-revision"
MANAGED_BY = "modelops"
SERVICE_PORT = 80
MODEL_MOUNT = "/mnt/models"
PREDICTION_LOG_DIR = "/var/lib/modelops/predictions"

Track = Literal["stable", "canary"]
TRACKS: tuple[Track, ...] = ("stable", "canary")


@dataclass(frozen=True)
class DeploymentRef:
    """The ModelDeployment the children belong to."""

    name: str
    namespace: str
    uid: str


@dataclass(frozen=True)
class ServerOptions:
    """Operator-wide settings of the model-server pods."""

    image: str
    image_pull_policy: str = "IfNotPresent"
    termination_grace_period_seconds: int = 35
    """Above the server's default shutdown delay (3 s) plus in-flight timeout (25 s)."""
    revision_history_limit: int = 3


# ------------------------------------------------------------------------------------ names


def label_value(value: str) -> str:
    """A valid label value (63 characters, alphanumeric ends); long values keep a hash suffix."""
    return dns1123(value, 63)


def dns1035(name: str) -> str:
    """A Service name: a DNS-1035 label (no dots, starts with a letter, 63 characters)."""
    cleaned = dns1123(name.replace(".", "-"), 63)
    return cleaned if cleaned[0].isalpha() else dns1123(f"m-{cleaned}", 63)


def track_deployment_name(owner: DeploymentRef, track: Track) -> str:
    return dns1123(f"{owner.name}-{track}", 63)


def service_name(owner: DeploymentRef, track: Track | None = None) -> str:
    """``<name>`` over both tracks, ``<name>-stable`` / ``<name>-canary`` per track."""
    return dns1035(owner.name if track is None else f"{owner.name}-{track}")


# ------------------------------------------------------------------------------- revisions


def server_revision(server: ServerSpec) -> str:
    """Hash of what makes a server *revision*: a change of it rolls out by canary.

    Env, resources, replicas, credentials and the prediction log are not part of it: they are
    applied to both tracks in place.
    """
    fields = server.model_dump(
        include={
            "runtime",
            "image",
            "command",
            "args",
            "port",
            "metrics_port",
            "readiness_path",
            "liveness_path",
            "workers",
        },
        mode="json",
    )
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]


# ---------------------------------------------------------------------------------- labels


def owner_reference(owner: DeploymentRef) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def selector_labels(owner: DeploymentRef, track: Track | None = None) -> dict[str, str]:
    labels = {DEPLOYMENT_LABEL: label_value(owner.name)}
    if track is not None:
        labels[TRACK_LABEL] = track
    return labels


def common_labels(owner: DeploymentRef, model_name: str | None) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/instance": label_value(owner.name),
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/part-of": "modelops",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        DEPLOYMENT_LABEL: label_value(owner.name),
    }
    if model_name:
        labels["app.kubernetes.io/name"] = label_value(model_name)
    return labels


def version_labels(owner: DeploymentRef, track: Track, version: VersionInfo) -> dict[str, str]:
    return {
        **common_labels(owner, version.model_name),
        TRACK_LABEL: track,
        VERSION_LABEL: label_value(version.name),
        "app.kubernetes.io/version": label_value(version.version),
    }


def _metadata(owner: DeploymentRef, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels,
        "ownerReferences": [owner_reference(owner)],
    }


# ------------------------------------------------------------------------------ containers


def _pvc(uri: str) -> tuple[str, str]:
    """``pvc://claim/path`` -> (claim, path); KServe's convention."""
    rest = uri[len("pvc://") :]
    claim, _, path = rest.partition("/")
    if not claim:
        raise ValueError(f"{uri}: pvc:// URIs are pvc://<claim>/<path>")
    return claim, path


def _model_location(version: VersionInfo) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """The URI the server loads, plus the volumes and mounts it needs (a PVC, read-only)."""
    if not version.uri.startswith("pvc://"):
        return version.uri, [], []
    claim, path = _pvc(version.uri)
    volume = {"name": "model-store", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
    mount = {"name": "model-store", "mountPath": MODEL_MOUNT, "readOnly": True}
    return f"file://{MODEL_MOUNT}/{path}", [volume], [mount]


def _prediction_log(server: ServerSpec) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """Where the prediction log goes: a URI as given, a PVC mounted read-write, or an emptyDir."""
    target = server.prediction_log
    if target and not target.startswith("pvc://"):
        return target, [], []
    if target:
        claim, path = _pvc(target)
        volume = {"name": "prediction-log", "persistentVolumeClaim": {"claimName": claim}}
        mount = {"name": "prediction-log", "mountPath": PREDICTION_LOG_DIR}
        return f"{PREDICTION_LOG_DIR}/{path}".rstrip("/"), [volume], [mount]
    return (
        PREDICTION_LOG_DIR,
        [{"name": "prediction-log", "emptyDir": {}}],
        [{"name": "prediction-log", "mountPath": PREDICTION_LOG_DIR}],
    )


def builtin_args(
    owner: DeploymentRef, server: ServerSpec, track: Track, version: VersionInfo, model_uri: str, log_target: str
) -> list[str]:
    """``modelops serve`` flags (the image's entrypoint is ``modelops``)."""
    args = [
        "serve",
        "--model-uri",
        model_uri,
        "--digest",
        version.digest,
        "--name",
        version.model_name,
        "--version",
        version.version,
        "--track",
        track,
        "--deployment",
        owner.name,
        "--port",
        str(server.port),
        "--metrics-port",
        str(server.metrics_port),
        "--workers",
        str(server.workers),
        "--prediction-log",
        log_target,
        "--prediction-log-sample-rate",
        repr(server.prediction_log_sample_rate),
    ]
    if version.framework in ("sklearn", "onnx"):
        args += ["--framework", version.framework]
    return args + list(server.args or [])


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def _container(
    owner: DeploymentRef, spec: ModelDeploymentSpec, track: Track, version: VersionInfo, options: ServerOptions
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    server = spec.server
    model_uri, volumes, mounts = _model_location(version)
    env: list[dict[str, Any]] = [
        {"name": "HOME", "value": "/tmp"},
        {"name": "TMPDIR", "value": "/tmp"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    ports = [{"name": "http", "containerPort": server.port, "protocol": "TCP"}]
    if server.metrics_port != server.port:
        ports.append({"name": "metrics", "containerPort": server.metrics_port, "protocol": "TCP"})
    container: dict[str, Any] = {"name": "server", "imagePullPolicy": options.image_pull_policy}
    if server.runtime == "builtin":
        log_target, log_volumes, log_mounts = _prediction_log(server)
        volumes, mounts = volumes + log_volumes, mounts + log_mounts
        container["image"] = server.image or options.image
        container["args"] = builtin_args(owner, server, track, version, model_uri, log_target)
    else:
        values = {
            "modelUri": model_uri,
            "digest": version.digest,
            "model": version.model_name,
            "version": version.version,
            "track": track,
        }
        container["image"] = server.image
        if server.command:
            container["command"] = list(server.command)
        if server.args:
            container["args"] = [_fill(a, values) for a in server.args]
        env += [
            {"name": "MODELOPS_MODEL_URI", "value": model_uri},
            {"name": "MODELOPS_MODEL_DIGEST", "value": version.digest},
            {"name": "MODELOPS_MODEL_NAME", "value": version.model_name},
            {"name": "MODELOPS_MODEL_VERSION", "value": version.version},
            {"name": "MODELOPS_TRACK", "value": track},
        ]
    env += [{"name": e.name, "value": e.value} for e in server.env or []]
    container["ports"] = ports
    container["env"] = env
    if server.artifact_credentials is not None:
        container["envFrom"] = [{"secretRef": {"name": server.artifact_credentials.name}}]
    resources = spec.resources.to_wire() if spec.resources is not None else {}
    if resources:
        container["resources"] = resources
    container["readinessProbe"] = {
        "httpGet": {"path": server.readiness_path, "port": "http"},
        "periodSeconds": 2,
        "failureThreshold": 3,
    }
    container["livenessProbe"] = {
        "httpGet": {"path": server.liveness_path, "port": "http"},
        "periodSeconds": 10,
        "failureThreshold": 6,
    }
    container["securityContext"] = container_security_context()
    container["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}, *mounts]
    return container, [{"name": "tmp", "emptyDir": {}}, *volumes]


# ------------------------------------------------------------------------------ manifests


def build_track_deployment(
    owner: DeploymentRef,
    spec: ModelDeploymentSpec,
    track: Track,
    version: VersionInfo,
    replicas: int,
    options: ServerOptions,
) -> dict[str, Any]:
    """The Deployment of one track, running ``version`` with the spec's server settings."""
    container, volumes = _container(owner, spec, track, version, options)
    labels = version_labels(owner, track, version)
    surge = spec.strategy.canary.max_surge if spec.strategy.canary is not None else "25%"
    metrics_port = spec.server.metrics_port
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            **_metadata(owner, track_deployment_name(owner, track), labels),
            "annotations": {
                VERSION_ANNOTATION: version.name,
                REVISION_ANNOTATION: server_revision(spec.server),
            },
        },
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": options.revision_history_limit,
            "selector": {"matchLabels": selector_labels(owner, track)},
            # Within a track (an env change, the promotion hand-over) never drop ready pods.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": 0}},
            "template": {
                "metadata": {
                    "labels": dict(labels),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(metrics_port),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": options.termination_grace_period_seconds,
                    "securityContext": pod_security_context(),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def build_scale(owner: DeploymentRef, track: Track, replicas: int) -> dict[str, Any]:
    """Only the replica count: for a track whose template is not ours to rewrite right now."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": track_deployment_name(owner, track), "namespace": owner.namespace},
        "spec": {"replicas": replicas},
    }


def build_service(owner: DeploymentRef, spec: ModelDeploymentSpec, track: Track | None) -> dict[str, Any]:
    """``track=None``: the Service over both tracks (replica-ratio routing); else one track's."""
    labels = common_labels(owner, None)
    if track is not None:
        labels[TRACK_LABEL] = track
    ports = [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}]
    if spec.server.metrics_port != spec.server.port:
        ports.append({"name": "metrics", "port": spec.server.metrics_port, "targetPort": "metrics", "protocol": "TCP"})
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner, service_name(owner, track), labels),
        "spec": {"type": "ClusterIP", "selector": selector_labels(owner, track), "ports": ports},
    }


def build_services(owner: DeploymentRef, spec: ModelDeploymentSpec) -> list[dict[str, Any]]:
    return [build_service(owner, spec, None), *(build_service(owner, spec, t) for t in TRACKS)]


def build_http_route(owner: DeploymentRef, spec: ModelDeploymentSpec, canary_weight: int) -> dict[str, Any] | None:
    """The HTTPRoute with exact weights on the track Services; None without ``gatewayApi``."""
    canary = spec.strategy.canary
    gateway = canary.traffic_routing.gateway_api if canary and canary.traffic_routing else None
    if gateway is None:
        return None
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _metadata(owner, gateway.http_route, common_labels(owner, None)),
        "spec": {
            "parentRefs": [{"name": p.name} for p in gateway.parent_refs],
            "rules": [
                {
                    "backendRefs": [
                        {"name": service_name(owner, "stable"), "port": SERVICE_PORT, "weight": 100 - canary_weight},
                        {"name": service_name(owner, "canary"), "port": SERVICE_PORT, "weight": canary_weight},
                    ]
                }
            ],
        },
    }
