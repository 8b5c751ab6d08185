"""The pure parts of the ModelDeployment I/O: what counts as a change, how a Deployment's status
becomes ready pods of the current template, and the status merge patch."""

from __future__ import annotations

import pytest

from modelops.api.modeldeployment import ModelDeploymentStatus, Tracks, TrackStatus
from modelops.k8s.rollout_io import differs, status_patch, track_observation


@pytest.mark.parametrize(
    ("desired", "live", "changed"),
    [
        ({"a": 1}, {"a": 1, "defaulted": "x"}, False),  # fields we do not set are ignored
        ({"ports": [{"port": 80}]}, {"ports": [{"port": 80, "protocol": "TCP"}]}, False),
        ({"ports": [{"port": 80}]}, {"ports": [{"port": 80}, {"port": 81}]}, True),
        ({"resources": {"requests": {"cpu": "500m"}}}, {"resources": {"requests": {"cpu": "0.5"}}}, False),
        ({"resources": {"limits": {"memory": "1Gi"}}}, {"resources": {"limits": {"memory": "1073741824"}}}, False),
        ({"resources": {"requests": {"cpu": "1"}}}, {"resources": {"requests": {"cpu": "2"}}}, True),
        ({"args": ["0.5"]}, {"args": ["500m"]}, True),  # quantities only under resources
        ({"replicas": 2}, {"replicas": 3}, True),
        ({"a": {"b": 1}}, {"a": None}, True),
    ],
)
def test_differs(desired, live, changed):
    assert differs(desired, live) is changed


def deployment(generation=2, observed=2, replicas=3, total=3, updated=3, ready=3):
    return {
        "metadata": {
            "generation": generation,
            "annotations": {"modelops.dev/model-version": "churn-v2", "modelops.dev/server-revision": "r1"},
        },
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
        },
    }


@pytest.mark.parametrize(
    ("d", "ready", "updated", "observed"),
    [
        (deployment(), 3, True, True),
        (deployment(observed=1), 0, False, False),  # the controller has not seen the latest spec
        (deployment(total=4, updated=2, ready=4), 2, False, True),  # 2 old pods may be the ready ones
        (deployment(total=4, updated=2, ready=2), 0, False, True),
        (deployment(replicas=0, total=0, updated=0, ready=0), 0, True, True),
    ],
)
def test_track_observation_counts_ready_pods_of_the_current_template(d, ready, updated, observed):
    obs = track_observation(d)
    assert (obs.exists, obs.version, obs.revision) == (True, "churn-v2", "r1")
    assert (obs.ready, obs.updated, obs.observed) == (ready, updated, observed)


def test_absent_deployment():
    assert track_observation(None).exists is False


def test_status_patch_removes_unset_fields_with_nulls():
    st = ModelDeploymentStatus(stable_version="churn-v1", tracks=Tracks(stable=TrackStatus(version="churn-v1")))
    patch = status_patch(st)
    assert patch["canaryVersion"] is None
    assert patch["tracks"]["canary"] is None
    assert patch["stableVersion"] == "churn-v1"
    assert patch["conditions"] == []
