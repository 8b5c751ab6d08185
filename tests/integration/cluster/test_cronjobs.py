"""CronJobs on the runner's documented clock setting: one cron minute lasts 1 s in these tests."""

from __future__ import annotations

import time
from datetime import datetime

from tests.integration.cluster.conftest import BATCH, CORE, IMAGE, Obj, Workloads, alive, condition, container_status


def cronjob(name: str, command: list[str], **spec: object) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {
            "schedule": "*/1 * * * *",
            "jobTemplate": {
                "metadata": {"labels": {"cron": name}},
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "main", "image": IMAGE, "command": command}],
                        }
                    },
                },
            },
            **spec,
        },
    }


def jobs_of(w: Workloads, name: str) -> list[Obj]:
    return sorted(w.api.items(f"{BATCH}/jobs", labelSelector=f"cron={name}"), key=lambda j: j["metadata"]["name"])


def complete(job: Obj) -> bool:
    c = condition(job, "Complete")
    return c is not None and c["status"] == "True"


def test_every_minute_schedule_creates_jobs_as_kube_names_them(workloads: Workloads) -> None:
    w = workloads
    cj = w.api.create(f"{BATCH}/cronjobs", cronjob("tick", ["true"]))
    first = w.api.wait(lambda: next((j for j in jobs_of(w, "tick") if complete(j)), None), what="a completed Job")
    meta = first["metadata"]
    scheduled = meta["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    minute = int(datetime.fromisoformat(scheduled.replace("Z", "+00:00")).timestamp()) // 60
    assert meta["name"] == f"tick-{minute}"
    (owner,) = meta["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "CronJob",
        "tick",
        cj["metadata"]["uid"],
        True,
    )

    def status() -> Obj | None:
        s = w.api.get(f"{BATCH}/cronjobs/tick").get("status") or {}
        return s if s.get("lastScheduleTime") and s.get("lastSuccessfulTime") else None

    s = w.api.wait(status, what="lastScheduleTime and lastSuccessfulTime")
    assert s["lastScheduleTime"].endswith(":00Z")  # a scheduled minute
    events = [e["message"] for e in w.api.items(f"{CORE}/events") if e["involvedObject"]["name"] == "tick"]
    assert f"Created job tick-{minute}" in events


def test_history_limits_delete_old_jobs(workloads: Workloads) -> None:
    w = workloads
    w.api.create(f"{BATCH}/cronjobs", cronjob("hist", ["true"], successfulJobsHistoryLimit=1))
    seen: set[str] = set()

    def enough() -> bool:
        names = {j["metadata"]["name"] for j in jobs_of(w, "hist")}
        seen.update(names)
        return len(seen) >= 4 and min(seen) not in names

    w.api.wait(enough, within=20, what="four Jobs created and the oldest deleted")
    w.api.wait(lambda: len([j for j in jobs_of(w, "hist") if complete(j)]) <= 1, what="at most one completed Job kept")


def test_forbid_skips_runs_while_one_is_active_and_suspend_stops_it(workloads: Workloads) -> None:
    w = workloads
    # each run takes ~2 cron minutes: under Forbid no second Job may exist while the first runs
    w.api.create(f"{BATCH}/cronjobs", cronjob("solo", ["python", "-c", "import time; time.sleep(2)"],
                                              concurrencyPolicy="Forbid"))  # fmt: skip
    (first,) = w.api.wait(lambda: jobs_of(w, "solo"), what="a first Job")
    deadline = time.monotonic() + 30
    while not complete(w.api.get(f"{BATCH}/jobs/{first['metadata']['name']}")):
        # at most one: the first may complete between the get above and this list (then none is active)
        active = [j for j in jobs_of(w, "solo") if not complete(j)]
        assert len(active) <= 1, [j["metadata"]["name"] for j in active]
        assert time.monotonic() < deadline, "the first Job did not complete within 30 s"
        time.sleep(0.05)
    events = [e["reason"] for e in w.api.items(f"{CORE}/events") if e["involvedObject"]["name"] == "solo"]
    assert "JobAlreadyActive" in events
    # the missed run starts once the first one is done
    w.api.wait(lambda: len(jobs_of(w, "solo")) >= 2, what="the next Job after the first completed")

    w.api.patch(f"{BATCH}/cronjobs/solo", {"spec": {"suspend": True}})
    before = {j["metadata"]["name"] for j in jobs_of(w, "solo")}
    cj = w.api.get(f"{BATCH}/cronjobs/solo")
    last = cj["status"]["lastScheduleTime"]
    # three cron minutes pass without a new Job
    w.api.wait(lambda: all(complete(j) for j in jobs_of(w, "solo")), within=20, what="running Jobs finish")
    time.sleep(3.0)
    assert {j["metadata"]["name"] for j in jobs_of(w, "solo")} <= before
    assert w.api.get(f"{BATCH}/cronjobs/solo")["status"]["lastScheduleTime"] == last


def failed(job: Obj) -> bool:
    c = condition(job, "Failed")
    return c is not None and c["status"] == "True"


def pods_of_jobs(w: Workloads, prefix: str) -> list[Obj]:
    """Pods of the Jobs whose names start with `prefix` (a CronJob's Jobs)."""
    return [p for p in w.api.pods() if p["metadata"].get("labels", {}).get("job-name", "").startswith(prefix)]


def minute_of(job: Obj | str) -> int:
    name = job if isinstance(job, str) else job["metadata"]["name"]
    return int(name.rsplit("-", 1)[1])


def test_replace_deletes_the_running_job_and_starts_the_next_one(workloads: Workloads) -> None:
    w = workloads
    # each run would take a minute of real time (60 cron minutes): every scheduled run replaces the running one
    w.api.create(f"{BATCH}/cronjobs", cronjob("swap", ["python", "-c", "import time; time.sleep(60)"],
                                              concurrencyPolicy="Replace"))  # fmt: skip
    seen: set[str] = set()
    together: list[list[str]] = []  # every look that found more than one Job
    pids: dict[str, set[int]] = {}

    def four_seen() -> bool:
        names = [j["metadata"]["name"] for j in jobs_of(w, "swap")]
        if len(names) > 1:
            together.append(names)
        seen.update(names)
        for pod in pods_of_jobs(w, "swap-"):
            if cid := container_status(pod).get("containerID"):
                pids.setdefault(pod["metadata"]["labels"]["job-name"], set()).add(int(cid.removeprefix("sandbox://")))
        return len(seen) >= 4

    w.api.wait(four_seen, within=30, what="four Jobs, each replacing the one before")
    assert not together, together  # never two at once: the running one is deleted before the next is created
    (current,) = w.api.wait(lambda: jobs_of(w, "swap"), what="the running Job")
    name = current["metadata"]["name"]
    replaced = sorted((n for n in seen if n != name), key=minute_of)
    assert minute_of(name) > minute_of(replaced[-1])
    assert all(condition(current, t) is None for t in ("Complete", "Failed"))  # still running, not finished
    assert len(w.api.get(f"{BATCH}/cronjobs/swap")["status"].get("active") or []) <= 1
    # the replaced Jobs' pods are collected and their processes stopped
    old_pids = {pid for job in replaced for pid in pids.get(job, set())}
    assert old_pids, "no replaced Job's pod was seen running"
    w.api.wait(lambda: not any(alive(pid) for pid in old_pids), within=15, what="replaced Jobs' processes stopped")
    w.api.wait(lambda: not [p for p in pods_of_jobs(w, "swap-") if p["metadata"]["labels"]["job-name"] in replaced],
               what="replaced Jobs' pods deleted")  # fmt: skip
    events = [
        (e["reason"], e["message"]) for e in w.api.items(f"{CORE}/events") if e["involvedObject"]["name"] == "swap"
    ]
    for job in replaced:
        assert ("SuccessfulDelete", f"Deleted job {job}") in events


def test_failed_jobs_history_limit_deletes_the_oldest_failed_jobs(workloads: Workloads) -> None:
    w = workloads
    w.api.create(f"{BATCH}/cronjobs", cronjob("flaky", ["false"], failedJobsHistoryLimit=2))
    seen: set[str] = set()

    def five() -> bool:
        seen.update(j["metadata"]["name"] for j in jobs_of(w, "flaky"))
        return len(seen) >= 5

    w.api.wait(five, within=20, what="five Jobs created")
    w.api.patch(f"{BATCH}/cronjobs/flaky", {"spec": {"suspend": True}})

    def settled() -> list[str] | None:
        jobs = jobs_of(w, "flaky")
        seen.update(j["metadata"]["name"] for j in jobs)
        if not all(failed(j) for j in jobs):
            return None
        names = sorted((j["metadata"]["name"] for j in jobs), key=minute_of)
        return names if names == sorted(seen, key=minute_of)[-2:] else None

    kept = w.api.wait(settled, what="only the two newest failed Jobs kept")
    deleted = sorted(seen - set(kept), key=minute_of)
    assert len(deleted) >= 3
    events = [
        (e["reason"], e["message"]) for e in w.api.items(f"{CORE}/events") if e["involvedObject"]["name"] == "flaky"
    ]
    for job in deleted:
        assert ("SuccessfulDelete", f"Deleted job {job}") in events
    w.api.wait(lambda: not [p for p in pods_of_jobs(w, "flaky-") if p["metadata"]["labels"]["job-name"] in deleted],
               what="the deleted Jobs' pods collected")  # fmt: skip
