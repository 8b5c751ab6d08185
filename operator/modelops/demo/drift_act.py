"""Act 2, drift: the operator's CronJob, a check on shifted data, debounce, then a retraining Job."""

from __future__ import annotations

import contextlib
import io
from typing import Any

from kubernetes import client

from modelops.demo.stage import DemoFailure, Stage, condition, status_of
from modelops.k8s.drift_check import run_monitor_check
from modelops.k8s.resources import DRIFT_MONITOR

EXPECTED_DRIFT = {"tenure_months", "support_calls", "plan"}


def _check(stage: Stage) -> None:
    """What the CronJob's pod runs; with no kubelet here, the demo runs it in-process."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run_monitor_check(stage.api, stage.namespace, "churn-drift")
    stage.say(f"$ modelops drift check --monitor {stage.namespace}/churn-drift  ->  {out.getvalue().strip()}")


def run(stage: Stage) -> None:
    stage.heading("Drift monitoring: DriftMonitor")
    stage.api.create(DRIFT_MONITOR, stage.namespace, stage.load("drift/churn-drift.yaml"))
    stage.say("applied driftmonitor/churn-drift (target churn-v2, hourly, retrain after 2 drifted checks)")
    batch = client.BatchV1Api(stage.api.api)
    stage.wait_for(DRIFT_MONITOR, "churn-drift", lambda o: bool(status_of(o).get("resolvedReference")), "children")
    found = batch.list_namespaced_cron_job(stage.namespace, label_selector="modelops.dev/drift-monitor=churn-drift")
    cronjobs = stage.api.api.sanitize_for_serialization(found)["items"]
    if not cronjobs:
        raise DemoFailure("the operator created no CronJob")
    cj = cronjobs[0]
    pod = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    stage.say(
        f"operator created cronjob/{cj['metadata']['name']} ('{cj['spec']['schedule']}', concurrencyPolicy "
        f"{cj['spec']['concurrencyPolicy']}) running as serviceaccount/{pod['serviceAccountName']} "
        "(may only get/patch this monitor's status)"
    )

    _check(stage)
    obj = stage.wait_for(
        DRIFT_MONITOR, "churn-drift", lambda o: status_of(o).get("consecutiveDrifted") == 1, "debounce"
    )
    drifted = sorted(f["name"] for f in status_of(obj)["lastResult"]["features"] if f["drifted"])
    if set(drifted) != EXPECTED_DRIFT:
        raise DemoFailure(f"expected drift in {sorted(EXPECTED_DRIFT)}, got {drifted}")
    for f in sorted(status_of(obj)["lastResult"]["features"], key=lambda f: not f["drifted"]):
        stage.say(f"  {f['name']:<16} {f['test']:<14} {_verdict(f)}")
    cond = condition(obj, "DriftDetected") or {}
    stage.say(f"check 1: drift detected, action held: {cond.get('reason')} ({cond.get('message', '').split('; ')[-1]})")

    _check(stage)
    obj = stage.wait_for(DRIFT_MONITOR, "churn-drift", lambda o: bool(status_of(o).get("activeJob")), "retraining")
    job_name = status_of(obj)["activeJob"]["name"]
    job = stage.api.api.sanitize_for_serialization(batch.read_namespaced_job(job_name, stage.namespace))
    env = {e["name"]: e.get("value", "") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    stage.say(
        f"check 2: RetrainTriggered -> job/{job_name} created "
        f"(MODEL_NAME={env['MODEL_NAME']}, MODEL_VERSION={env['MODEL_VERSION']}, "
        f"DRIFT_REPORT {len(env['DRIFT_REPORT'])} bytes of JSON)"
    )
    ev = stage.wait_event("churn-drift", "RetrainTriggered")
    stage.say(f"  Event {ev['type']} {ev['reason']}: {ev['message']}")


def _verdict(f: dict[str, Any]) -> str:
    """The number the verdict rests on, labelled, against its threshold: a p-value must stay at or
    above it, a distance below it."""
    if f.get("pValue") is not None:
        compared = f"p-value {f['pValue']:.3g} {'<' if f['drifted'] else '>='} threshold {f['threshold']:g}"
        shown = f"statistic {f['statistic']:.3f}, {compared}"
    else:
        shown = f"distance {f['statistic']:.3f} {'>=' if f['drifted'] else '<'} threshold {f['threshold']:g}"
    return f"{shown}  {'DRIFT' if f['drifted'] else 'ok'}"
