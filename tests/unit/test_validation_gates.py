"""Validation gates (ModelPolicy): the pure checks, and what the registry decision does with them."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from modelops.api.base import HistoryEntry
from modelops.api.crdgen import KINDS, crd
from modelops.api.modeldeployment import ModelRef
from modelops.api.modelpolicy import ChampionMetric, MetricGate, ModelPolicySpec
from modelops.api.modelversion import Approval, ModelVersionSpec, ModelVersionStatus, Phase, Stage
from modelops.core.conditions import get_condition
from modelops.core.registry import (
    DigestObservation,
    Observations,
    Sibling,
    awaits_policy,
    decide,
    reads_policies,
)
from modelops.core.validation_gates import (
    Champion,
    PolicyRef,
    approval_waived,
    auto_promotion_target,
    champion_check,
    describe,
    evaluate,
    gate_check,
    gates_apply,
)
from modelops.core.version_selection import VersionInfo, select_version
from modelops.sandbox.schema import validate_cel

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "c" * 64
APPROVAL = Approval(approved_by="alice", approved_at=NOW - timedelta(hours=1), reason="beats churn-v2")


def policy(name: str = "churn", **spec: Any) -> PolicyRef:
    return PolicyRef(name, ModelPolicySpec.model_validate({"modelName": "churn", **spec}))


AUC_GATE = {"gates": [{"metric": "auc", "op": ">=", "value": 0.85}]}
CHAMPION_AUC = {"championChallenger": {"metrics": [{"metric": "auc", "tolerance": 0.01}]}}


def gate(metric: str, op: str, value: float) -> MetricGate:
    return MetricGate.model_validate({"metric": metric, "op": op, "value": value})


# ---------------------------------------------------------------- single checks


@pytest.mark.parametrize(
    ("metric", "op", "bound", "metrics", "failed", "message"),
    [
        ("auc", ">=", 0.85, {"auc": 0.81}, True, "auc 0.81 < 0.85 (ModelPolicy churn)"),
        ("auc", ">=", 0.85, {"auc": 0.85}, False, "auc 0.85 >= 0.85"),
        ("auc", ">=", 0.85, {"auc": 0.91}, False, "auc 0.91 >= 0.85"),
        ("auc", ">", 0.85, {"auc": 0.85}, True, "auc 0.85 <= 0.85 (ModelPolicy churn)"),
        ("log_loss", "<=", 0.4, {"log_loss": 0.4}, False, "log_loss 0.4 <= 0.4"),
        ("log_loss", "<=", 0.4, {"log_loss": 0.41}, True, "log_loss 0.41 > 0.4 (ModelPolicy churn)"),
        ("latency_ms", "<", 50, {"latency_ms": 50}, True, "latency_ms 50 >= 50 (ModelPolicy churn)"),
        ("latency_ms", "<", 50, {"latency_ms": 12.5}, False, "latency_ms 12.5 < 50"),
        (
            "auc",
            ">=",
            0.85,
            {"accuracy": 0.99},
            True,
            "auc missing from spec.metrics (ModelPolicy churn requires auc >= 0.85)",
        ),
        ("auc", ">=", 0.85, None, True, "auc missing from spec.metrics (ModelPolicy churn requires auc >= 0.85)"),
        (
            "auc",
            "<=",
            0.99,
            {"auc": math.nan},
            True,
            "auc nan is not a number (ModelPolicy churn requires auc <= 0.99)",
        ),
        ("auc", ">=", 0.0, {"auc": -math.inf}, True, "auc -inf is not a number (ModelPolicy churn requires auc >= 0)"),
    ],
)
def test_gate_check(metric, op, bound, metrics, failed, message):
    verdict = gate_check("churn", gate(metric, op, bound), metrics)
    assert (verdict.failed, verdict.message) == (failed, message)


@pytest.mark.parametrize(
    ("cm", "value", "champion", "reason", "message"),
    [
        (
            {"metric": "auc", "tolerance": 0.01},
            0.84,
            Champion("churn-v2", {"auc": 0.87}),
            "WorseThanProduction",
            "auc 0.84 is 0.03 below Production churn-v2 (0.87), tolerance 0.01 (ModelPolicy churn)",
        ),
        # Exactly at the tolerance (0.87 - 0.86 is 0.010000000000000009 in floats): passes.
        (
            {"metric": "auc", "tolerance": 0.01},
            0.86,
            Champion("churn-v2", {"auc": 0.87}),
            "NotWorseThanProduction",
            "auc 0.86 vs Production churn-v2 0.87",
        ),
        ({"metric": "auc"}, 0.9, Champion("churn-v2", {"auc": 0.87}), "NotWorseThanProduction", None),
        ({"metric": "auc"}, 0.8699, Champion("churn-v2", {"auc": 0.87}), "WorseThanProduction", None),
        (
            {"metric": "log_loss", "tolerance": 0.02, "higherIsBetter": False},
            0.41,
            Champion("churn-v2", {"log_loss": 0.36}),
            "WorseThanProduction",
            "log_loss 0.41 is 0.05 above Production churn-v2 (0.36), tolerance 0.02 (ModelPolicy churn)",
        ),
        (
            {"metric": "log_loss", "higherIsBetter": False},
            0.30,
            Champion("churn-v2", {"log_loss": 0.36}),
            "NotWorseThanProduction",
            None,
        ),
        ({"metric": "auc"}, 0.5, None, "NoProductionVersion", ""),
        (
            {"metric": "auc"},
            0.9,
            Champion("churn-v2", {"accuracy": 0.8}),
            "ProductionMetricMissing",
            "Production churn-v2 has no auc to compare with (ModelPolicy churn)",
        ),
        (
            {"metric": "auc"},
            None,
            None,
            "MetricMissing",
            "auc missing from spec.metrics (ModelPolicy churn compares it with Production)",
        ),
    ],
)
def test_champion_check(cm, value, champion, reason, message):
    metrics = {} if value is None else {"auc": value, "log_loss": value}
    verdict = champion_check("churn", ChampionMetric.model_validate(cm), metrics, champion)
    assert verdict.reason == reason
    assert verdict.failed == (reason in {"WorseThanProduction", "ProductionMetricMissing", "MetricMissing"})
    if message is not None:
        assert verdict.message == message


def test_every_failing_check_is_named_in_one_verdict():
    result = evaluate(
        [
            policy(
                gates=[{"metric": "auc", "value": 0.85}, {"metric": "recall", "value": 0.7}],
                **CHAMPION_AUC,
            ),
            policy("churn-floor", gates=[{"metric": "precision", "value": 0.5}]),
        ],
        {"auc": 0.81, "precision": 0.6},
        [Champion("churn-v2", {"auc": 0.87})],
    )
    assert result.policies == ("churn", "churn-floor")
    verdict = result.verdict()
    assert verdict.reason == "ValidationFailed"
    assert verdict.failed
    assert verdict.message == (
        "auc 0.81 < 0.85 (ModelPolicy churn); "
        "recall missing from spec.metrics (ModelPolicy churn requires recall >= 0.7); "
        "auc 0.81 is 0.06 below Production churn-v2 (0.87), tolerance 0.01 (ModelPolicy churn)"
    )


def test_passing_verdict_names_the_policy_and_the_evidence():
    verdict = evaluate([policy(**AUC_GATE, **CHAMPION_AUC)], {"auc": 0.9}, [Champion("churn-v2", {"auc": 0.88})])
    assert verdict.verdict().failed is False
    assert (
        verdict.verdict().message
        == "ModelPolicy churn: gates passed (auc 0.9 >= 0.85; auc 0.9 vs Production churn-v2 0.88)"
    )


def test_an_unparsable_policy_keeps_the_gate_shut():
    result = evaluate([PolicyRef("churn", None, "spec.gates.0.op: bad")], {"auc": 0.99})
    assert result.verdict().failed
    assert result.verdict().message == "ModelPolicy churn is invalid: spec.gates.0.op: bad"
    assert auto_promotion_target([PolicyRef("churn", None, "x")]) is None
    assert not approval_waived([PolicyRef("churn", None, "x")])


def test_no_policy_no_checks():
    result = evaluate([], None)
    assert not result.applies
    assert not result.verdict().failed


@pytest.mark.parametrize(
    ("specs", "target", "waived"),
    [
        ([{}], None, False),
        ([{"autoPromoteToStaging": True}], Stage.STAGING, False),
        ([{"autoPromoteToProduction": True, "productionApproval": "Waived"}], Stage.PRODUCTION, True),
        ([{"productionApproval": "Waived"}], None, True),
        ([{"autoPromoteToStaging": True}, {}], None, False),
        (
            [{"autoPromoteToProduction": True, "productionApproval": "Waived"}, {"autoPromoteToStaging": True}],
            Stage.STAGING,
            False,
        ),
        ([], None, False),
    ],
)
def test_automatic_promotion_and_waiver_need_every_policy(specs, target, waived):
    refs = [policy(f"p{i}", **s) for i, s in enumerate(specs)]
    assert auto_promotion_target(refs) == target
    assert approval_waived(refs) == waived


@pytest.mark.parametrize(
    ("current", "target", "gated"),
    [
        (Stage.NONE, Stage.STAGING, True),
        (Stage.NONE, Stage.PRODUCTION, True),
        (Stage.STAGING, Stage.PRODUCTION, True),
        (Stage.ARCHIVED, Stage.STAGING, True),
        (Stage.PRODUCTION, Stage.STAGING, False),
        (Stage.PRODUCTION, Stage.ARCHIVED, False),
        (Stage.STAGING, Stage.NONE, False),
    ],
)
def test_which_transitions_are_gated(current, target, gated):
    assert gates_apply(current, target) is gated


def test_describe():
    spec = policy(
        **AUC_GATE,
        championChallenger={"metrics": [{"metric": "log_loss", "tolerance": 0.02, "higherIsBetter": False}]},
        autoPromoteToStaging=True,
    ).spec
    assert spec is not None
    assert describe(spec) == (
        "model churn: auc >= 0.85; not worse than Production on log_loss (tolerance 0.02, lower is better); "
        "passing versions go to Staging automatically; Production needs spec.approval"
    )


# ---------------------------------------------------------------- the API model and its CEL rules


def test_auto_production_needs_a_waiver_in_the_model_and_in_cel():
    with pytest.raises(ValidationError, match="productionApproval: Waived"):
        ModelPolicySpec.model_validate({"modelName": "churn", "autoPromoteToProduction": True})
    kind = next(k for k in KINDS if k.kind == "ModelPolicy")
    schema = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    bad = {"modelName": "churn", "autoPromoteToProduction": True, "productionApproval": "Required"}
    good = {**bad, "productionApproval": "Waived"}
    [refusal] = validate_cel(bad, None, schema, "spec", has_old=False)
    assert refusal.detail.endswith("autoPromoteToProduction needs productionApproval: Waived")
    assert validate_cel(good, None, schema, "spec", has_old=False) == []
    [renamed] = validate_cel({**good, "modelName": "other"}, good, schema, "spec", has_old=True)
    assert renamed.detail.endswith("modelName is immutable: create another ModelPolicy instead")


def test_negative_tolerance_is_rejected():
    with pytest.raises(ValidationError):
        ChampionMetric.model_validate({"metric": "auc", "tolerance": -0.1})


# ---------------------------------------------------------------- the registry decision


def mv_spec(stage: Stage = Stage.NONE, metrics: dict[str, float] | None = None, approval: Approval | None = None):
    return ModelVersionSpec.model_validate(
        {
            "modelName": "churn",
            "version": "3",
            "artifact": {"uri": "file:///m3.joblib", "digest": DIGEST},
            "metrics": metrics,
            "stage": stage,
            "approval": approval.model_dump(by_alias=True) if approval else None,
        }
    )


VERIFIED = ModelVersionStatus(phase=Phase.VERIFIED, stage=Stage.NONE)
APPROVED_LATER = VERIFIED.model_copy(
    update={"history": [HistoryEntry(time=NOW - timedelta(days=1), event="Registered", reason="Created")]}
)
"""Seen by the operator before: its spec.approval was written after registration (not the registrant's)."""
MATCH = DigestObservation("match", actual=DIGEST, size_bytes=3)


def production(name: str = "churn-v2", **metrics: float) -> Sibling:
    return Sibling(
        name, Stage.PRODUCTION, ModelVersionStatus(phase=Phase.VERIFIED, stage=Stage.PRODUCTION), "7", metrics
    )


def run(spec, status=VERIFIED, policies=(), siblings=(), digest=None, generation=1):
    return decide("churn-v3", generation, spec, status, Observations(digest, tuple(siblings), tuple(policies)), NOW)


def cond(status: ModelVersionStatus, type_: str):
    c = get_condition(status.conditions, type_)
    assert c is not None, f"no {type_} condition"
    return c


def test_a_failing_version_is_refused_with_the_metric_the_value_and_the_bound():
    d = run(mv_spec(Stage.STAGING, {"auc": 0.81}), policies=[policy(**AUC_GATE)])
    assert d.status.stage == Stage.NONE
    synced = cond(d.status, "StageSynced")
    assert (synced.status, synced.reason) == ("False", "ValidationFailed")
    assert synced.message == "transition None -> Staging refused: auc 0.81 < 0.85 (ModelPolicy churn)"
    assert (cond(d.status, "Validated").status, cond(d.status, "Validated").reason) == ("False", "ValidationFailed")
    assert [(e.type, e.reason, e.message) for e in d.events] == [("Warning", "ValidationFailed", synced.message)]
    refusal = d.status.history[-1]
    assert (refusal.event, refusal.reason, refusal.message) == ("TransitionRefused", "ValidationFailed", synced.message)
    assert d.request_stage is None
    # Reconciled again (resume, a policy re-evaluation): recorded once, not on every reconcile.
    again = run(mv_spec(Stage.STAGING, {"auc": 0.81}), status=d.status, policies=[policy(**AUC_GATE)])
    assert again.events == ()
    assert again.status.history == d.status.history
    # A changed policy that still refuses says so, once.
    stricter = policy(gates=[{"metric": "auc", "value": 0.9}])
    changed = run(mv_spec(Stage.STAGING, {"auc": 0.81}), status=again.status, policies=[stricter])
    assert [e.message for e in changed.events] == [
        "transition None -> Staging refused: auc 0.81 < 0.9 (ModelPolicy churn)"
    ]
    assert len(changed.status.history) == len(d.status.history) + 1


def test_a_passing_version_is_granted_and_the_history_says_why():
    d = run(mv_spec(Stage.STAGING, {"auc": 0.91}), policies=[policy(**AUC_GATE)])
    assert d.status.stage == Stage.STAGING
    assert cond(d.status, "StageSynced").status == "True"
    assert cond(d.status, "Validated").reason == "GatesPassed"
    assert d.status.history[-1].message == "stage None -> Staging; ModelPolicy churn: gates passed (auc 0.91 >= 0.85)"


def test_without_a_policy_nothing_changes():
    d = run(mv_spec(Stage.STAGING))
    assert d.status.stage == Stage.STAGING
    assert get_condition(d.status.conditions, "Validated") is None
    assert d.status.history[-1].message == "stage None -> Staging"


def test_a_deleted_policy_drops_the_validated_condition_on_the_next_request():
    refused = run(mv_spec(Stage.STAGING, {"auc": 0.81}), policies=[policy(**AUC_GATE)]).status
    d = run(mv_spec(Stage.STAGING, {"auc": 0.81}), status=refused)
    assert d.status.stage == Stage.STAGING
    assert get_condition(d.status.conditions, "Validated") is None


def test_champion_challenger_against_the_current_production_version():
    spec = mv_spec(Stage.PRODUCTION, {"auc": 0.84}, APPROVAL)
    d = run(spec, policies=[policy(**CHAMPION_AUC)], siblings=[production(auc=0.87)])
    assert d.status.stage == Stage.NONE
    assert d.demotions == ()
    assert cond(d.status, "StageSynced").message == (
        "transition None -> Production refused: "
        "auc 0.84 is 0.03 below Production churn-v2 (0.87), tolerance 0.01 (ModelPolicy churn)"
    )
    ok = run(
        mv_spec(Stage.PRODUCTION, {"auc": 0.865}, APPROVAL),
        APPROVED_LATER,
        policies=[policy(**CHAMPION_AUC)],
        siblings=[production(auc=0.87)],
    )
    assert ok.status.stage == Stage.PRODUCTION
    assert [dm.name for dm in ok.demotions] == ["churn-v2"]


def test_gates_come_before_the_approval_and_a_waiver_removes_the_approval():
    failing = run(mv_spec(Stage.PRODUCTION, {"auc": 0.8}), policies=[policy(**AUC_GATE)])
    assert cond(failing.status, "StageSynced").reason == "ValidationFailed"
    required = run(mv_spec(Stage.PRODUCTION, {"auc": 0.9}), policies=[policy(**AUC_GATE)])
    assert cond(required.status, "StageSynced").reason == "ApprovalRequired"
    waived = run(mv_spec(Stage.PRODUCTION, {"auc": 0.9}), policies=[policy(**AUC_GATE, productionApproval="Waived")])
    assert waived.status.stage == Stage.PRODUCTION
    assert waived.status.history[-1].message == (
        "stage None -> Production, approval waived by ModelPolicy churn; "
        "ModelPolicy churn: gates passed (auc 0.9 >= 0.85)"
    )


def test_demoting_production_to_staging_is_not_gated():
    status = ModelVersionStatus(phase=Phase.VERIFIED, stage=Stage.PRODUCTION)
    d = run(mv_spec(Stage.STAGING, {"auc": 0.5}), status=status, policies=[policy(**AUC_GATE)])
    assert d.status.stage == Stage.STAGING


def test_auto_promotion_to_staging_when_the_artifact_is_verified():
    pending = ModelVersionStatus()
    d = run(
        mv_spec(metrics={"auc": 0.9}),
        status=pending,
        digest=MATCH,
        policies=[policy(**AUC_GATE, autoPromoteToStaging=True)],
    )
    assert (d.status.phase, d.status.stage) == (Phase.VERIFIED, Stage.STAGING)
    assert d.request_stage == Stage.STAGING  # the operator also writes spec.stage
    entry = d.status.history[-1]
    assert (entry.event, entry.reason, entry.actor) == ("StageChanged", "AutoPromoted", "modelops-operator")
    assert entry.message == "stage None -> Staging: ModelPolicy churn: gates passed (auc 0.9 >= 0.85)"
    assert cond(d.status, "StageSynced").reason == "AutoPromoted"
    assert ("Normal", "AutoPromoted") in [(e.type, e.reason) for e in d.events]


def test_no_auto_promotion_without_the_policy_field_or_with_failing_gates():
    pending = ModelVersionStatus()
    off = run(mv_spec(metrics={"auc": 0.9}), status=pending, digest=MATCH, policies=[policy(**AUC_GATE)])
    assert off.status.stage == Stage.NONE
    assert off.request_stage is None
    refused = run(
        mv_spec(metrics={"auc": 0.8}),
        status=pending,
        digest=MATCH,
        policies=[policy(**AUC_GATE, autoPromoteToStaging=True)],
    )
    assert (refused.status.phase, refused.status.stage, refused.request_stage) == (Phase.VERIFIED, Stage.NONE, None)
    assert cond(refused.status, "Validated").status == "False"
    assert cond(refused.status, "StageSynced").status == "True"  # nothing was requested
    entry = refused.status.history[-1]
    assert (entry.event, entry.reason) == ("AutoPromotionRefused", "ValidationFailed")
    assert entry.message == "automatic promotion to Staging refused: auc 0.8 < 0.85 (ModelPolicy churn)"
    assert ("Warning", "ValidationFailed") in [(e.type, e.reason) for e in refused.events]
    mismatch = run(
        mv_spec(metrics={"auc": 0.9}),
        status=pending,
        digest=DigestObservation("mismatch", actual="x"),
        policies=[policy(**AUC_GATE, autoPromoteToStaging=True)],
    )
    assert (mismatch.status.phase, mismatch.status.stage) == (Phase.FAILED, Stage.NONE)


def test_auto_promotion_only_at_verification_never_reaching_back():
    d = run(mv_spec(metrics={"auc": 0.9}), policies=[policy(**AUC_GATE, autoPromoteToStaging=True)])
    assert d.status.stage == Stage.NONE
    assert d.events == ()


def test_auto_promotion_to_production_archives_the_previous_version():
    pending = ModelVersionStatus()
    auto = policy(**CHAMPION_AUC, autoPromoteToProduction=True, productionApproval="Waived")
    d = run(
        mv_spec(metrics={"auc": 0.9}), status=pending, digest=MATCH, policies=[auto], siblings=[production(auc=0.88)]
    )
    assert (d.status.stage, d.request_stage) == (Stage.PRODUCTION, Stage.PRODUCTION)
    assert [dm.name for dm in d.demotions] == ["churn-v2"]
    assert d.status.history[-1].message == (
        "stage None -> Production: ModelPolicy churn: gates passed (auc 0.9 vs Production churn-v2 0.88); "
        "Production approval waived by ModelPolicy churn; archived churn-v2"
    )


def test_an_auto_promotion_interrupted_before_its_spec_write_is_finished_not_undone():
    pending = ModelVersionStatus()
    first = run(
        mv_spec(metrics={"auc": 0.9}),
        status=pending,
        digest=MATCH,
        generation=4,
        policies=[policy(**AUC_GATE, autoPromoteToStaging=True)],
    )
    # The operator stopped after the status write: spec.stage is still None, generation unchanged.
    again = run(mv_spec(metrics={"auc": 0.9}), status=first.status, generation=4)
    assert again.request_stage == Stage.STAGING
    assert again.status.stage == Stage.STAGING
    assert again.events == ()
    # Once spec.stage is written (generation 5) the version is simply in sync.
    synced = run(mv_spec(Stage.STAGING, {"auc": 0.9}), status=first.status, generation=5)
    assert (synced.status.stage, synced.request_stage, synced.events) == (Stage.STAGING, None, ())
    # A person who later asks for None (a new generation) gets None.
    down = run(mv_spec(metrics={"auc": 0.9}), status=synced.status, generation=6)
    assert (down.status.stage, down.request_stage) == (Stage.NONE, None)


@pytest.mark.parametrize(
    ("stage", "status", "reads", "awaits"),
    [
        (Stage.STAGING, VERIFIED, True, True),
        (Stage.PRODUCTION, ModelVersionStatus(phase=Phase.VERIFIED, stage=Stage.STAGING), True, True),
        (Stage.STAGING, ModelVersionStatus(phase=Phase.VERIFIED, stage=Stage.STAGING), False, False),
        (Stage.NONE, ModelVersionStatus(), True, False),  # about to be verified: auto-promotion may follow
        (Stage.NONE, VERIFIED, False, False),
        (Stage.STAGING, ModelVersionStatus(), True, False),  # pending: its own reconcile decides
        (Stage.ARCHIVED, ModelVersionStatus(phase=Phase.VERIFIED, stage=Stage.PRODUCTION), False, False),
    ],
)
def test_when_policies_are_read_and_re_evaluated(stage, status, reads, awaits):
    assert reads_policies(mv_spec(stage), status) is reads
    assert awaits_policy(mv_spec(stage), status) is awaits


TRACK_STAGING = {"modelName": "churn", "stage": "Staging", "requireApproval": False}


def test_a_refused_version_is_never_picked_by_a_deployment_tracking_the_model():
    staged = {"phase": "Verified", "stage": "Staging"}
    refused = run(mv_spec(Stage.STAGING, {"auc": 0.81}), policies=[policy(**AUC_GATE)]).status
    objects = [
        {
            "metadata": {"name": "churn-v2", "creationTimestamp": "2026-11-29T00:00:00Z"},
            "spec": {"modelName": "churn", "version": "2", "artifact": {"uri": "u", "digest": DIGEST}},
            "status": staged,
        },
        {
            "metadata": {"name": "churn-v3", "creationTimestamp": "2026-11-30T00:00:00Z"},
            "spec": mv_spec(Stage.STAGING, {"auc": 0.81}).to_wire(),
            "status": refused.to_wire(),
        },
    ]
    versions = [VersionInfo.from_object(o) for o in objects]
    picked = select_version(ModelRef.model_validate(TRACK_STAGING), versions)
    assert picked.version is not None
    assert picked.version.name == "churn-v2"
    only_refused = select_version(ModelRef.model_validate(TRACK_STAGING), versions[1:])
    assert only_refused.version is None
    assert only_refused.reason == "NoEligibleVersion"


# ---------------------------------------------------------------- properties

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
tolerances = st.floats(min_value=0, max_value=1e3, allow_nan=False)
ops = st.sampled_from([">=", ">", "<=", "<"])


@settings(deadline=None)  # no timing in tests: a loaded machine must not fail them
@given(
    champion=finite,
    tolerance=tolerances,
    excess=st.floats(min_value=1e-6, max_value=1e3),
    higher=st.booleans(),
    target=st.sampled_from([Stage.STAGING, Stage.PRODUCTION]),
)
def test_a_worse_challenger_never_advances(champion, tolerance, excess, higher, target):
    margin = excess * max(1.0, abs(champion), tolerance)
    candidate = champion - tolerance - margin if higher else champion + tolerance + margin
    assume(math.isfinite(candidate))
    spec = mv_spec(target, {"auc": candidate}, APPROVAL)
    rule = {"championChallenger": {"metrics": [{"metric": "auc", "tolerance": tolerance, "higherIsBetter": higher}]}}
    d = run(spec, policies=[policy(**rule, productionApproval="Waived")], siblings=[production(auc=champion)])
    assert d.status.stage == Stage.NONE
    assert d.demotions == ()
    assert cond(d.status, "StageSynced").reason == "ValidationFailed"
    # ... nor by automatic promotion.
    auto = policy(**rule, autoPromoteToProduction=True, productionApproval="Waived")
    fresh = run(
        mv_spec(metrics={"auc": candidate}),
        status=ModelVersionStatus(),
        digest=MATCH,
        policies=[auto],
        siblings=[production(auc=champion)],
    )
    assert (fresh.status.stage, fresh.request_stage, fresh.demotions) == (Stage.NONE, None, ())


@settings(deadline=None)  # no timing in tests: a loaded machine must not fail them
@given(champion=finite, tolerance=tolerances, within=st.floats(min_value=0, max_value=1), higher=st.booleans())
def test_a_challenger_within_the_tolerance_passes(champion, tolerance, within, higher):
    candidate = champion - tolerance * within if higher else champion + tolerance * within
    cm = ChampionMetric(metric="auc", tolerance=tolerance, higher_is_better=higher)
    assert not champion_check("churn", cm, {"auc": candidate}, Champion("churn-v2", {"auc": champion})).failed


@settings(deadline=None)  # no timing in tests: a loaded machine must not fail them
@given(
    metrics=st.dictionaries(st.sampled_from(["accuracy", "recall", "f1"]), finite, max_size=3),
    op=ops,
    bound=finite,
    target=st.sampled_from([Stage.STAGING, Stage.PRODUCTION]),
)
def test_a_missing_metric_is_a_refusal_not_a_pass(metrics, op, bound, target):
    rule = {"gates": [{"metric": "auc", "op": op, "value": bound}], "productionApproval": "Waived"}
    d = run(mv_spec(target, metrics, APPROVAL), policies=[policy(**rule)])
    assert d.status.stage == Stage.NONE
    assert "auc missing from spec.metrics" in cond(d.status, "StageSynced").message


@settings(deadline=None)  # no timing in tests: a loaded machine must not fail them
@given(bound=finite)
def test_a_value_exactly_at_the_bound_passes_inclusive_ops_only(bound):
    at = {"auc": bound}
    assert not gate_check("churn", gate("auc", ">=", bound), at).failed
    assert not gate_check("churn", gate("auc", "<=", bound), at).failed
    assert gate_check("churn", gate("auc", ">", bound), at).failed
    assert gate_check("churn", gate("auc", "<", bound), at).failed


@settings(deadline=None)  # no timing in tests: a loaded machine must not fail them
@given(value=finite, bound=finite, op=ops)
def test_a_gate_passes_exactly_when_the_comparison_holds(value, bound, op):
    holds = {">=": value >= bound, ">": value > bound, "<=": value <= bound, "<": value < bound}[op]
    assert gate_check("churn", gate("auc", op, bound), {"auc": value}).failed is not holds


def test_a_new_request_records_the_refusal_again():
    # Refused at generation 1; the request is made again (generation 2): recorded again.
    refused = run(mv_spec(Stage.STAGING, {"auc": 0.81}), policies=[policy(**AUC_GATE)]).status
    d = run(mv_spec(Stage.STAGING, {"auc": 0.81}), status=refused, policies=[policy(**AUC_GATE)], generation=2)
    assert [e.reason for e in d.events] == ["ValidationFailed"]


def test_policy_status_is_ready_or_stalled_naming_the_field():
    from modelops.api.modelpolicy import ModelPolicyStatus
    from modelops.handlers.modelpolicy import policy_status

    spec = policy(**AUC_GATE).spec
    ok = policy_status(ModelPolicyStatus(), spec, "", 3, NOW)
    assert ok.observed_generation == 3
    assert {c.type: (c.status, c.reason) for c in ok.conditions} == {
        "Ready": ("True", "Active"),
        "Reconciling": ("False", "Active"),
        "Stalled": ("False", "Active"),
    }
    bad = policy_status(ok, None, "spec.gates.0.op: Input should be '>=', '>', '<=' or '<'", 4, NOW)
    assert {c.type: (c.status, c.reason) for c in bad.conditions} == {
        "Ready": ("False", "InvalidSpec"),
        "Reconciling": ("False", "InvalidSpec"),
        "Stalled": ("True", "InvalidSpec"),
    }
    assert bad.message == (
        "invalid, every promotion of the model is refused until it is fixed: "
        "spec.gates.0.op: Input should be '>=', '>', '<=' or '<'"
    )
