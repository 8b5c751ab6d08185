"""Field ownership of the sandbox API server (`modelops.sandbox.managed_fields`): the fieldsV1 set
algebra and the apply algorithm, checked against what kube-apiserver's structured-merge-diff does."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modelops.sandbox import field_sets as fs
from modelops.sandbox import managed_fields as mf
from modelops.sandbox.field_types import Shape

Obj = dict[str, Any]
C = 'k:{"name":"c"}'
CONTAINERS = ("f:spec", "f:template", "f:spec", "f:containers")
DEPLOYMENT = mf.shape_for("Deployment", None, custom=False)
CONFIGMAP = mf.shape_for("ConfigMap", None, custom=False)
SERVICE = mf.shape_for("Service", None, custom=False)
POD = mf.shape_for("Pod", None, custom=False)
T0, T1, T2 = "2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z", "2024-01-01T00:00:02Z"

CR_SCHEMA: Obj = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "properties": {
                "stage": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "owners": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["port", "protocol"],
                    "items": {
                        "type": "object",
                        "properties": {
                            "port": {"type": "integer"},
                            "protocol": {"type": "string", "default": "TCP"},
                            "name": {"type": "string"},
                        },
                    },
                },
                "ref": {
                    "type": "object",
                    "x-kubernetes-map-type": "atomic",
                    "properties": {"name": {"type": "string"}},
                },
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
    },
}
CR = mf.shape_for("Widget", CR_SCHEMA, custom=True)


def cm(**data: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": data}


def owners(obj: Obj) -> dict[str, set[str]]:
    """manager (+ operation) -> the paths it owns, as strings."""
    out: dict[str, set[str]] = {}
    for entry in obj["metadata"].get("managedFields") or []:
        paths = fs.from_fields_v1(entry["fieldsV1"])
        out[f"{entry.get('manager', '')}/{entry['operation']}"] = {fs.path_string(p) for p in paths}
    return out


# -- fieldsV1 encoding and paths ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("paths", "fields_v1"),
    [
        ([("f:spec", "f:replicas")], {"f:spec": {"f:replicas": {}}}),
        ([("f:spec",), ("f:spec", "f:replicas")], {"f:spec": {".": {}, "f:replicas": {}}}),
        (
            [(*CONTAINERS, C), (*CONTAINERS, C, "f:image"), (*CONTAINERS, C, "f:name")],
            {"f:spec": {"f:template": {"f:spec": {"f:containers": {C: {".": {}, "f:image": {}, "f:name": {}}}}}}},
        ),
        ([("f:metadata", "f:finalizers", 'v:"a"')], {"f:metadata": {"f:finalizers": {'v:"a"': {}}}}),
        (
            [("f:data", "f:b"), ("f:data", "f:a"), ("f:apiVersion",)],
            {"f:apiVersion": {}, "f:data": {"f:a": {}, "f:b": {}}},
        ),
    ],
)
def test_field_sets_encode_as_kubes_fields_v1(paths: list[fs.Path], fields_v1: Obj) -> None:
    encoded = fs.to_fields_v1(paths)
    assert encoded == fields_v1
    assert list(encoded) == list(fields_v1)  # "." first, then fields sorted by name
    assert fs.from_fields_v1(encoded) == set(paths)


def test_fields_v1_with_unknown_elements_is_refused() -> None:
    with pytest.raises(fs.ManagedFieldsError):
        fs.from_fields_v1({"spec": {}})


@pytest.mark.parametrize(
    ("path", "printed"),
    [
        (("f:spec", "f:stage"), ".spec.stage"),
        ((*CONTAINERS, C, "f:image"), '.spec.template.spec.containers[name="c"].image'),
        (("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}'), '.spec.ports[port=80,protocol="TCP"]'),
        (("f:metadata", "f:finalizers", 'v:"x"'), '.metadata.finalizers[="x"]'),
        (("f:items", "i:0"), ".items[0]"),
    ],
)
def test_paths_print_as_in_kubes_conflict_messages(path: fs.Path, printed: str) -> None:
    assert fs.path_string(path) == printed


# -- which fields a value sets -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "value", "expected"),
    [
        (
            DEPLOYMENT,
            {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}},
            {'.spec.template.spec.containers[name="c"]', '.spec.template.spec.containers[name="c"].name',
             '.spec.template.spec.containers[name="c"].image'},
        ),
        (
            DEPLOYMENT,
            {"spec": {"template": {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}}}},
            {'.spec.template.spec.containers[name="c"]', '.spec.template.spec.containers[name="c"].name',
             '.spec.template.spec.containers[name="c"].ports[containerPort=80,protocol="TCP"]',
             '.spec.template.spec.containers[name="c"].ports[containerPort=80,protocol="TCP"].containerPort'},
        ),
        (DEPLOYMENT, {"spec": {"selector": {"matchLabels": {"a": "b"}}}}, {".spec.selector"}),
        (DEPLOYMENT, {"spec": {"strategy": {}}}, {".spec.strategy"}),
        (DEPLOYMENT, {"metadata": {"labels": {"app": "x"}}}, {".metadata.labels.app"}),
        (
            DEPLOYMENT,
            {"metadata": {"finalizers": ["a", "b"]}},
            {'.metadata.finalizers[="a"]', '.metadata.finalizers[="b"]'},
        ),
        (SERVICE, {"spec": {"selector": {"app": "x"}}}, {".spec.selector.app"}),
        (
            SERVICE,
            {"spec": {"ports": [{"port": 80, "name": "http"}]}},
            {'.spec.ports[port=80,protocol="TCP"]', '.spec.ports[port=80,protocol="TCP"].port',
             '.spec.ports[port=80,protocol="TCP"].name'},
        ),
        (CR, {"spec": {"tags": ["a", "b"]}}, {".spec.tags"}),
        (CR, {"spec": {"owners": ["x"]}}, {'.spec.owners[="x"]'}),
        (
            CR,
            {"spec": {"ports": [{"port": 80}]}},
            {'.spec.ports[port=80,protocol="TCP"]', '.spec.ports[port=80,protocol="TCP"].port'},
        ),
        (CR, {"spec": {"ref": {"name": "n"}}}, {".spec.ref"}),
        (CR, {"spec": {"free": {"a": {"b": 1}}}}, {".spec.free.a", ".spec.free.a.b"}),
        (CR, {"spec": {"stage": None}}, {".spec.stage"}),
    ],
)  # fmt: skip
def test_a_value_sets_its_leaves_items_and_map_entries(shape: Shape, value: Obj, expected: set[str]) -> None:
    assert {fs.path_string(p) for p in fs.to_set(value, shape)} == expected


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (
            {"spec": {"template": {"spec": {"containers": [{"name": "c"}, {"name": "c"}]}}}},
            '.spec.template.spec.containers: duplicate entries for key [name="c"]',
        ),
        (
            {"spec": {"template": {"spec": {"containers": [{"name": "c", "env": [{"value": "1"}]}]}}}},
            '.spec.template.spec.containers[name="c"].env: element 0: associative list with keys has an element '
            'that omits key field "name" (and doesn\'t have default value)',
        ),
    ],
)
def test_an_applied_configuration_needs_unique_keyed_list_items(value: Obj, error: str) -> None:
    with pytest.raises(fs.ConfigError) as exc:
        fs.to_set(value, DEPLOYMENT, strict=True)
    assert exc.value.errors == [error]


# -- compare and merge ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "added", "modified", "removed"),
    [
        ({"data": {"a": "1"}}, {"data": {"a": "2", "b": "3"}}, {".data.b"}, {".data.a"}, set()),
        ({"data": {"a": "1"}}, {}, set(), set(), {".data", ".data.a"}),
        ({}, {"data": {"a": "1"}}, {".data", ".data.a"}, set(), set()),
        ({"data": {"a": 1}}, {"data": {"a": "1"}}, set(), {".data.a"}, set()),
        ({"data": {}}, {"data": None}, set(), {".data"}, set()),
        ({"data": {"a": [1, 2]}}, {"data": {"a": [2, 1]}}, set(), {".data.a"}, set()),
    ],
)
def test_compare_reports_added_modified_and_removed_fields(
    old: Obj, new: Obj, added: set[str], modified: set[str], removed: set[str]
) -> None:
    cmp = fs.compare(old, new, CONFIGMAP)
    assert ({fs.path_string(p) for p in cmp.added}, {fs.path_string(p) for p in cmp.modified}) == (added, modified)
    assert {fs.path_string(p) for p in cmp.removed} == removed


def _names(items: list[Any]) -> list[Any]:
    return [i["name"] if isinstance(i, dict) else i for i in items]


@pytest.mark.parametrize(
    ("live", "config", "merged"),
    [
        (["a", "b", "c"], ["c", "d"], ["a", "b", "c", "d"]),
        (["a", "b", "c"], ["c", "a"], ["b", "c", "a"]),
        (["a", "b"], ["x", "b"], ["a", "x", "b"]),
        ([], ["a"], ["a"]),
        (["a", "b"], [], ["a", "b"]),
    ],
)
def test_associative_lists_merge_by_key_in_structured_merge_diffs_order(
    live: list[str], config: list[str], merged: list[str]
) -> None:
    def pod(names: list[str]) -> Obj:
        return {"spec": {"template": {"spec": {"containers": [{"name": n, "image": n} for n in names]}}}}

    out = fs.merge(pod(live), pod(config), DEPLOYMENT)
    assert _names(out["spec"]["template"]["spec"]["containers"]) == merged


def test_merge_recurses_into_items_sets_union_and_atomic_lists_are_replaced() -> None:
    live = {
        "metadata": {"finalizers": ["a", "b"], "labels": {"x": "1"}},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i:1", "args": ["1", "2"]}]}}},
    }
    config = {
        "metadata": {"finalizers": ["c", "a"], "labels": {"y": "2"}},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "args": ["3"]}]}}},
    }
    out = fs.merge(live, config, DEPLOYMENT)
    assert out["metadata"] == {"finalizers": ["c", "a", "b"], "labels": {"x": "1", "y": "2"}}
    assert out["spec"]["template"]["spec"]["containers"] == [{"name": "c", "image": "i:1", "args": ["3"]}]


def test_an_applied_null_removes_a_built_in_field_but_stays_for_custom_resources() -> None:
    assert fs.merge({"data": {"a": "1", "b": "2"}}, {"data": {"a": None}}, CONFIGMAP) == {"data": {"b": "2"}}
    assert fs.merge({"spec": {"stage": "x"}}, {"spec": {"stage": None}}, CR) == {"spec": {"stage": None}}


# -- writes: Update entries ----------------------------------------------------------------------


def update(obj: Obj, new: Obj, manager: str, now: str, subresource: str = "", shape: Shape = CONFIGMAP) -> Obj:
    status = shape is not CONFIGMAP
    write = mf.Write(manager, mf.UPDATE, new.get("apiVersion", "v1"), subresource, status_subresource=status)
    out = copy.deepcopy(new)
    out["metadata"]["managedFields"] = mf.updated(shape, obj, new, write, now)
    return out


def apply(obj: Obj | None, config: Obj, manager: str, now: str, force: bool = False, **kw: Any) -> Obj:
    shape = kw.pop("shape", CONFIGMAP)
    write = mf.Write(manager, mf.APPLY, config["apiVersion"], force=force, **kw)
    return mf.applied(shape, obj, config, write, now)


def test_a_create_owns_what_it_set_and_an_update_takes_what_it_changes() -> None:
    created = update(None, cm(a="1", b="2"), "creator", T0)  # type: ignore[arg-type]
    assert owners(created) == {"creator/Update": {".data", ".data.a", ".data.b"}}
    entry = created["metadata"]["managedFields"][0]
    assert entry == {
        "manager": "creator", "operation": "Update", "apiVersion": "v1", "time": T0, "fieldsType": "FieldsV1",
        "fieldsV1": {"f:data": {".": {}, "f:a": {}, "f:b": {}}},
    }  # fmt: skip

    changed = copy.deepcopy(created)
    changed["data"]["a"] = "9"
    updated = update(created, changed, "editor", T1)
    assert owners(updated) == {"creator/Update": {".data", ".data.b"}, "editor/Update": {".data.a"}}

    same = update(updated, copy.deepcopy(updated), "editor", T2)
    assert same["metadata"]["managedFields"] == updated["metadata"]["managedFields"]  # no change: no new time


def test_status_writes_are_owned_with_their_subresource() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}, "status": {}}
    running = copy.deepcopy(pod)
    running["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    out = update(pod, running, "kubelet", T0, subresource="status", shape=POD)
    (entry,) = out["metadata"]["managedFields"]
    assert entry["subresource"] == "status"
    assert entry["fieldsV1"] == {
        "f:status": {"f:conditions": {".": {}, 'k:{"type":"Ready"}': {".": {}, "f:status": {}, "f:type": {}}},
                     "f:phase": {}},
    }  # fmt: skip


def test_a_request_can_reset_managed_fields() -> None:
    created = update(None, cm(a="1"), "creator", T0)  # type: ignore[arg-type]
    write = mf.Write("editor", mf.UPDATE, "v1")
    assert mf.updated(CONFIGMAP, created, copy.deepcopy(created), write, T1, requested=[{}]) is None
    assert mf.updated(CONFIGMAP, created, copy.deepcopy(created), write, T1, requested=[]) is None
    kept = mf.updated(CONFIGMAP, created, copy.deepcopy(created), write, T1, requested=[{"bogus": 1}])
    assert kept == created["metadata"]["managedFields"]  # undecodable: the live ones stay


def test_more_than_ten_updaters_merge_the_oldest_into_ancient_changes() -> None:
    obj = update(None, cm(), "m00", T0)  # type: ignore[arg-type]
    for i in range(11):
        new = copy.deepcopy(obj)
        new["data"][f"k{i}"] = "v"
        obj = update(obj, new, f"m{i:02d}", f"2024-01-01T00:01:{i:02d}Z")
    managers = owners(obj)
    assert len(managers) == 10
    assert managers["ancient-changes/Update"] == {".data", ".data.k0", ".data.k1"}  # m00 created data
    assert "m00/Update" not in managers
    assert managers["m10/Update"] == {".data.k10"}


# -- writes: Apply -------------------------------------------------------------------------------


def test_apply_owns_exactly_its_configuration() -> None:
    out = apply(None, cm(a="1"), "gitops", T0)
    assert out["metadata"]["managedFields"] == [
        {"manager": "gitops", "operation": "Apply", "apiVersion": "v1", "time": T0, "fieldsType": "FieldsV1",
         "fieldsV1": {"f:data": {"f:a": {}}}}
    ]  # fmt: skip


def test_apply_of_a_field_another_manager_changed_is_a_conflict_naming_both() -> None:
    live = apply(None, cm(a="1", b="2"), "gitops", T0)
    edited = copy.deepcopy(live)
    edited["data"]["a"] = "9"
    edited = update(live, edited, "kubectl-edit", T1)
    with pytest.raises(mf.ApplyConflict) as exc:
        apply(edited, cm(a="1", b="2"), "gitops", T2)
    assert exc.value.message == 'Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .data.a'
    assert exc.value.causes() == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "kubectl-edit" using v1', "field": ".data.a"}
    ]


def test_several_conflicts_are_listed_per_manager() -> None:
    live = apply(None, cm(x="1", y="1", z="1"), "a", T0)
    live = apply(live, cm(x="1", y="1", z="1"), "b", T0)  # co-owned, no conflict
    edited = copy.deepcopy(live)
    edited["data"].update(x="2", y="2")
    edited = update(live, edited, "a-editor", T1)
    with pytest.raises(mf.ApplyConflict) as exc:
        apply(edited, cm(x="3", y="3", z="3"), "c", T2)
    assert exc.value.message == (
        'Apply failed with 4 conflicts: conflicts with "a":\n- .data.z\n'
        'conflicts with "a-editor" using v1:\n- .data.x\n- .data.y\n'
        'conflicts with "b":\n- .data.z'
    )


def test_a_status_manager_is_named_with_its_subresource() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}, "status": {}}
    running = copy.deepcopy(pod)
    running["status"] = {"phase": "Running"}
    live = update(pod, running, "kubelet", T0, subresource="status", shape=POD)
    config = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": {"phase": "Failed"}}
    with pytest.raises(mf.ApplyConflict) as exc:
        apply(live, config, "tester", T1, shape=POD, subresource="status", status_subresource=True)
    assert exc.value.message == (
        'Apply failed with 1 conflict: conflict with "kubelet" with subresource "status" using v1: .status.phase'
    )


def test_applying_the_same_value_co_owns_and_force_takes_ownership() -> None:
    live = apply(None, cm(a="1"), "first", T0)
    shared = apply(live, cm(a="1"), "second", T1)
    assert owners(shared) == {"first/Apply": {".data.a"}, "second/Apply": {".data.a"}}
    second = next(e for e in shared["metadata"]["managedFields"] if e["manager"] == "second")
    assert "time" not in second  # nothing changed: kube sets no time either

    with pytest.raises(mf.ApplyConflict):
        apply(shared, cm(a="2"), "second", T2)
    forced = apply(shared, cm(a="2"), "second", T2, force=True)
    assert forced["data"] == {"a": "2"}
    assert owners(forced) == {"second/Apply": {".data.a"}}


def test_a_field_the_applier_stops_sending_is_removed_unless_someone_else_owns_it() -> None:
    live = apply(None, cm(a="1", b="2", c="3"), "gitops", T0)
    live = apply(live, cm(c="3"), "other", T0)
    out = apply(live, cm(a="1"), "gitops", T1)
    assert out["data"] == {"a": "1", "c": "3"}
    assert owners(out) == {"gitops/Apply": {".data.a"}, "other/Apply": {".data.c"}}


def test_containers_merge_by_name_and_a_dropped_container_goes() -> None:
    def deployment(*containers: str) -> Obj:
        spec = {"containers": [{"name": n, "image": f"{n}:1"} for n in containers]}
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                "spec": {"template": {"spec": spec}}}  # fmt: skip

    live = apply(None, deployment("app"), "gitops", T0, shape=DEPLOYMENT, status_subresource=True)
    live = apply(live, deployment("sidecar"), "injector", T0, shape=DEPLOYMENT, status_subresource=True)
    assert _names(live["spec"]["template"]["spec"]["containers"]) == ["app", "sidecar"]
    out = apply(live, deployment("web"), "gitops", T1, shape=DEPLOYMENT, status_subresource=True)
    assert _names(out["spec"]["template"]["spec"]["containers"]) == ["sidecar", "web"]
    assert owners(out)["gitops/Apply"] == {
        '.spec.template.spec.containers[name="web"]',
        '.spec.template.spec.containers[name="web"].name',
        '.spec.template.spec.containers[name="web"].image',
    }


def test_fields_of_an_object_no_manager_recorded_belong_to_before_first_apply() -> None:
    untracked = cm(a="1", b="2")  # e.g. created by the server itself, or with its managedFields reset
    with pytest.raises(mf.ApplyConflict) as exc:
        apply(untracked, cm(a="9"), "gitops", T0)
    assert exc.value.message == 'Apply failed with 1 conflict: conflict with "before-first-apply" using v1: .data.a'
    out = apply(untracked, cm(a="1"), "gitops", T0)
    assert owners(out) == {"gitops/Apply": {".data.a"}, "before-first-apply/Update": {".data", ".data.a", ".data.b"}}


def test_a_no_op_apply_changes_nothing_at_all() -> None:
    live = apply(None, cm(a="1"), "gitops", T0)
    again = apply(live, cm(a="1"), "gitops", T1)
    assert again == live
    assert again["metadata"]["managedFields"][0] is live["metadata"]["managedFields"][0]


def test_stored_entries_are_shared_by_deep_copies_and_refuse_mutation() -> None:
    live = apply(None, cm(a="1"), "gitops", T0)
    entry = live["metadata"]["managedFields"][0]
    assert copy.deepcopy(live)["metadata"]["managedFields"][0] is entry
    with pytest.raises(TypeError):
        entry["manager"] = "someone"


# -- field managers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field_manager", "user_agent", "manager"),
    [
        ("argocd-controller", "argocd-application-controller/v2.9", "argocd-controller"),
        (None, "kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd", "kubectl"),
        (None, "OpenAPI-Generator/37.0.2/python", "OpenAPI-Generator"),
        (None, "kopf/1.45.2", "kopf"),
        (None, "python-requests/2.32.3", "python-requests"),
        (None, "", ""),
        ("", None, None),
        (None, "x" * 200, "x" * 128),
    ],
)
def test_the_manager_is_the_field_manager_else_the_user_agent_prefix(
    field_manager: str | None, user_agent: str | None, manager: str | None
) -> None:
    assert mf.manager_for(field_manager, user_agent) == manager


def test_field_manager_names_must_be_short_and_printable() -> None:
    assert mf.field_manager_errors("ok-manager") == []
    assert mf.field_manager_errors("m" * 129) == [
        ("FieldValueTooLong", "fieldManager", "Too long: may not be more than 128 bytes")
    ]
    assert mf.field_manager_errors("bad\x07") == [
        ("FieldValueInvalid", "fieldManager", 'Invalid value: "bad\\u0007": invalid character U+0007 (at position 3)')
    ]
