"""The chart's high-availability values: several replicas only with leader election, the flags
`modelops run` accepts, a Role on the one Lease, a PodDisruptionBudget when it cannot block drains."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from modelops.errors import CLIError

from ._support import CHART_DIR, NAMESPACE, RELEASE, VALUE_SETS, Renderer
from .test_chart import by_kind, one, operator_container

HA = VALUE_SETS["ha"]


def parsed_args(manifests: list[dict[str, Any]]) -> Any:
    from modelops.cli import build_parser

    container = operator_container(manifests)
    return build_parser().parse_args([*container["command"][1:], *container["args"]])


@pytest.mark.parametrize(
    ("values", "accepted"),
    [
        ({"replicas": 2}, False),  # without a Lease two kopf operators would both reconcile
        ({"replicas": 1}, True),
        ({"replicas": 2, "leaderElection": {"enabled": True}}, True),
        ({"replicas": 3, "leaderElection": {"enabled": True}}, True),
        ({"replicas": 2, "leaderElection": {"enabled": False}}, False),
        ({"leaderElection": {"enabled": True, "leaseDuration": 15}}, False),  # a typo
        ({"leaderElection": {"enabled": True, "leaseName": "Modelops_Lease"}}, False),
        ({"leaderElection": {"enabled": True, "retryPeriodSeconds": 0}}, False),
        ({"podDisruptionBudget": {"enabled": True, "minAvailable": 1}}, False),
    ],
)
def test_values_schema(values: dict[str, Any], accepted: bool) -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        if accepted:
            chart.validate_schema(chart.merge_values(values))
        else:
            with pytest.raises(helm.HelmValuesError):
                chart.validate_schema(chart.merge_values(values))


def test_leader_election_runs_every_replica_with_the_lease_flags(render: Renderer) -> None:
    from modelops.commands.run import leader_election_config

    manifests = render(HA)
    deployment = one(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    env = {e["name"]: e for e in operator_container(manifests)["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    election = leader_election_config(parsed_args(manifests))
    assert (election.lease_namespace, election.lease_name) == (NAMESPACE, RELEASE)
    timing = election.timing
    assert (timing.lease_duration, timing.renew_deadline, timing.retry_period) == (15, 10, 2)


def test_without_leader_election_nothing_changes(render: Renderer) -> None:
    manifests = render({})
    assert not parsed_args(manifests).leader_elect
    assert "POD_NAME" not in {e["name"] for e in operator_container(manifests)["env"]}
    assert [r["metadata"]["name"] for r in by_kind(manifests, "Role") if "leader" in r["metadata"]["name"]] == []
    assert by_kind(manifests, "PodDisruptionBudget") == []


def test_the_chart_and_the_cli_agree_on_unsafe_timings(render: Renderer) -> None:
    """The schema checks each number; `modelops run` refuses a renew deadline not below the lease
    (the pod would crash-loop with that one line rather than run two leaders)."""
    from modelops.commands.run import leader_election_config

    values = {**HA, "leaderElection": {"enabled": True, "leaseDurationSeconds": 10, "renewDeadlineSeconds": 12}}
    with pytest.raises(CLIError, match="must be longer than the renew deadline"):
        leader_election_config(parsed_args(render(values)))


def test_a_custom_lease_name_is_the_flag_and_the_role_name(render: Renderer) -> None:
    from modelops.commands.run import leader_election_config

    manifests = render({**HA, "leaderElection": {"enabled": True, "leaseName": "ops-leader"}})
    assert leader_election_config(parsed_args(manifests)).lease_name == "ops-leader"
    role = next(r for r in by_kind(manifests, "Role") if r["metadata"]["name"].endswith("-leader-election"))
    assert role["rules"][1]["resourceNames"] == ["ops-leader"]


def test_the_lease_role_is_least_privilege_in_the_release_namespace(render: Renderer) -> None:
    manifests = render(HA)
    role = next(r for r in by_kind(manifests, "Role") if r["metadata"]["name"].endswith("-leader-election"))
    assert role["metadata"] == {**role["metadata"], "name": f"{RELEASE}-leader-election", "namespace": NAMESPACE}
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": [RELEASE],
         "verbs": ["get", "update"]},
    ]  # fmt: skip
    binding = next(b for b in by_kind(manifests, "RoleBinding") if b["roleRef"]["name"] == role["metadata"]["name"])
    assert binding["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    sa = one(manifests, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]
    # the Role covers every call the elector makes (modelops.leader.LeaseClient): read, create, replace
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert verbs == {"get", "create", "update"}


@pytest.mark.parametrize(
    ("values", "rendered"),
    [
        (HA, True),
        ({**HA, "replicas": 1}, False),  # one replica: a PDB would block every node drain
        ({**HA, "podDisruptionBudget": {"enabled": False}}, False),
        ({"podDisruptionBudget": {"enabled": True}}, False),  # no leader election: one replica at most
    ],
)
def test_pod_disruption_budget(render: Renderer, values: dict[str, Any], rendered: bool) -> None:
    manifests = render(values)
    pdbs = by_kind(manifests, "PodDisruptionBudget")
    assert bool(pdbs) is rendered
    if rendered:
        deployment = one(manifests, "Deployment")
        assert pdbs[0]["spec"] == {
            "maxUnavailable": 1,
            "selector": {"matchLabels": deployment["spec"]["selector"]["matchLabels"]},
        }
