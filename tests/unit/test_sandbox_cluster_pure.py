"""Table tests of the workload runner's pure rules: cron, template hash, argv/env, back-off, rollout math."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from modelops.sandbox.cluster.cron import CronError, parse
from modelops.sandbox.cluster.cronjobs import VirtualClock, job_name, most_recent
from modelops.sandbox.cluster.deployments import (
    equal_ignore_hash,
    fnv32a,
    new_rs_replicas,
    pod_template_hash,
    pods_to_delete,
    resolve_fenceposts,
    safe_encode,
    set_condition,
)
from modelops.sandbox.cluster.jobs import wanted_active
from modelops.sandbox.cluster.podspec import (
    ContainerRun,
    EnvError,
    EnvSources,
    container_argv,
    container_env,
    expand,
    int_or_percent,
    job_backoff,
    local_argv,
    pod_phase,
    restart_delay,
    rewrite_mount_paths,
)
from modelops.sandbox.selectors import selector_matches


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC) if "+" not in text else datetime.fromisoformat(text)


# -- cron --------------------------------------------------------------------------------------


# 2024-01-05 is a Friday
@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("*/1 * * * *", "2024-01-05T10:00:30", "2024-01-05T10:01:00"),
        ("* * * * *", "2024-01-05T10:00:00", "2024-01-05T10:01:00"),  # strictly after
        ("*/15 * * * *", "2024-01-05T10:01:00", "2024-01-05T10:15:00"),
        ("5/20 * * * *", "2024-01-05T10:26:00", "2024-01-05T10:45:00"),  # a/n is a-59/n
        ("0 9-17/4 * * *", "2024-01-05T10:00:00", "2024-01-05T13:00:00"),
        ("0,30 * * * *", "2024-01-05T10:10:00", "2024-01-05T10:30:00"),
        ("0 0 * * *", "2024-01-05T23:59:00", "2024-01-06T00:00:00"),
        ("@hourly", "2024-01-05T10:59:59", "2024-01-05T11:00:00"),
        ("@daily", "2024-01-05T10:00:00", "2024-01-06T00:00:00"),
        ("@midnight", "2024-01-05T10:00:00", "2024-01-06T00:00:00"),
        ("@weekly", "2024-01-05T10:00:00", "2024-01-07T00:00:00"),  # Sunday
        ("@monthly", "2024-01-05T10:00:00", "2024-02-01T00:00:00"),
        ("@yearly", "2024-01-05T10:00:00", "2025-01-01T00:00:00"),
        ("@annually", "2024-01-05T10:00:00", "2025-01-01T00:00:00"),
        ("0 12 * * mon-fri", "2024-01-05T13:00:00", "2024-01-08T12:00:00"),
        ("0 12 * * MON,WED", "2024-01-05T13:00:00", "2024-01-08T12:00:00"),
        ("0 0 * * 7", "2024-01-05T13:00:00", "2024-01-07T00:00:00"),  # 7 is Sunday
        ("0 0 * * 5-7", "2024-01-05T13:00:00", "2024-01-06T00:00:00"),
        ("0 0 1 jan *", "2024-01-05T13:00:00", "2025-01-01T00:00:00"),
        ("0 0 1 */3 *", "2024-01-05T13:00:00", "2024-04-01T00:00:00"),
        # day of month and day of week both restricted: either matches (the 13th, or any Friday)
        ("0 0 13 * 5", "2024-01-05T13:00:00", "2024-01-12T00:00:00"),
        ("0 0 13 * 1", "2024-01-05T13:00:00", "2024-01-08T00:00:00"),
        # one of them '*': both must match
        ("0 0 13 * *", "2024-01-05T13:00:00", "2024-01-13T00:00:00"),
        ("0 0 * * 5", "2024-01-05T13:00:00", "2024-01-12T00:00:00"),
        ("0 0 29 2 *", "2024-03-01T00:00:00", "2028-02-29T00:00:00"),
        ("0 0 31 * *", "2024-04-01T00:00:00", "2024-05-31T00:00:00"),
    ],
)
def test_cron_next_time(schedule: str, after: str, expected: str) -> None:
    assert parse(schedule).next_after(t(after)) == t(expected)


def test_cron_impossible_date_gives_none() -> None:
    assert parse("0 0 30 2 *").next_after(t("2024-01-01T00:00:00")) is None


def test_cron_time_zone_is_the_wall_clock_of_that_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    nxt = parse("0 9 * * *").next_after(t("2024-07-01T08:30:00"), berlin)  # 10:30 in Berlin (UTC+2)
    assert nxt is not None
    assert nxt.astimezone(UTC) == t("2024-07-02T07:00:00")


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        ("* * * *", "expected exactly 5 fields, found 4"),
        ("* * * * * *", "expected exactly 5 fields, found 6"),
        ("60 * * * *", "minute must be within 0-59"),
        ("* 24 * * *", "hour must be within 0-23"),
        ("* * 0 * *", "day of month must be within 1-31"),
        ("* * * 13 *", "month must be within 1-12"),
        ("* * * * 8", "day of week must be within 0-7"),
        ("*/0 * * * *", "bad step in the minute field"),
        ("5-1 * * * *", "beginning of range after end in the minute field"),
        ("* * * foo *", "not a number or name in the month field"),
        ("1,,2 * * * *", "empty list item in the minute field"),
        ("@every 5m", "unrecognized descriptor"),
        ("TZ=UTC * * * * *", "use timeZone field instead"),
        ("", "Required value"),
    ],
)
def test_cron_rejects_bad_schedules_naming_the_field(schedule: str, field: str) -> None:
    with pytest.raises(CronError, match=field):
        parse(schedule)


def test_most_recent_scheduled_time_and_missed_count() -> None:
    sched = parse("*/10 * * * *")
    latest, count = most_recent(sched, t("2024-01-05T10:00:00"), t("2024-01-05T10:35:00"), UTC)
    assert (latest, count) == (t("2024-01-05T10:30:00"), 3)
    assert most_recent(sched, t("2024-01-05T10:00:00"), t("2024-01-05T10:05:00"), UTC) == (None, 0)


def test_job_name_is_the_scheduled_minute_since_the_epoch() -> None:
    assert job_name("report", t("2024-01-01T00:00:00")) == "report-28401120"
    assert job_name("report", t("2024-01-01T00:01:00")) == "report-28401121"


@pytest.mark.parametrize(("minute_seconds", "real_elapsed", "virtual_elapsed"), [(60, 30, 30), (1, 2, 120), (2, 3, 90)])
def test_virtual_clock_runs_cron_minutes_faster(
    minute_seconds: float, real_elapsed: float, virtual_elapsed: float
) -> None:
    clock = VirtualClock(minute_seconds, origin=1_000_000.0)
    assert clock.to_virtual(1_000_000.0 + real_elapsed) == 1_000_000.0 + virtual_elapsed
    assert clock.real_delay(virtual_elapsed) == real_elapsed


# -- pod template hash ---------------------------------------------------------------------------


def test_fnv32a_known_vectors() -> None:
    assert fnv32a(b"") == 0x811C9DC5
    assert fnv32a(b"a") == 0xE40C292C
    assert fnv32a(b"foobar") == 0xBF9CF968


def test_safe_encoding_of_digits() -> None:
    assert safe_encode("0123456789") == "456789bcdf"


TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}


def test_pod_template_hash_is_stable_and_ignores_its_own_label() -> None:
    h = pod_template_hash(TEMPLATE)
    assert h == pod_template_hash({"spec": TEMPLATE["spec"], "metadata": {"labels": {"app": "web"}}})
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
    labelled = {"metadata": {"labels": {"app": "web", "pod-template-hash": h}}, "spec": TEMPLATE["spec"]}
    assert pod_template_hash(labelled) == h
    assert equal_ignore_hash(labelled, TEMPLATE)
    assert pod_template_hash(TEMPLATE, 1) != h
    other = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "y"}]}}
    assert pod_template_hash(other) != h
    assert not equal_ignore_hash(other, TEMPLATE)


# -- argv, env, paths ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("container", "argv"),
    [
        ({}, ["modelops", "run", "--all-namespaces"]),
        ({"args": ["serve", "--port", "8080"]}, ["modelops", "serve", "--port", "8080"]),
        ({"command": ["python", "-m", "x"]}, ["python", "-m", "x"]),  # command drops the CMD
        ({"command": ["modelops"], "args": ["drift", "check"]}, ["modelops", "drift", "check"]),
        ({"command": [], "args": []}, ["modelops", "run", "--all-namespaces"]),
    ],
)
def test_command_and_args_over_the_image_entrypoint(container: dict[str, Any], argv: list[str]) -> None:
    assert container_argv(container) == argv


@pytest.mark.parametrize(
    ("argv", "local"),
    [
        (["modelops", "serve"], ["/py", "-m", "modelops.cli", "serve"]),
        (["/usr/local/bin/modelops"], ["/py", "-m", "modelops.cli"]),
        (["python", "-c", "1"], ["/py", "-c", "1"]),
        (["python3.11", "x.py"], ["/py", "x.py"]),
        (["sh", "-c", "true"], ["sh", "-c", "true"]),
        (["pythonista"], ["pythonista"]),
    ],
)
def test_local_argv(argv: list[str], local: list[str]) -> None:
    assert local_argv(argv, "/py") == local


ENV = {"VAR_A": "A", "VAR_B": "B", "VAR_C": "C", "EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("$(VAR_A)", "A"),
        ("___$(VAR_B)___", "___B___"),
        ("$(VAR_A)-1", "A-1"),
        ("$(VAR_A)_$(VAR_B)_$(VAR_C)", "A_B_C"),
        ("$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),
        ("$$(VAR_B)_$$(VAR_D)", "$(VAR_B)_$(VAR_D)"),
        ("f000-$$VAR_A", "f000-$VAR_A"),
        ("foo\\$(VAR_C)bar", "foo\\Cbar"),
        ("$(VAR_A)$(VAR_A)", "AA"),
        ("$(VAR_A", "$(VAR_A"),
        ("$(VAR_DNE)", "$(VAR_DNE)"),
        ("$VAR_A", "$VAR_A"),
        ("VAR_A$", "VAR_A$"),
        ("$(EMPTY)x", "x"),
        ("$()", "$()"),
        ("$$$(VAR_A)", "$A"),
        ("$($(VAR_A))", "$($(VAR_A))"),
    ],
)
def test_kubernetes_variable_expansion(text: str, expanded: str) -> None:
    assert expand(text, ENV.get) == expanded


def test_env_in_kubernetes_order_with_expansion_and_references() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "a"}}, "spec": {}}
    container = {
        "envFrom": [
            {"configMapRef": {"name": "cm"}, "prefix": "CM_"},
            {"secretRef": {"name": "missing", "optional": True}},
        ],
        "env": [
            {"name": "FIRST", "value": "1"},
            {"name": "SECOND", "value": "$(FIRST)-$(THIRD)"},  # THIRD is defined later: kept as written
            {"name": "THIRD", "value": "3"},
            {"name": "FROM_CM", "value": "$(CM_k)"},
            {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
            {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "nope", "optional": True}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        ],
    }
    sources = EnvSources(pod, {"cm": {"k": "v"}}, {"s": {"token": "t0k"}})
    assert container_env(container, sources) == [
        ("CM_k", "v"),
        ("FIRST", "1"),
        ("SECOND", "1-$(THIRD)"),
        ("THIRD", "3"),
        ("FROM_CM", "v"),
        ("KEY", "t0k"),
        ("UID", "u1"),
        ("SA", "default"),
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}],
            'env X: secret "nope" not found',
        ),
        (
            [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "zz"}}}],
            "env X: couldn't find key zz in configmap cm",
        ),
        (
            [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}],
            "fieldRef 'spec.bogus' is not supported",
        ),
    ],
)
def test_env_reference_errors_name_the_variable(env: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(EnvError, match=message):
        container_env({"env": env}, EnvSources({"metadata": {}}, {"cm": {"k": "v"}}))


MOUNTS = [("/models", "/s/vol/models"), ("/models/extra", "/s/vol/extra"), ("/tmp", "/tmp/s/tmp")]


@pytest.mark.parametrize(
    ("value", "rewritten"),
    [
        ("/models", "/s/vol/models"),
        ("/models/a.joblib", "/s/vol/models/a.joblib"),
        ("--model-uri=/models/a.joblib", "--model-uri=/s/vol/models/a.joblib"),
        ("/models/extra/b", "/s/vol/extra/b"),  # the longer mount wins
        ("/modelsx/a", "/modelsx/a"),
        ("file:///models/a", "file:///models/a"),  # inside a URI: not the start of a path
        ("/data/models/a", "/data/models/a"),
        ("a:/models,/tmp/x", "a:/s/vol/models,/tmp/s/tmp/x"),
        ("/tmp/x", "/tmp/s/tmp/x"),  # never rewritten twice, though the result starts with /tmp
    ],
)
def test_mount_paths_rewritten_to_local_directories(value: str, rewritten: str) -> None:
    assert rewrite_mount_paths(value, MOUNTS) == rewritten


# -- back-off ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("restarts", "delay"), [(0, 0.0), (1, 10.0), (2, 20.0), (3, 40.0), (5, 160.0), (6, 300.0), (20, 300.0)]
)
def test_crash_loop_back_off(restarts: int, delay: float) -> None:
    assert restart_delay(restarts, 10.0) == delay


@pytest.mark.parametrize(("failures", "delay"), [(0, 0.0), (1, 10.0), (2, 20.0), (6, 320.0), (7, 360.0)])
def test_job_back_off(failures: int, delay: float) -> None:
    assert job_backoff(failures, 10.0) == delay


def test_back_off_scaled_for_tests() -> None:
    assert restart_delay(3, 0.5) == 2.0
    assert restart_delay(3, 0.0) == 0.0


# -- rollout math --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "total", "up", "result"),
    [
        ("25%", 3, True, 1),
        ("25%", 3, False, 0),
        ("25%", 4, False, 1),
        ("50%", 5, True, 3),
        (2, 10, True, 2),
        ("3", 10, False, 3),
        ("0%", 7, True, 0),
    ],
)
def test_int_or_percent(value: Any, total: int, up: bool, result: int) -> None:
    assert int_or_percent(value, total, round_up=up) == result


@pytest.mark.parametrize("value", ["x%", "1.5", True, "-1"])
def test_int_or_percent_rejects_garbage(value: Any) -> None:
    with pytest.raises(ValueError, match="must be an integer or percentage"):
        int_or_percent(value, 4, round_up=True)


@pytest.mark.parametrize(
    ("surge", "unavailable", "desired", "result"),
    [
        (None, None, 1, (1, 0)),
        (None, None, 4, (1, 1)),
        (None, None, 10, (3, 2)),
        (0, 0, 3, (0, 1)),
        ("50%", "50%", 3, (2, 1)),
        (2, 0, 3, (2, 0)),
    ],
)
def test_rolling_update_fenceposts(surge: Any, unavailable: Any, desired: int, result: tuple[int, int]) -> None:
    assert resolve_fenceposts(surge, unavailable, desired) == result


@pytest.mark.parametrize(
    ("desired", "surge", "all_replicas", "new", "result"),
    [
        (3, 1, 3, 0, 1),  # room for one surge pod
        (3, 1, 4, 1, 1),  # at the surge limit: wait for old ones to go
        (3, 1, 2, 1, 3),  # old ones already gone: straight to desired
        (3, 0, 3, 0, 0),
        (1, 1, 1, 0, 1),
        (3, 3, 3, 0, 3),  # never above desired
    ],
)
def test_new_replica_set_scale_up(desired: int, surge: int, all_replicas: int, new: int, result: int) -> None:
    assert new_rs_replicas(desired, surge, all_replicas, new) == result


def _pod(name: str, phase: str, ready_since: str | None, restarts: int, created: str) -> dict[str, Any]:
    conds = [{"type": "Ready", "status": "True", "lastTransitionTime": ready_since}] if ready_since else []
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "status": {"phase": phase, "conditions": conds, "containerStatuses": [{"restartCount": restarts}]},
    }


def test_scale_down_deletes_not_ready_pending_and_newest_first() -> None:
    pods = [
        _pod("old-ready", "Running", "2024-01-01T00:00:10Z", 0, "2024-01-01T00:00:00Z"),
        _pod("new-ready", "Running", "2024-01-01T00:05:10Z", 0, "2024-01-01T00:05:00Z"),
        _pod("pending", "Pending", None, 0, "2024-01-01T00:01:00Z"),
        _pod("not-ready", "Running", None, 0, "2024-01-01T00:02:00Z"),
        _pod("crashy", "Running", "2024-01-01T00:00:10Z", 4, "2024-01-01T00:00:00Z"),
    ]
    order = [p["metadata"]["name"] for p in pods_to_delete(pods, 5)]
    assert order == ["pending", "not-ready", "new-ready", "crashy", "old-ready"]
    assert [p["metadata"]["name"] for p in pods_to_delete(pods, 2)] == ["pending", "not-ready"]


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "x"}, False),
        ({}, {"x": "y"}, True),
    ],
)
def test_label_selector(selector: dict[str, Any], labels: dict[str, str], matches: bool) -> None:
    assert selector_matches(selector, labels) is matches


def test_set_condition_keeps_transition_time_and_moves_changed_conditions_last() -> None:
    conds: list[dict[str, Any]] = [
        {"type": "Progressing", "status": "True", "reason": "A", "lastTransitionTime": "t0", "lastUpdateTime": "t0"},
        {"type": "Available", "status": "True", "reason": "M", "lastTransitionTime": "t0", "lastUpdateTime": "t0"},
    ]
    same = {"type": "Available", "status": "True", "reason": "M", "lastTransitionTime": "t1", "lastUpdateTime": "t1"}
    assert set_condition(conds, same) is False
    assert conds[1]["lastUpdateTime"] == "t0"
    new_reason = {
        "type": "Progressing",
        "status": "True",
        "reason": "B",
        "lastTransitionTime": "t2",
        "lastUpdateTime": "t2",
    }
    assert set_condition(conds, new_reason) is True
    assert [c["type"] for c in conds] == ["Available", "Progressing"]
    assert (conds[1]["lastTransitionTime"], conds[1]["lastUpdateTime"]) == ("t0", "t2")
    flipped = {
        "type": "Progressing",
        "status": "False",
        "reason": "C",
        "lastTransitionTime": "t3",
        "lastUpdateTime": "t3",
    }
    set_condition(conds, flipped)
    assert conds[1]["lastTransitionTime"] == "t3"


# -- pod phase and Job arithmetic ----------------------------------------------------------------


def run(state: str, exit_code: int | None = None, ran_before: bool = False) -> ContainerRun:
    r = ContainerRun("c", "img", state=state, exit_code=exit_code)
    if ran_before:
        r.last_state = {"terminated": {"exitCode": 1}}
    return r


@pytest.mark.parametrize(
    ("policy", "runs", "init_done", "phase"),
    [
        ("Always", [run("waiting")], True, "Pending"),
        ("Always", [run("running")], False, "Pending"),
        ("Always", [run("running"), run("waiting")], True, "Pending"),
        ("Always", [run("running")], True, "Running"),
        ("Always", [run("waiting", ran_before=True)], True, "Running"),  # CrashLoopBackOff
        ("Always", [run("terminated", 0)], True, "Running"),
        ("Never", [run("terminated", 0)], True, "Succeeded"),
        ("Never", [run("terminated", 0), run("terminated", 2)], True, "Failed"),
        ("Never", [run("terminated", 0), run("running")], True, "Running"),
        ("OnFailure", [run("terminated", 0)], True, "Succeeded"),
        ("OnFailure", [run("waiting", ran_before=True)], True, "Running"),
    ],
)
def test_pod_phase(policy: str, runs: list[ContainerRun], init_done: bool, phase: str) -> None:
    assert pod_phase(policy, runs, init_done) == phase


@pytest.mark.parametrize(
    ("parallelism", "completions", "succeeded", "want"),
    [
        (1, 1, 0, 1),
        (1, 1, 1, 0),
        (2, 3, 0, 2),
        (2, 3, 2, 1),
        (5, 3, 1, 2),
        (2, None, 0, 2),
        (2, None, 1, 0),
        (0, 3, 0, 0),
    ],
)
def test_job_wanted_active_pods(parallelism: int, completions: int | None, succeeded: int, want: int) -> None:
    assert wanted_active(parallelism, completions, succeeded) == want
