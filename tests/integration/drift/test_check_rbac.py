"""The drift check's least-privilege Role, proven by running: `modelops drift check` with the check
ServiceAccount's token writes its result through the sandbox's RBAC, and the same Role without `patch`
on `driftmonitors/status` fails it with the 403: as a plain process (quick, the exit and status
precisely), and as Jobs of the operator's CronJob template run by the sandbox's workload runner (the pod
gets its token from the kubelet; the narrow Job ends Failed after its backoffLimit, the 403 in its pods'
logs)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from modelops.k8s.resources import DRIFT_MONITOR
from modelops.sandbox import ServerThread
from modelops.sandbox.cluster import RunnerThread
from modelops.sandbox.cluster.gateway import GATEWAY_API_CRDS
from tests.integration.drift.conftest import NS, monitor, run_check, wait, write_csv
from tests.support.apiserver import CRDS

SA = "churn-drift-drift-check"
CRONJOB = "churn-drift-drift"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
BATCH = f"/apis/batch/v1/namespaces/{NS}"
IMAGE = "registry.test/modelops:check-rbac-test"
DENIED = (
    'driftmonitors.modelops.dev "churn-drift" is forbidden: User "system:serviceaccount:default:narrow" cannot '
    'patch resource "driftmonitors/status" in API group "modelops.dev" in the namespace "default"'
)


@pytest.fixture
def apiserver(tmp_path: Path) -> Iterator[ServerThread]:
    """The shared fixture's server, also serving `pods/NAME/log` from the runner's state directory."""
    server = ServerThread(
        port=0, crds=[CRDS, GATEWAY_API_CRDS], bookmark_interval=1.0, pod_log_dir=tmp_path / "state" / "pods"
    ).start()
    try:
        yield server
    finally:
        server.stop()


def token_kubeconfig(server: ServerThread, http: httpx.Client, sa: str, path: Path) -> Path:
    """A kubeconfig carrying a TokenRequest token of `sa`, as the sandbox kubelet writes one for a pod."""
    r = http.post(f"/api/v1/namespaces/{NS}/serviceaccounts/{sa}/token", json={"spec": {"expirationSeconds": 3600}})
    assert r.status_code == 201, r.text
    assert server.api is not None
    cfg: dict[str, Any] = server.api.kubeconfig(NS)
    cfg["users"] = [{"name": "sandbox", "user": {"token": r.json()["status"]["token"]}}]
    path.write_text(yaml.safe_dump(cfg))
    return path


def operator_ready(custom_objects: Any, http: httpx.Client) -> dict[str, Any]:
    """Wait until the operator has resolved the reference and created the check's Role; return the Role."""
    wait(
        lambda: (custom_objects.get(DRIFT_MONITOR, NS, "churn-drift").get("status") or {}).get("resolvedReference"),
        "the operator to resolve the reference",
    )
    got = wait(
        lambda: (r := http.get(f"{RBAC}/namespaces/{NS}/roles/{SA}")).status_code == 200 and r.json(),
        "the check Role",
    )
    assert http.get(f"{RBAC}/namespaces/{NS}/rolebindings/{SA}").status_code == 200
    return dict(got)


def narrow_account(http: httpx.Client, role: dict[str, Any]) -> None:
    """ServiceAccount `narrow`, bound to the operator's check Role minus `patch` (for another account: the
    operator would restore its own Role)."""
    narrow = copy.deepcopy(role["rules"])
    status_rule = next(r for r in narrow if r["resources"] == ["driftmonitors/status"])
    status_rule["verbs"] = [v for v in status_rule["verbs"] if v != "patch"]
    assert status_rule["verbs"] == ["get"]
    for path, body in (
        (f"/api/v1/namespaces/{NS}/serviceaccounts", {"metadata": {"name": "narrow"}}),
        (f"{RBAC}/namespaces/{NS}/roles", {"metadata": {"name": "narrow"}, "rules": narrow}),
        (
            f"{RBAC}/namespaces/{NS}/rolebindings",
            {
                "metadata": {"name": "narrow"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "narrow"},
                "subjects": [{"kind": "ServiceAccount", "name": "narrow", "namespace": NS}],
            },
        ),
    ):
        r = http.post(path, json=body)
        assert r.status_code == 201, r.text


