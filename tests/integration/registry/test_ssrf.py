"""The artifact SSRF policy through the operator: what a cluster's default refuses, how a refusal
shows in status and Events, and that neither ever carries what an artifact server answered.
(Each rule with its own local server: tests/unit/test_artifact_verifier.py; the table:
tests/unit/test_artifact_policy.py.)"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelops.core.artifact_policy import ArtifactPolicy
from modelops.k8s.resources import MODEL_VERSION, CustomObjects
from modelops.runner import OperatorConfig, OperatorThread
from tests.integration.registry.conftest import cond, events, model_version, status, wait_event, wait_for
from tests.support.artifact_servers import Reply, ScriptedServer, scripted

SECRET = "SECRET-7f3a9c"
GOOD = b"good model bytes"
GOOD_DIGEST = "sha256:" + hashlib.sha256(GOOD).hexdigest()
MAX_BYTES = 1000


@pytest.fixture
def cluster_operator(kubeconfig: Path) -> Iterator[None]:
    """The operator with a cluster's policy (no file://), and a 1000-byte download limit."""
    cfg = OperatorConfig(
        namespaces=["default"],
        kubeconfig=str(kubeconfig),
        health_port=None,
        metrics_port=None,
        artifact_policy=ArtifactPolicy.build(max_bytes=MAX_BYTES),
    )
    with OperatorThread(cfg):
        yield


@pytest.fixture
def store() -> Iterator[ScriptedServer]:
    with scripted() as server:
        yield server


def register(api: CustomObjects, name: str, uri: str, digest: str = GOOD_DIGEST) -> None:
    api.create(MODEL_VERSION, "default", model_version(name, uri, digest, version=name))


def settled(obj: dict[str, Any]) -> bool:
    return status(obj).get("phase") in ("Verified", "Failed") or bool(status(obj).get("verifyAttempts"))


@pytest.mark.usefixtures("cluster_operator")
def test_cluster_policy_refusals_show_in_status_and_events(
    custom_objects: CustomObjects, core_api: Any, store: ScriptedServer, tmp_path: Path
) -> None:
    local = tmp_path / "model.joblib"
    local.write_bytes(GOOD)
    store.routes.update(
        {
            "/good": Reply(body=GOOD),
            "/to-metadata": Reply(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}),
            "/big": Reply(body=b"x" * (MAX_BYTES + 1)),
        }
    )
    cases = {
        # name: (uri, expected reason, words the message must contain)
        "file": (local.as_uri(), "ArtifactRefused", "--allow-file-artifacts"),
        "metadata": ("http://169.254.169.254/latest/meta-data/", "ArtifactRefused", "169.254.0.0/16"),
        "metadata-v6": ("http://[fd00:ec2::254]/latest/meta-data/", "ArtifactRefused", "fd00:ec2::254"),
        "redirect": (f"{store.url}/to-metadata", "ArtifactRefused", "redirect to http://169.254.169.254"),
        "big": (f"{store.url}/big", "ArtifactRefused", f"limit is {MAX_BYTES} bytes"),
        "good": (f"{store.url}/good", "ArtifactVerified", "matches"),
    }
    for name, (uri, _, _) in cases.items():
        register(custom_objects, name, uri)
    for name, (_, reason, words) in cases.items():
        obj = wait_for(custom_objects, name, settled)
        ready = cond(obj, "Ready")
        assert ready["reason"] == reason, (name, ready)
        assert words in ready["message"], (name, ready["message"])
        if reason == "ArtifactRefused":
            assert status(obj)["phase"] == "Pending"
            assert "retrying in 5s" in ready["message"]
            ev = wait_event(core_api, name, "ArtifactRefused")
            assert ev.type == "Warning"
    # the redirect was answered by our store; the metadata address was never contacted by anyone
    assert store.requests.count("/to-metadata") >= 1


@pytest.mark.usefixtures("cluster_operator")
def test_status_and_events_never_echo_what_the_server_answered(
    custom_objects: CustomObjects, core_api: Any, store: ScriptedServer
) -> None:
    hostile = {"X-Error": SECRET, "Location": f"/{SECRET}"}
    store.routes.update(
        {
            "/forbidden": Reply(403, body=f"<Error><Message>{SECRET}</Message></Error>".encode(), reason=SECRET),
            "/broken": Reply(500, body=SECRET.encode() * 100, headers=hostile),
            "/mismatch": Reply(body=f"not the model {SECRET}".encode()),
        }
    )
    for name in ("forbidden", "broken", "mismatch"):
        register(custom_objects, name, f"{store.url}/{name}")
    for name, reason, text in (
        ("forbidden", "ArtifactUnreachable", "HTTP 403 Forbidden"),
        ("broken", "ArtifactUnreachable", "HTTP 500 Internal Server Error"),
        ("mismatch", "DigestMismatch", "hashes to sha256:"),
    ):
        obj = wait_for(custom_objects, name, settled)
        assert cond(obj, "Ready")["reason"] == reason
        assert text in cond(obj, "Ready")["message"]
        wait_event(core_api, name, reason)
        written = str(obj.get("status")) + " ".join(str(e.message) for e in events(core_api, name))
        assert SECRET not in written, name
