"""The API server misbehaves during a rollout: it answers 500 or 503 for a while, or a conflict
(409) at every other status write. The rollout ends exactly as without the fault: every traffic
shift once, never back, one history entry per event."""

from __future__ import annotations

import pytest

from tests.integration.faults.conftest import Chaos
from tests.integration.rollout.conftest import wait
from tests.support.rollout_checks import assert_promoted_once


@pytest.mark.parametrize("code", [500, 503])
def test_errors_for_a_while(chaos: Chaos, code: int):
    name = f"errors{code}"
    rec = chaos.start_rollout(name)
    # Every request about this rollout fails (its ModelDeployment, its Deployments and Services,
    # its ModelVersions; reads and writes, the operator's and kopf's), until healed.
    rule = chaos.proxy.fail(lambda method, path: f"/{name}" in path and "watch=" not in path, status=code)
    chaos.to_v2(name)
    wait(lambda: rule.applied >= 6, f"six requests answered {code}", timeout=30)
    chaos.proxy.heal(rule)
    st = chaos.promote_through(name, [1])
    assert_promoted_once(rec.stop(), st, f"{name}-v1", f"{name}-v2", weights=[25])


def test_a_conflict_at_every_other_status_write(chaos: Chaos):
    name = "conflicts"
    rec = chaos.start_rollout(name, steps=[{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}])
    status_path = f"/modeldeployments/{name}/status"
    rule = chaos.proxy.conflict(lambda method, path: method == "PATCH" and path.endswith(status_path))
    chaos.to_v2(name)
    st = chaos.promote_through(name, [1, 3])
    assert rule.applied >= 4  # every status write of the rollout met a conflict first
    assert_promoted_once(rec.stop(), st, f"{name}-v1", f"{name}-v2", weights=[25, 50])


def test_requests_that_time_out(chaos: Chaos):
    """A server that never answers (no error, no closed connection) for a while: the operator's
    requests must time out on their own and be retried; none may hang its handler for ever."""
    name = "stalls"
    rec = chaos.start_rollout(name)
    rule = chaos.proxy.stall(lambda method, path: f"/{name}" in path and "watch=" not in path)
    chaos.to_v2(name)
    wait(lambda: rule.applied >= 3, "three requests left unanswered", timeout=30)
    chaos.proxy.heal(rule)
    st = chaos.promote_through(name, [1], timeout=120)
    assert_promoted_once(rec.stop(), st, f"{name}-v1", f"{name}-v2", weights=[25])