@pytest.fixture
def http(apiserver: ServerThread) -> Any:
    with httpx.Client(base_url=apiserver.url, timeout=10) as c:
        yield c


@pytest.fixture
def runner(apiserver: ServerThread, tmp_path: Path) -> Iterator[RunnerThread]:
    """The workload runner: pods of IMAGE as processes, output under tmp_path/state/pods (served as pod logs)."""
    thread = RunnerThread(apiserver.url, tmp_path / "state", IMAGE, restart_backoff=0.3, probe_period=0.2).start()
    try:
        yield thread
    finally:
        thread.stop()


@pytest.mark.usefixtures("operator", "model_version")
def test_check_runs_with_its_least_privilege_role(apiserver, custom_objects, http, tmp_path):
    ref = write_csv(tmp_path / "ref.csv", 0, seed=1)
    cur = write_csv(tmp_path / "cur.csv", 1.0, seed=2)
    custom_objects.create(DRIFT_MONITOR, NS, monitor(ref, cur, action="alert"))
    operator_ready(custom_objects, http)
    kubeconfig = token_kubeconfig(apiserver, http, SA, tmp_path / "pod-kubeconfig")

    done = run_check(kubeconfig)
    assert done.returncode == 0, done.stderr
    assert "could not record Event" not in done.stderr  # the Role's Event rule suffices too
    status = custom_objects.get(DRIFT_MONITOR, NS, "churn-drift")["status"]
    assert status["lastResult"]["datasetDrift"] is True
    assert status["lastCheckTime"]
    events = http.get(f"/api/v1/namespaces/{NS}/events", params={"fieldSelector": "involvedObject.name=churn-drift"})
    by_check = [e for e in events.json()["items"] if e.get("source", {}).get("component") == "modelops-drift-check"]
    assert [e["reason"] for e in by_check] == ["DriftDetected"]

    # ... and nothing more: the same credentials read neither the monitor itself nor other objects
    token = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"]
    as_check = {"Authorization": f"Bearer {token}"}
    user = f"system:serviceaccount:{NS}:{SA}"
    r = http.get(f"/apis/modelops.dev/v1alpha1/namespaces/{NS}/driftmonitors/churn-drift", headers=as_check)
    assert r.json()["message"] == (
        f'driftmonitors.modelops.dev "churn-drift" is forbidden: User "{user}" cannot get resource "driftmonitors" '
        f'in API group "modelops.dev" in the namespace "{NS}"'
    )
    for path in (
        f"/api/v1/namespaces/{NS}/secrets",
        f"/apis/batch/v1/namespaces/{NS}/jobs",
        f"{RBAC}/namespaces/{NS}/roles",
    ):
        assert http.get(path, headers=as_check).status_code == 403, path


@pytest.mark.usefixtures("operator", "model_version")
def test_check_without_patch_on_status_fails_with_the_403(apiserver, custom_objects, http, tmp_path):
    ref = write_csv(tmp_path / "ref.csv", 0, seed=1)
    custom_objects.create(DRIFT_MONITOR, NS, monitor(ref, ref, action="alert"))
    role = operator_ready(custom_objects, http)

    narrow_account(http, role)
    before = custom_objects.get(DRIFT_MONITOR, NS, "churn-drift")["status"]

    done = run_check(token_kubeconfig(apiserver, http, "narrow", tmp_path / "narrow-kubeconfig"))
    assert done.returncode != 0
    assert DENIED in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    after = custom_objects.get(DRIFT_MONITOR, NS, "churn-drift")["status"]
    assert "lastResult" not in after
    assert after.get("lastCheckTime") == before.get("lastCheckTime")


