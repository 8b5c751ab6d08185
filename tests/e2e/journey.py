"""The user's journey on a real cluster, with the assertions of the sandbox's integration tests
(tests/support/rollout_checks.py, the same ModelVersion/DriftMonitor builders), so that both prove
the same behaviour:

1. register versions whose artifacts an in-cluster HTTP server serves (our image's python, the
   files in a ConfigMap): each Verified, history [Registered, Verified];
2. a ModelDeployment rolled out by canary (4 replicas, setWeight 25, pause) and promoted: exactly
   the track states and history of tests/integration/ha and tests/integration/faults;
3. a ModelDeployment whose canary crash-loops (an artifact that is no model) rolled back at its
   progress deadline, the stable never touched (as tests/integration/faults/test_crashloop.py);
4. a DriftMonitor whose CronJob's pod runs `modelops drift check` under its own ServiceAccount,
   finds drift, and the one retraining Job it creates (as tests/integration/drift).

Everything runs in a namespace that enforces Pod Security `restricted`: every pod the operator
creates (model servers, drift checks) and ours must be admitted.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelops.k8s.resources import DRIFT_MONITOR, MODEL_DEPLOYMENT, MODEL_VERSION, CustomObjects
from tests.integration.drift.conftest import monitor, write_csv
from tests.integration.faults.test_crashloop import crash_version
from tests.integration.rollout.conftest import model_deployment
from tests.support.rollout_checks import RolloutRecorder, assert_promoted_once, assert_rolled_back_without_promotion

T = TypeVar("T")
Obj = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
}


def wait(fn: Callable[[], T | None], what: str, timeout: float = 300.0, every: float = 1.0) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except ApiException as exc:
            last = exc
            if exc.status != 404:
                raise
        if last and not isinstance(last, ApiException):
            return last  # type: ignore[return-value]
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


@dataclass
class Cluster:
    api: client.ApiClient
    image: str

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.objects = CustomObjects(self.api)

    def namespace(self, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": RESTRICTED}}
        try:
            self.core.create_namespace(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            self.core.patch_namespace(name, {"metadata": {"labels": RESTRICTED}})

    def status(self, kind: Any, ns: str, name: str) -> Obj:
        return self.objects.get(kind, ns, name).get("status") or {}

    def wait_status(
        self, kind: Any, ns: str, name: str, done: Callable[[Obj], bool], what: str, timeout: float = 300
    ) -> Obj:
        return wait(lambda: (st := self.status(kind, ns, name)) and done(st) and st, f"{name}: {what}", timeout)


# -- the in-cluster artifact store -------------------------------------------------------------


def artifact_store(c: Cluster, ns: str, files: dict[str, bytes]) -> str:
    """A Deployment of our image serving ``files`` over HTTP (python -m http.server, from a
    ConfigMap), and its Service; returns the base URL."""
    c.core.create_namespaced_config_map(
        ns,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "artifacts"},
         "binaryData": {k: base64.b64encode(v).decode() for k, v in files.items()}},
    )  # fmt: skip
    labels = {"app": "artifacts"}
    container = {
        "name": "http",
        "image": c.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "http.server", "8000", "--directory", "/artifacts"],
        "ports": [{"containerPort": 8000}],
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [{"name": "artifacts", "mountPath": "/artifacts"}],
        "readinessProbe": {"tcpSocket": {"port": 8000}, "periodSeconds": 2},
    }
    c.apps.create_namespaced_deployment(
        ns,
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "artifacts"},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"securityContext": POD_SECURITY, "automountServiceAccountToken": False,
                                        "containers": [container],
                                        "volumes": [{"name": "artifacts", "configMap": {"name": "artifacts"}}]}}}},
    )  # fmt: skip
    c.core.create_namespaced_service(
        ns,
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "artifacts"},
         "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8000}]}},
    )  # fmt: skip
    wait(
        lambda: (c.apps.read_namespaced_deployment("artifacts", ns).status.ready_replicas or 0) >= 1, "artifacts ready"
    )
    return f"http://artifacts.{ns}.svc.cluster.local"


def version(name: str, number: str, url: str, data: bytes, model: str = "churn") -> Obj:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {
            "modelName": model,
            "version": number,
            "framework": "sklearn",
            "artifact": {"uri": url, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "format": "joblib"},
        },
    }


def _owned_by_cronjob(job: Any) -> bool:
    return any(o.kind == "CronJob" for o in job.metadata.owner_references or [])


# -- the journey ---------------------------------------------------------------------------------


def journey(c: Cluster, ns: str, tmp: Path) -> None:
    c.namespace(ns)
    v1 = (ROOT / "examples" / "artifacts" / "churn-v1.joblib").read_bytes()
    v2 = (ROOT / "examples" / "artifacts" / "churn-v2.joblib").read_bytes()
    crash = crash_version(tmp)
    junk = Path(crash["spec"]["artifact"]["uri"].removeprefix("file://")).read_bytes()
    reference = write_csv(tmp / "reference.csv", 0, seed=1).read_bytes()
    current = write_csv(tmp / "current.csv", 1.0, seed=2).read_bytes()
    base = artifact_store(
        c, ns, {"churn-v1.joblib": v1, "churn-v2.joblib": v2, "crash.joblib": junk,
                "reference.csv": reference, "current.csv": current},
    )  # fmt: skip

    # 1. the registry: every version verified from the in-cluster store
    crash["spec"]["artifact"]["uri"] = f"{base}/crash.joblib"
    for mv in (
        version("churn-v1", "1", f"{base}/churn-v1.joblib", v1),
        version("churn-v2", "2", f"{base}/churn-v2.joblib", v2),
        crash,
    ):
        c.objects.create(MODEL_VERSION, ns, mv)
    for name in ("churn-v1", "churn-v2", "churn-crash"):
        st = c.wait_status(MODEL_VERSION, ns, name, lambda s: s.get("phase") in ("Verified", "Failed"), "verified")
        assert st["phase"] == "Verified", st
        assert [h["event"] for h in st["history"]] == ["Registered", "Verified"]

    # 2. a canary rollout, promoted
    c.objects.create(
        MODEL_DEPLOYMENT,
        ns,
        model_deployment("churn", {"versionRef": "churn-v1"}, steps=[{"setWeight": 25}, {"pause": {}}]),
    )
    c.wait_status(MODEL_DEPLOYMENT, ns, "churn", lambda s: s.get("phase") == "Healthy", "v1 Healthy", 600)
    rec = RolloutRecorder(c.apps, c.custom, ns, "churn")
    c.objects.patch(MODEL_DEPLOYMENT, ns, "churn", {"spec": {"model": {"versionRef": "churn-v2"}}})
    c.wait_status(MODEL_DEPLOYMENT, ns, "churn", lambda s: s.get("currentStepIndex") == 1, "paused at 25%")
    c.objects.patch_status(MODEL_DEPLOYMENT, ns, "churn", {"promoteStep": 1})
    st = c.wait_status(
        MODEL_DEPLOYMENT, ns, "churn", lambda s: s.get("phase") == "Healthy" and s.get("stableVersion") == "churn-v2",
        "promoted", 600,
    )  # fmt: skip
    assert_promoted_once(rec.stop(), st, "churn-v1", "churn-v2", weights=[25])

    # 3. a canary that crash-loops, rolled back
    md = model_deployment("fragile", {"versionRef": "churn-v1"}, replicas=1, steps=[{"setWeight": 50}, {"pause": {}}])
    md["spec"]["strategy"]["canary"]["progressDeadline"] = "90s"
    c.objects.create(MODEL_DEPLOYMENT, ns, md)
    c.wait_status(MODEL_DEPLOYMENT, ns, "fragile", lambda s: s.get("phase") == "Healthy", "v1 Healthy", 600)
    rec = RolloutRecorder(c.apps, c.custom, ns, "fragile")
    c.objects.patch(MODEL_DEPLOYMENT, ns, "fragile", {"spec": {"model": {"versionRef": "churn-crash"}}})
    st = c.wait_status(MODEL_DEPLOYMENT, ns, "fragile", lambda s: s.get("phase") == "RolledBack", "rolled back", 600)
    assert_rolled_back_without_promotion(rec.stop(), st, "churn-v1", "churn-crash", replicas=1)
    ready = next(x for x in st["conditions"] if x["type"] == "Ready")
    assert ready["reason"] == "ProgressDeadlineExceeded", ready

    # 4. drift: the CronJob's pod under its ServiceAccount, then one retraining Job
    dm = monitor(Path("unused"), Path("unused"))
    dm["spec"]["reference"]["uri"] = f"{base}/reference.csv"
    dm["spec"]["current"]["uri"] = f"{base}/current.csv"
    dm["spec"]["schedule"] = "* * * * *"
    dm["spec"]["columnMapping"] = {"categorical": ["plan"], "numerical": ["tenure", "charges", "calls"]}
    train = dm["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    train["securityContext"] = POD_SECURITY
    train["restartPolicy"] = "Never"
    train["containers"] = [{"name": "train", "image": c.image, "imagePullPolicy": "IfNotPresent",
                            "command": ["python", "-c", "print('retrained')"], "securityContext": CONTAINER_SECURITY}]  # fmt: skip
    c.objects.create(DRIFT_MONITOR, ns, dm)

    def retraining_job(s: Obj) -> str | None:
        job = s.get("activeJob") or s.get("lastRetrain")  # the Job finishes fast: lastRetrain then
        return str(job["name"]) if job else None

    st = c.wait_status(DRIFT_MONITOR, ns, "churn-drift", lambda s: bool(retraining_job(s)), "drift, a Job", 600)
    job = retraining_job(st)
    assert (st.get("lastResult") or {}).get("datasetDrift") is True, st.get("lastResult")
    checks = [j.metadata.name for j in c.batch.list_namespaced_job(ns).items if _owned_by_cronjob(j)]
    assert checks, "the drift check ran as a Job of the CronJob"
    pods = [p for name in checks for p in c.core.list_namespaced_pod(ns, label_selector=f"job-name={name}").items]
    assert {p.spec.service_account_name for p in pods} == {"churn-drift-drift-check"}  # its own, least privilege
    assert any(p.status.phase == "Succeeded" for p in pods), [p.status.phase for p in pods]
    time.sleep(70)  # the next scheduled check drifts again: still one retraining Job (cooldown 1h)
    retraining = [j.metadata.name for j in c.batch.list_namespaced_job(ns).items if not _owned_by_cronjob(j)]
    assert retraining == [job]

    # every pod of the namespace was admitted under `restricted` (nothing refused by Pod Security)
    refused = [e.message for e in c.core.list_namespaced_event(ns).items if e.reason == "FailedCreate"]
    assert refused == [], refused
