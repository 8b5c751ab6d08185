"""Act 1, the registry: verification, a tampered artifact, refused and approved promotions."""

from __future__ import annotations

import datetime as dt
from textwrap import shorten

from modelops.demo.stage import DemoFailure, Stage, condition, status_of
from modelops.k8s.resources import MODEL_VERSION


def run(stage: Stage) -> None:
    stage.heading("Model registry: ModelVersion")
    for example in ("registry/churn-v1.yaml", "registry/churn-v2.yaml", "registry/churn-v2-tampered.yaml"):
        obj = stage.load(example)
        created = stage.api.create(MODEL_VERSION, stage.namespace, obj)
        stage.say(f"applied modelversion/{created['metadata']['name']} (phase Pending: digest not yet checked)")

    for name in ("churn-v1", "churn-v2"):
        obj = stage.wait_for(
            MODEL_VERSION,
            name,
            lambda o: status_of(o).get("phase") != "Pending" and status_of(o).get("phase") is not None,
            "verification",
        )
        phase = status_of(obj)["phase"]
        if phase != "Verified":
            raise DemoFailure(f"{name} should verify, got {phase}: {status_of(obj).get('message')}")
        stage.say(
            f"{name}: Pending -> Verified  ({status_of(obj)['verifiedDigest'][:23]}..., "
            f"{status_of(obj).get('artifactSizeBytes')} bytes)"
        )

    bad = stage.wait_for(
        MODEL_VERSION, "churn-v2-tampered", lambda o: status_of(o).get("phase") == "Failed", "digest mismatch"
    )
    ready = condition(bad, "Ready") or {}
    stage.say(f"churn-v2-tampered: Pending -> Failed  (Ready={ready.get('status')}, reason {ready.get('reason')})")
    ev = stage.wait_event("churn-v2-tampered", "DigestMismatch")
    stage.say(f"  Event {ev['type']} {ev['reason']}: {shorten(ev['message'], 100, placeholder=' ...')}")

    v1 = stage.wait_for(MODEL_VERSION, "churn-v1", lambda o: status_of(o).get("stage") == "Staging", "Staging")
    stage.say(f"churn-v1: stage None -> {status_of(v1)['stage']} (spec.stage Staging needs only a verified artifact)")

    # Production for v1, approved.
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    stage.api.patch(
        MODEL_VERSION,
        stage.namespace,
        "churn-v1",
        {
            "spec": {
                "stage": "Production",
                "approval": {
                    "approvedBy": "alice@example.com",
                    "approvedAt": now,
                    "reason": "AUC 0.89 on October holdout",
                },
            }
        },
    )
    stage.wait_for(MODEL_VERSION, "churn-v1", lambda o: status_of(o).get("stage") == "Production", "Production")
    stage.say("churn-v1: Staging -> Production (approved by alice@example.com)")

    # Production for v2 without approval: refused, nothing changes.
    stage.api.patch(MODEL_VERSION, stage.namespace, "churn-v2", {"spec": {"stage": "Production"}})
    v2 = stage.wait_for(
        MODEL_VERSION,
        "churn-v2",
        lambda o: (condition(o, "StageSynced") or {}).get("reason") == "ApprovalRequired",
        "a refusal",
    )
    cond = condition(v2, "StageSynced") or {}
    stage.say(f"churn-v2: promotion to Production REFUSED, stage stays {status_of(v2).get('stage')}")
    stage.say(f"  condition StageSynced=False reason {cond.get('reason')}: {cond.get('message')}")
    ev = stage.wait_event("churn-v2", "TransitionRefused")
    stage.say(f"  Event {ev['type']} {ev['reason']}")
    if status_of(stage.api.get(MODEL_VERSION, stage.namespace, "churn-v1")).get("stage") != "Production":
        raise DemoFailure("a refused promotion must not touch the current Production version")

    # Now approved: v2 becomes Production, v1 is archived.
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    stage.api.patch(
        MODEL_VERSION,
        stage.namespace,
        "churn-v2",
        {
            "spec": {
                "approval": {
                    "approvedBy": "bob@example.com",
                    "approvedAt": now,
                    "reason": "AUC 0.91 beats churn-v1 on November data",
                }
            }
        },
    )
    stage.wait_for(MODEL_VERSION, "churn-v2", lambda o: status_of(o).get("stage") == "Production", "Production")
    v1 = stage.wait_for(MODEL_VERSION, "churn-v1", lambda o: status_of(o).get("stage") == "Archived", "archiving")
    stage.say("churn-v2: None -> Production (approved by bob@example.com)")
    stage.say(f"churn-v1: Production -> Archived (spec.stage now {v1['spec']['stage']})")

    stage.heading("Audit trail of churn-v1 (status.history)")
    rows = [
        (h["time"], h["event"], f"{h.get('from') or 'None'} -> {h['to']}" if h.get("to") else "", h.get("message", ""))
        for h in status_of(v1).get("history", [])
    ]
    event_width = max((len(r[1]) for r in rows), default=0)
    move_width = max((len(r[2]) for r in rows), default=0)
    for at, event, move, message in rows:  # aligned columns; messages cut at a word, never inside one
        line = f"  {at}  {event:<{event_width}}  {move:<{move_width}}  {shorten(message, 80, placeholder=' ...')}"
        stage.say(line.rstrip())