def job_from_cronjob(cronjob: dict[str, Any], name: str, service_account: str) -> dict[str, Any]:
    """A Job of the CronJob's jobTemplate (as `kubectl create job --from=cronjob/...`), under another account."""
    template = copy.deepcopy(cronjob["spec"]["jobTemplate"])
    template["spec"]["template"]["spec"]["serviceAccountName"] = service_account
    return {"metadata": {"name": name, "labels": template["metadata"]["labels"]}, "spec": template["spec"]}


def job_condition(http: httpx.Client, name: str, ctype: str) -> dict[str, Any] | None:
    job = http.get(f"{BATCH}/jobs/{name}").json()
    c = next((c for c in (job.get("status") or {}).get("conditions") or [] if c["type"] == ctype), None)
    return job if c is not None and c["status"] == "True" else None


def pod_log(http: httpx.Client, pod: dict[str, Any]) -> str:
    r = http.get(f"/api/v1/namespaces/{NS}/pods/{pod['metadata']['name']}/log")
    assert r.status_code == 200, r.text
    return r.text


@pytest.mark.usefixtures("operator", "model_version")
def test_check_jobs_under_the_workload_runner_complete_with_the_role_and_fail_with_the_403_without_patch(
    custom_objects: Any, http: httpx.Client, runner: RunnerThread, tmp_path: Path
) -> None:
    ref = write_csv(tmp_path / "ref.csv", 0, seed=1)
    cur = write_csv(tmp_path / "cur.csv", 1.0, seed=2)
    spec = monitor(ref, cur, action="alert")
    spec["spec"]["image"] = IMAGE  # the image the runner runs
    spec["spec"]["schedule"] = "0 0 1 1 *"  # no scheduled run during the test: the Jobs below are the only checks
    custom_objects.create(DRIFT_MONITOR, NS, spec)
    narrow_account(http, operator_ready(custom_objects, http))
    cronjob = wait(lambda: (r := http.get(f"{BATCH}/cronjobs/{CRONJOB}")).status_code == 200 and r.json(), "CronJob")
    assert cronjob["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 1  # the operator's: one retry

    # Both at once (two cores): the check's own account, and the narrow one.
    for name, account in (("check-ok", SA), ("check-narrow", "narrow")):
        r = http.post(f"{BATCH}/jobs", json=job_from_cronjob(cronjob, name, account))
        assert r.status_code == 201, r.text

    state = tmp_path / "state" / "pods"

    def outputs() -> str:
        """Every pod's output, for a failure message."""
        return "\n".join(f"--- {p}:\n{p.read_text()[-2000:]}" for p in sorted(state.glob("*/*/*.log")))

    failed = wait(lambda: job_condition(http, "check-narrow", "Failed"), "check-narrow Failed", timeout=90)
    c = next(c for c in failed["status"]["conditions"] if c["type"] == "Failed")
    assert c["reason"] == "BackoffLimitExceeded", outputs()
    assert failed["status"]["failed"] == 2  # backoffLimit 1: the failed pod was retried once
    assert "succeeded" not in failed["status"]
    pods = http.get(f"/api/v1/namespaces/{NS}/pods", params={"labelSelector": "job-name=check-narrow"}).json()["items"]
    assert len(pods) == 2
    for pod in pods:
        assert pod["spec"]["serviceAccountName"] == "narrow"
        assert pod["status"]["phase"] == "Failed"
        assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] != 0
        log = pod_log(http, pod)
        assert DENIED in log, outputs()
        assert "Traceback" not in log

    done = wait(lambda: job_condition(http, "check-ok", "Complete"), "check-ok Complete", timeout=90)
    assert done["status"]["succeeded"] == 1, outputs()
    (pod,) = http.get(f"/api/v1/namespaces/{NS}/pods", params={"labelSelector": "job-name=check-ok"}).json()["items"]
    assert pod["spec"]["serviceAccountName"] == SA
    assert "forbidden" not in pod_log(http, pod)
    status = custom_objects.get(DRIFT_MONITOR, NS, "churn-drift")["status"]
    assert status["lastResult"]["datasetDrift"] is True  # written by check-ok: the narrow Job could not
