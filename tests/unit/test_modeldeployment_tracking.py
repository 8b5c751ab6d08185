"""ModelDeployment handler plumbing: which deployments a ModelVersion's event reconciles (the keys
each deployment is indexed under), and the order in which waiting reconciles get a slot."""

from __future__ import annotations

import threading
import time

from modelops.handlers.modeldeployment import Slots, tracked_keys


def test_version_ref_and_served_versions_are_tracked() -> None:
    md = {
        "spec": {"model": {"versionRef": "fraud-3"}},
        "status": {"stableVersion": "fraud-1", "canaryVersion": "fraud-3"},
    }
    assert tracked_keys(md) == {("version", "fraud-3"), ("version", "fraud-1")}


def test_model_name_is_tracked_with_what_is_served() -> None:
    md = {"spec": {"model": {"modelName": "fraud", "stage": "Production"}}, "status": {"stableVersion": "fraud-2"}}
    assert tracked_keys(md) == {("model", "fraud"), ("version", "fraud-2")}


def test_a_deployment_without_model_or_status_tracks_nothing() -> None:
    assert tracked_keys({"spec": {}}) == set()
    assert tracked_keys({"spec": {"model": {"versionRef": ""}}, "status": {"canaryVersion": None}}) == set()


def test_a_recheck_waits_while_an_urgent_reconcile_waits() -> None:
    slots = Slots(1)
    slots.acquire()  # the one slot is busy
    order: list[str] = []

    def take(label: str, recheck: bool) -> None:
        with slots.held(recheck):
            order.append(label)

    recheck = threading.Thread(target=take, args=("recheck", True))
    recheck.start()
    time.sleep(0.05)  # the re-check has queued first
    urgent = threading.Thread(target=take, args=("pause ended", False))
    urgent.start()
    deadline = time.monotonic() + 5
    while slots._urgent_waiting == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    slots.release()
    recheck.join(5)
    urgent.join(5)
    assert order == ["pause ended", "recheck"]


def test_a_recheck_takes_a_free_slot_when_nothing_else_waits() -> None:
    slots = Slots(2)
    slots.acquire()
    done = threading.Event()
    thread = threading.Thread(target=lambda: (slots.acquire(recheck=True), done.set()))
    thread.start()
    assert done.wait(5)
    thread.join(5)
