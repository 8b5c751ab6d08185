"""Field selectors accept only the fields kube-apiserver indexes per kind; anything else is a 400."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from modelops.sandbox import ApiServer
from tests.integration.sandbox.conftest import MV, WIDGET_CRD, Client, model_version, widget

NS = "/api/v1/namespaces/default"
WIDGETS = "/apis/test.modelops.dev/v1/namespaces/default/widgets"
GADGETS = "/apis/test.modelops.dev/v1/namespaces/default/gadgets"


async def _names(http: Client, path: str, selector: str) -> list[str]:
    out = await http.ok("GET", path, fieldSelector=selector)
    return [i["metadata"]["name"] for i in out["items"]]


async def _refused(http: Client, path: str, selector: str, **params: Any) -> str:
    status, err = await http.get(path, fieldSelector=selector, **params)
    assert status == 400, err
    assert err["reason"] == "BadRequest"
    return str(err["message"])


async def test_custom_resources_select_by_name_and_namespace_only(http: Client) -> None:
    await http.ok("POST", MV, model_version("a"))
    await http.ok("POST", MV, model_version("b"))
    assert await _names(http, MV, "metadata.name=b") == ["b"]
    assert await _names(http, MV, "metadata.namespace=default,metadata.name!=b") == ["a"]
    assert await _refused(http, MV, "spec.modelName=iris") == "field label not supported: spec.modelName"
    assert await _refused(http, MV, "metadata.labels=x") == "field label not supported: metadata.labels"
    # a watch is refused the same way, before any stream starts
    assert await _refused(http, MV, "status.phase=Verified", watch="true") == "field label not supported: status.phase"
    status, _ = await http.request("DELETE", MV, fieldSelector="spec.version=1")
    assert status == 400


async def test_declared_selectable_fields_of_a_crd(api: ApiServer, http: Client) -> None:
    crd = copy.deepcopy(WIDGET_CRD)
    crd["metadata"]["name"] = "gadgets.test.modelops.dev"
    crd["spec"]["names"] = {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"}
    crd["spec"]["versions"][0]["selectableFields"] = [{"jsonPath": ".spec.color"}, {"jsonPath": ".spec.size"}]
    await http.ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    for name, color, size in (("g1", "red", 1), ("g2", "blue", 2)):
        await http.ok("POST", GADGETS, {**widget(name, color=color, size=size), "kind": "Gadget"})
    assert await _names(http, GADGETS, "spec.color=blue") == ["g2"]
    assert await _names(http, GADGETS, "spec.size=1") == ["g1"]
    assert await _refused(http, GADGETS, "spec.owner=team-a") == "field label not supported: spec.owner"
    # the Widget CRD declares none
    await http.ok("POST", WIDGETS, widget("w"))
    assert await _refused(http, WIDGETS, "spec.color=red") == "field label not supported: spec.color"


async def test_built_ins_accept_the_fields_their_kind_indexes(http: Client) -> None:
    await http.ok("POST", f"{NS}/configmaps", {"metadata": {"name": "c"}, "data": {"k": "v"}})
    await http.ok("POST", f"{NS}/secrets", {"metadata": {"name": "tls"}, "type": "kubernetes.io/tls", "data": {}})
    await http.ok("POST", f"{NS}/secrets", {"metadata": {"name": "plain"}, "data": {}})
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "serviceAccountName": "runner",
                                               "containers": [{"name": "c", "image": "i"}]}}  # fmt: skip
    await http.ok("POST", f"{NS}/pods", pod)
    await http.ok("POST", "/apis/batch/v1/namespaces/default/jobs", {"metadata": {"name": "j"}, "spec": {
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}})  # fmt: skip

    assert await _names(http, f"{NS}/configmaps", "metadata.name=c") == ["c"]
    assert await _refused(http, f"{NS}/configmaps", "data.k=v") == (
        '"data.k" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )
    assert await _names(http, f"{NS}/secrets", "type=kubernetes.io/tls") == ["tls"]
    assert await _names(http, f"{NS}/secrets", "type=Opaque") == ["plain"]
    assert await _names(http, f"{NS}/pods", "spec.nodeName=n1,status.phase=Pending") == ["p"]
    assert await _names(http, f"{NS}/pods", "spec.serviceAccountName=runner,spec.restartPolicy=Always") == ["p"]
    assert await _names(http, f"{NS}/pods", "spec.hostNetwork=false,spec.schedulerName=default-scheduler") == ["p"]
    assert await _names(http, f"{NS}/pods", "spec.host=n2") == []  # the old name of spec.nodeName
    assert await _refused(http, f"{NS}/pods", "spec.containers=c") == "field label not supported: spec.containers"
    assert await _names(http, "/api/v1/namespaces", "status.phase=Active,metadata.name=default") == ["default"]
    assert await _refused(http, "/api/v1/namespaces", "metadata.namespace=x") == (
        "field label not supported: metadata.namespace"
    )
    assert await _names(http, "/apis/batch/v1/namespaces/default/jobs", "status.successful=0") == ["j"]
    assert await _refused(http, "/apis/batch/v1/namespaces/default/jobs", "status.active=1") == (
        'field label "status.active" not supported for batchv1.Job'
    )
    assert await _refused(http, "/apis/apps/v1/namespaces/default/deployments", "spec.replicas=1") == (
        '"spec.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )


async def test_events_by_involved_object_reason_type_and_source(http: Client) -> None:
    def event(name: str, uid: str, reason: str, type_: str, source: dict[str, str]) -> dict[str, Any]:
        return {"metadata": {"name": name}, "reason": reason, "type": type_, "source": source, "message": "m",
                "involvedObject": {"kind": "ModelVersion", "name": "iris", "namespace": "default", "uid": uid,
                                   "apiVersion": "modelops.dev/v1alpha1"}}  # fmt: skip

    await http.ok("POST", f"{NS}/events", event("e1", "u1", "Verified", "Normal", {"component": "modelops"}))
    await http.ok("POST", f"{NS}/events", event("e2", "u2", "DigestMismatch", "Warning", {}))
    ev = f"{NS}/events"
    assert await _names(http, ev, "involvedObject.uid=u1") == ["e1"]
    assert await _names(http, ev, "involvedObject.name=iris,involvedObject.kind=ModelVersion") == ["e1", "e2"]
    assert await _names(http, ev, "involvedObject.apiVersion=modelops.dev/v1alpha1,type=Warning") == ["e2"]
    assert await _names(http, ev, "reason=Verified,source=modelops") == ["e1"]
    assert await _refused(http, ev, "message=m") == "field label not supported: message"
    v1 = "/apis/events.k8s.io/v1/namespaces/default/events"
    await http.ok("POST", v1, {"metadata": {"name": "n1"}, "reason": "Scaled", "type": "Normal", "action": "Scale",
                               "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "ctl",
                               "reportingInstance": "ctl-1", "regarding": {"kind": "Deployment", "name": "web"}})  # fmt: skip
    assert await _names(http, v1, "regarding.kind=Deployment,reportingController=ctl") == ["n1"]
    assert await _refused(http, v1, "involvedObject.name=web") == "field label not supported: involvedObject.name"


def test_python_client_lists_events_by_involved_object(apiserver: Any, kubeconfig: Path) -> None:
    api = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))  # type: ignore[no-untyped-call]
    body = {"metadata": {"name": "e"}, "reason": "R", "involvedObject": {"kind": "Pod", "name": "x", "uid": "u"}}
    api.create_namespaced_event("default", body)  # type: ignore[arg-type]
    assert [e.metadata.name for e in api.list_namespaced_event("default", field_selector="involvedObject.uid=u").items]
    with pytest.raises(client.ApiException) as err:
        api.list_namespaced_event("default", field_selector="note=x")
    assert err.value.status == 400
