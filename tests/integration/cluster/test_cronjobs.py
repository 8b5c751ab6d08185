"""CronJobs on the runner's documented clock setting: one cron minute lasts 1 s in these tests."""

from __future__ import annotations

import time
from datetime import datetime

from tests.integration.cluster.conftest import BATCH, CORE, IMAGE, Obj, Workloads, condition


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
