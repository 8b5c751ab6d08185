"""Jobs run to completion by the workload runner: success, back-off limit, deadline, parallelism."""

from __future__ import annotations

from tests.integration.cluster.conftest import BATCH, CORE, IMAGE, Obj, Workloads, alive, condition, container_status


def job(name: str, command: list[str], **spec: object) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": IMAGE, "command": command}]}
            },
            **spec,
        },
    }


def finished(w: Workloads, name: str, ctype: str) -> Obj | None:
    j = w.api.get(f"{BATCH}/jobs/{name}")
    c = condition(j, ctype)
    return j if c is not None and c["status"] == "True" else None


def types(obj: Obj) -> list[str]:
    return [c["type"] for c in obj["status"].get("conditions") or []]


def test_a_job_that_succeeds_is_complete(workloads: Workloads) -> None:
    w = workloads
    created = w.api.create(f"{BATCH}/jobs", job("hello", ["python", "-c", "print('job done')"]))
    done = w.api.wait(lambda: finished(w, "hello", "Complete"), what="Complete")
    status = done["status"]
    assert status["succeeded"] == 1
    assert "failed" not in status
    assert "active" not in status
    assert status["startTime"] <= status["completionTime"]
    assert types(done) == ["SuccessCriteriaMet", "Complete"]
    complete = condition(done, "Complete")
    assert complete is not None
    assert complete["reason"] == "CompletionsReached"
    (pod,) = w.api.pods("batch.kubernetes.io/job-name=hello")
    uid = created["metadata"]["uid"]
    for key in ("batch.kubernetes.io/controller-uid", "controller-uid"):
        assert pod["metadata"]["labels"][key] == uid
    assert pod["metadata"]["labels"]["job-name"] == "hello"
    (owner,) = pod["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == ("Job", "hello", uid, True)
    assert pod["status"]["phase"] == "Succeeded"
    log = (w.state / "pods" / "default" / pod["metadata"]["name"] / "main.log").read_text()
    assert "job done" in log


def test_a_failing_job_is_failed_after_its_backoff_limit(workloads: Workloads) -> None:
    w = workloads
    w.api.create(f"{BATCH}/jobs", job("broken", ["sh", "-c", "echo failing; exit 2"], backoffLimit=1))
    failed = w.api.wait(lambda: finished(w, "broken", "Failed"), what="Failed")
    assert failed["status"]["failed"] == 2  # backoffLimit 1: the first failure is retried once
    assert "succeeded" not in failed["status"]
    assert "completionTime" not in failed["status"]
    assert types(failed) == ["FailureTarget", "Failed"]
    for ctype in ("FailureTarget", "Failed"):
        c = condition(failed, ctype)
        assert c is not None
        assert (c["reason"], c["message"]) == ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    pods = w.api.pods("job-name=broken")
    assert len(pods) == 2
    for pod in pods:
        assert pod["status"]["phase"] == "Failed"
        assert container_status(pod)["state"]["terminated"]["exitCode"] == 2
    events = [e["reason"] for e in w.api.items(f"{CORE}/events") if e["involvedObject"]["name"] == "broken"]
    assert events.count("SuccessfulCreate") == 2
    assert "BackoffLimitExceeded" in events


def test_active_deadline_fails_the_job_and_stops_its_pod(workloads: Workloads) -> None:
    w = workloads
    w.api.create(f"{BATCH}/jobs", job("slow", ["python", "-c", "import time; print('up', flush=True); time.sleep(60)"],
                                     activeDeadlineSeconds=1))  # fmt: skip
    pids: set[int] = set()

    def failed_job() -> Obj | None:
        # Record every process the Job's pods ran (on a loaded machine the deadline may pass before one starts).
        for p in w.api.pods("job-name=slow"):
            if cid := container_status(p).get("containerID"):
                pids.add(int(cid.removeprefix("sandbox://")))
        return finished(w, "slow", "Failed")

    failed = w.api.wait(failed_job, what="Failed")
    c = condition(failed, "Failed")
    assert c is not None
    assert (c["reason"], c["message"]) == ("DeadlineExceeded", "Job was active longer than specified deadline")
    w.api.wait(lambda: not any(alive(pid) for pid in pids), within=10, what="pod processes stopped")


def test_parallelism_and_completions(workloads: Workloads) -> None:
    w = workloads
    w.api.create(f"{BATCH}/jobs", job("many", ["true"], parallelism=2, completions=3))
    done = w.api.wait(lambda: finished(w, "many", "Complete"), what="Complete")
    assert done["status"]["succeeded"] == 3
    assert len(w.api.pods("job-name=many")) == 3


def test_ttl_after_finished_deletes_the_job(workloads: Workloads) -> None:
    w = workloads
    w.api.create(f"{BATCH}/jobs", job("shortlived", ["true"], ttlSecondsAfterFinished=0))
    w.api.wait(lambda: w.api.find(f"{BATCH}/jobs/shortlived") is None, what="Job deleted after it finished")
    w.api.wait(lambda: not w.api.pods("job-name=shortlived"), what="its pods collected")
