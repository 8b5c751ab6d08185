"""The DriftMonitor's target (core.drift_monitor.decide_target): resolvedReference,
registeredMetrics and Ready from the resolved ModelVersion, and no write when nothing changed;
the status patch removes metrics the new version does not register."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelops.api.driftmonitor import DriftMonitorSpec, DriftMonitorStatus
from modelops.core.drift_cronjob import MonitorRef
from modelops.core.drift_monitor import ResolvedTarget, decide_target
from modelops.handlers.driftmonitor import status_patch

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
MONITOR = MonitorRef(name="churn-drift", namespace="default", uid="u1")
SPEC = DriftMonitorSpec.model_validate({"target": {"deployment": "churn"}, "schedule": "*/5 * * * *"})
V1 = ResolvedTarget(True, "file:///profiles/v1.json", {"auc": 0.8, "accuracy": 0.9}, "churn-v1")
V2 = ResolvedTarget(True, "file:///profiles/v2.json", {"auc": 0.95}, "churn-v2")
V2_SAME_PROFILE = ResolvedTarget(True, "file:///profiles/v1.json", {"auc": 0.95}, "churn-v2")
V3_NO_PROFILE = ResolvedTarget(True, None, None, "churn-v3")
GONE = ResolvedTarget(False, None, None)


def settled(target: ResolvedTarget) -> DriftMonitorStatus:
    """The status a monitor on ``target`` has after its reconcile."""
    return decide_target(MONITOR, SPEC, DriftMonitorStatus(), target, 1, NOW - timedelta(hours=1)).status


@pytest.mark.parametrize(
    ("before", "after", "changed", "ready", "events"),
    [
        (V1, V1, False, ("True", "CronJobReady"), []),  # unchanged: nothing to write
        (V1, V2, True, ("True", "CronJobReady"), ["ReferenceChanged"]),
        (V1, V2_SAME_PROFILE, True, ("True", "CronJobReady"), []),  # only the registered metrics moved
        (V1, V3_NO_PROFILE, True, ("False", "NoReference"), []),
        (V3_NO_PROFILE, V1, True, ("True", "CronJobReady"), []),
        (V1, GONE, True, ("False", "WaitingForTarget"), []),
    ],
)
def test_decide_target(before, after, changed, ready, events):
    status = settled(before)
    d = decide_target(MONITOR, SPEC, status, after, 1, NOW)
    assert d.changed is changed
    assert (d.ready[0], d.ready[1]) == ready
    assert [e.reason for e in d.events] == events
    assert d.status.resolved_reference == after.reference
    assert d.status.registered_metrics == (dict(after.registered_metrics) if after.registered_metrics else None)
    if not changed:
        assert d.status == status


def test_a_changed_reference_is_named_in_the_event():
    d = decide_target(MONITOR, SPEC, settled(V1), V2, 1, NOW)
    assert [(e.type, e.message) for e in d.events] == [
        ("Normal", "reference file:///profiles/v1.json -> file:///profiles/v2.json (ModelVersion churn-v2)")
    ]


def test_the_status_patch_removes_metrics_the_new_version_does_not_register():
    stored = settled(V1).to_wire()
    patch = status_patch({"status": stored}, settled(V2))
    assert patch["registeredMetrics"] == {"auc": 0.95, "accuracy": None}
    assert patch["resolvedReference"] == "file:///profiles/v2.json"
    patch = status_patch({"status": stored}, settled(V3_NO_PROFILE))
    assert patch["registeredMetrics"] is None
