"""State lives in Kubernetes: an operator killed mid-reconcile resumes exactly where it was."""

from __future__ import annotations

import time

from modelops.k8s.resources import MODEL_VERSION
from tests.integration.registry.conftest import cond, model_version, status, wait_for
from tests.support.faultproxy import kubeconfig_for
from tests.support.operator_process import kill, start_operator, stop


def test_killed_after_digest_check_before_status_write_resumes(proxy, custom_objects, artifact, tmp_path):
    kubeconfig = kubeconfig_for(proxy.url, str(tmp_path / "proxy-kubeconfig"))
    log = tmp_path / "operator.log"
    proxy.hold(lambda method, path: method == "PATCH" and path.endswith("/modelversions/churn-v1/status"))
    first = start_operator(kubeconfig, log)
    try:
        uri, digest = artifact(b"bytes worth verifying")
        custom_objects.create(MODEL_VERSION, "default", model_version("churn-v1", uri, digest))
        assert proxy.held.wait(30), log.read_text()
        # The digest has been checked and the Verified status is in flight: kill -9 now.
        kill(first)
    finally:
        kill(first)
    obj = custom_objects.get(MODEL_VERSION, "default", "churn-v1")
    assert status(obj).get("phase") in (None, "Pending"), "the status write must not have landed"

    proxy.release_all()
    second = start_operator(kubeconfig, log)
    try:
        obj = wait_for(custom_objects, "churn-v1", lambda o: status(o).get("phase") == "Verified", timeout=30)
    finally:
        stop(second)
    assert cond(obj, "Ready")["reason"] == "ArtifactVerified"
    assert [h["event"] for h in status(obj)["history"]] == ["Registered", "Verified"]
    assert status(obj)["observedGeneration"] == obj["metadata"]["generation"]
    time.sleep(0.5)
    assert status(custom_objects.get(MODEL_VERSION, "default", "churn-v1"))["history"] == status(obj)["history"]
