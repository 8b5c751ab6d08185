"""CustomResourceDefinitions: serving and discovery, OpenAPI validation, pruning, defaulting, CEL."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modelops.sandbox import ApiError, ApiServer
from tests.integration.sandbox.conftest import MV, WIDGET_CRD, Client, model_version, widget
from tests.support.apiserver import CRDS

W = "/apis/test.modelops.dev/v1/namespaces/default/widgets"
CRD = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
MERGE = "application/merge-patch+json"


async def test_posting_a_crd_serves_it_with_discovery_and_deleting_stops_it(http: Client) -> None:
    crd = copy.deepcopy(WIDGET_CRD)
    crd["metadata"]["name"] = "gadgets.test.modelops.dev"
    crd["spec"]["names"] = {"plural": "gadgets", "kind": "Gadget", "shortNames": ["gd"], "categories": ["testing"]}
    crd["spec"]["versions"][0]["name"] = "v2"
    created = await http.ok("POST", CRD, crd)
    assert created["metadata"]["generation"] == 1
    got = await http.ok("GET", f"{CRD}/gadgets.test.modelops.dev")
    assert {c["type"]: c["status"] for c in got["status"]["conditions"]}["Established"] == "True"
    groups = await http.ok("GET", "/apis")
    group = next(g for g in groups["groups"] if g["name"] == "test.modelops.dev")
    assert {v["groupVersion"] for v in group["versions"]} == {"test.modelops.dev/v1", "test.modelops.dev/v2"}
    assert (await http.ok("GET", "/apis/test.modelops.dev"))["kind"] == "APIGroup"
    listing = await http.ok("GET", "/apis/test.modelops.dev/v2")
    assert listing["groupVersion"] == "test.modelops.dev/v2"
    by_name = {r["name"]: r for r in listing["resources"]}
    assert by_name["gadgets"]["kind"] == "Gadget"
    assert by_name["gadgets"]["namespaced"] is True
    assert by_name["gadgets"]["shortNames"] == ["gd"]
    assert by_name["gadgets"]["categories"] == ["testing"]
    assert {"create", "list", "watch", "patch", "deletecollection"} <= set(by_name["gadgets"]["verbs"])
    assert "gadgets/status" in by_name
    path = "/apis/test.modelops.dev/v2/namespaces/default/gadgets"
    await http.ok("POST", path, {**widget(), "apiVersion": "test.modelops.dev/v2", "kind": "Gadget"})
    await http.ok("DELETE", f"{CRD}/gadgets.test.modelops.dev")
    status, _ = await http.get(path)
    assert status == 404
    assert (await http.get("/apis/test.modelops.dev/v2"))[0] == 404


async def test_unknown_resources_and_type_mismatches(http: Client) -> None:
    assert (await http.get("/apis/modelops.dev/v1alpha1/namespaces/default/nothings"))[0] == 404
    assert (await http.get("/apis/nope.dev/v1/things"))[0] == 404
    assert (await http.get("/random/path"))[0] == 404
    body = model_version()
    body["kind"] = "ModelDeployment"
    status, out = await http.post(MV, body)
    assert status == 400
    assert "kind" in out["message"]
    body = model_version()
    body["apiVersion"] = "modelops.dev/v9"
    status, out = await http.post(MV, body)
    assert status == 400
    assert "API version" in out["message"]


async def test_invalid_digest_is_a_422_status_shaped_like_kube_apiserver(http: Client) -> None:
    body = model_version("x")
    body["spec"]["artifact"]["digest"] = "abc"
    status, out = await http.post(MV, body)
    assert status == 422
    pattern_cause = {
        "reason": "FieldValueInvalid",
        "message": "Invalid value: \"abc\": spec.artifact.digest in body should match '^sha256:[a-f0-9]{64}$'",
        "field": "spec.artifact.digest",
    }
    cel_cause = {
        "reason": "FieldValueInvalid",
        "message": 'Invalid value: "string": must be sha256: followed by 64 hex digits',
        "field": "spec.artifact.digest",
    }
    # The OpenAPI pattern and the CEL rule both fire; kube-apiserver lists every cause, in a
    # bracketed message when there are several.
    assert {k: out[k] for k in ("kind", "apiVersion", "status", "reason", "code")} == {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": "Invalid",
        "code": 422,
    }
    assert out["details"] == {
        "name": "x",
        "group": "modelops.dev",
        "kind": "ModelVersion",
        "causes": [pattern_cause, cel_cause],
    }
    assert out["message"].startswith(
        'ModelVersion.modelops.dev "x" is invalid: [spec.artifact.digest: Invalid value: "abc"'
    )


@pytest.mark.parametrize(
    ("spec", "reason", "field", "fragment"),
    [
        ({"size": "3"}, "FieldValueTypeInvalid", "spec.size", 'must be of type integer: "string"'),
        ({"size": 0}, "FieldValueInvalid", "spec.size", "should be greater than or equal to 1"),
        ({"size": 11}, "FieldValueInvalid", "spec.size", "should be less than or equal to 10"),
        ({"ratio": 0}, "FieldValueInvalid", "spec.ratio", "should be greater than 0"),
        ({"ratio": "x"}, "FieldValueTypeInvalid", "spec.ratio", "must be of type number"),
        ({"enabled": "yes"}, "FieldValueTypeInvalid", "spec.enabled", "must be of type boolean"),
        ({"color": "green"}, "FieldValueNotSupported", "spec.color", 'supported values: "red", "blue"'),
        ({"name": "a"}, "FieldValueInvalid", "spec.name", "should be at least 2 chars long"),
        ({"name": "abcdef"}, "FieldValueTooLong", "spec.name", "may not be more than 5"),
        ({"name": "AB"}, "FieldValueInvalid", "spec.name", "should match '^[a-z]+$'"),
        ({"when": "yesterday"}, "FieldValueInvalid", "spec.when", "must be of type date-time"),
        ({"tags": []}, "FieldValueInvalid", "spec.tags", "should have at least 1 items"),
        ({"tags": ["a", "b", "c"]}, "FieldValueTooMany", "spec.tags", "must have at most 2 items"),
        ({"labels": {"a": 1}}, "FieldValueTypeInvalid", "spec.labels.a", "must be of type string"),
        ({"items": [{"n": "x"}]}, "FieldValueTypeInvalid", "spec.items[0].n", "must be of type integer"),
        ({"size": None}, "FieldValueRequired", "spec.size", "Required value"),
    ],
)
async def test_openapi_validation(http: Client, spec: dict[str, Any], reason: str, field: str, fragment: str) -> None:
    body = widget()
    body["spec"].update(spec)
    if spec.get("size", 1) is None:
        del body["spec"]["size"]
    status, out = await http.post(W, body)
    assert status == 422, out
    causes = out["details"]["causes"]
    assert [(c["reason"], c["field"]) for c in causes] == [(reason, field)], causes
    assert fragment in causes[0]["message"]
    assert out["message"].startswith(f'Widget.test.modelops.dev "w1" is invalid: {field}: ')


async def test_valid_values_pruning_defaulting_and_preserved_fields(http: Client) -> None:
    body = widget(
        when="2026-01-02T03:04:05Z", tags=["a"], free={"any": {"thing": [1]}}, items=[{}, {"n": 1, "junk": 2}]
    )
    body["spec"]["junk"] = True
    body["extra"] = 1
    obj = await http.ok("POST", W, body)
    assert "junk" not in obj["spec"]
    assert "extra" not in obj
    assert obj["spec"]["color"] == "red"  # default
    assert obj["spec"]["items"] == [{"n": 7}, {"n": 1}]  # defaults inside arrays, unknowns pruned
    assert obj["spec"]["free"] == {"any": {"thing": [1]}}  # x-kubernetes-preserve-unknown-fields
    obj = await http.ok("POST", MV, model_version())
    assert obj["spec"]["stage"] == "None"
    assert obj["spec"]["framework"] == "sklearn"
    status = await http.ok("PATCH", f"{MV}/iris-v1/status", {"status": {"stage": "None"}}, ctype=MERGE)
    assert status["status"]["phase"] == "Pending"  # defaults apply once the parent exists


async def test_several_causes_are_reported_together(http: Client) -> None:
    body = widget(size=0, color="green")
    status, out = await http.post(W, body)
    assert status == 422
    assert len(out["details"]["causes"]) == 2
    assert " is invalid: [spec.size: Invalid value: 0: " in out["message"]


async def test_cel_rules_and_transition_rules(http: Client) -> None:
    status, out = await http.post(W, widget(owner="bob"))
    assert status == 422
    assert out["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "field": "spec",
            "message": 'Invalid value: "object": owner must start with team-',
        }
    ]
    status, out = await http.post(W, widget(tags=["OK"]))
    assert status == 422
    assert out["details"]["causes"][0]["reason"] == "FieldValueForbidden"
    assert out["details"]["causes"][0]["message"] == "Forbidden: tags must be lowercase"
    await http.ok("POST", W, widget())  # the transition rule does not run on create
    status, out = await http.patch(f"{W}/w1", {"spec": {"owner": "team-b"}})
    assert status == 422
    assert out["details"]["causes"][0]["field"] == "spec.owner"
    assert "owner is immutable" in out["message"]
    await http.ok("PATCH", f"{W}/w1", {"spec": {"size": 4}}, ctype=MERGE)


async def test_modelversion_immutability_rules(http: Client) -> None:
    await http.ok("POST", MV, model_version(inputSchema=[{"name": "x"}]))
    for patch in (
        {"spec": {"modelName": "other"}},
        {"spec": {"artifact": {"uri": "file:///elsewhere"}}},
        {"spec": {"framework": "torch"}},
        {"spec": {"inputSchema": None}},
        {"spec": {"metrics": {"acc": 0.9}}},
    ):
        status, out = await http.patch(f"{MV}/iris-v1", patch)
        assert status == 422, patch
        assert "is immutable: register a new ModelVersion instead" in out["message"]
    obj = await http.ok("PATCH", f"{MV}/iris-v1", {"spec": {"stage": "Production"}}, ctype=MERGE)
    assert obj["spec"]["stage"] == "Production"


def _deployment(steps: list[dict[str, Any]], **model: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "d"},
        "spec": {"model": model or {"versionRef": "iris-v1"}, "strategy": {"canary": {"steps": steps}}},
    }


async def test_modeldeployment_rules_has_filter_map_is_sorted(http: Client) -> None:
    path = "/apis/modelops.dev/v1alpha1/namespaces/default/modeldeployments"
    status, out = await http.post(path, _deployment([{"setWeight": 50}, {"pause": {}}, {"setWeight": 20}]))
    assert status == 422
    assert "setWeight must not decrease across steps" in out["message"]
    assert out["details"]["causes"][0]["field"] == "spec.strategy.canary.steps"
    status, out = await http.post(path, _deployment([{"setWeight": 10, "pause": {}}]))
    assert status == 422
    assert "a step sets exactly one of setWeight, pause, analysis" in out["message"]
    status, out = await http.post(path, _deployment([{"setWeight": 10}], versionRef="a", modelName="b"))
    assert status == 422
    assert "set exactly one of versionRef or modelName" in out["message"]
    ok = await http.ok("POST", path, _deployment([{"setWeight": 10}, {"pause": {"duration": "1m"}}, {"setWeight": 50}]))
    assert ok["spec"]["replicas"] == 1
    assert ok["spec"]["strategy"]["canary"]["autoRollback"] is True


async def test_strict_server_rejects_crds_a_real_apiserver_rejects() -> None:
    crd = copy.deepcopy(WIDGET_CRD)
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["ratio"] = {
        "type": "number",
        "exclusiveMinimum": 0,  # JSON Schema 2020 style: apiextensions/v1 wants a boolean here
    }
    async with ApiServer(port=0) as api:
        res = api.store.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        with pytest.raises(ApiError) as exc:
            api.store.create(res, None, crd)
        assert exc.value.code == 400
        assert "of type bool" in exc.value.message
        bad_rule = copy.deepcopy(WIDGET_CRD)
        bad_rule["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
            "x-kubernetes-validations"
        ] = [{"rule": "self.size >"}]
        with pytest.raises(ApiError) as exc:
            api.store.create(res, None, bad_rule)
        assert exc.value.code == 422
        assert "compilation failed" in exc.value.message


async def test_repo_crds_are_accepted_by_a_strict_server() -> None:
    """crds/ must load as kube-apiserver would load it (the fixtures are strict too)."""
    async with ApiServer(port=0, crds=[CRDS], strict_crds=True) as api:
        served = {r.kind for r in api.store.resources.values() if r.group == "modelops.dev"}
        assert served == {"ModelVersion", "ModelDeployment", "DriftMonitor", "ModelPolicy"}
