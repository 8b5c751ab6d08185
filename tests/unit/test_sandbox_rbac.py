"""The sandbox's RBAC authorizer and ServiceAccount tokens, as tables against kube-apiserver's behaviour.

Expected request attributes follow kube's RequestInfoFactory; expected decisions and messages follow
plugin/pkg/auth/authorizer/rbac and responsewriters.forbiddenMessage.
"""

from __future__ import annotations

from typing import Any

import pytest

from modelops.sandbox import Store
from modelops.sandbox.auth import Auth
from modelops.sandbox.errors import ApiError
from modelops.sandbox.rbac import (
    ADMIN,
    Attributes,
    Policy,
    UserInfo,
    authorize,
    forbidden,
    request_attributes,
    rule_allows,
    service_account_user,
)

SA = service_account_user("ns", "sa")
OTHER_SA = service_account_user("other", "sa")
ALICE = UserInfo("alice", ("devs", "system:authenticated"))


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/api/v1/namespaces/ns/pods", {}, ("list", "", "ns", "pods", "", "")),
        ("GET", "/api/v1/namespaces/ns/pods", {"watch": "1"}, ("watch", "", "ns", "pods", "", "")),
        ("GET", "/api/v1/namespaces/ns/pods", {"watch": "true"}, ("watch", "", "ns", "pods", "", "")),
        ("GET", "/api/v1/namespaces/ns/pods", {"watch": "false"}, ("list", "", "ns", "pods", "", "")),
        ("GET", "/api/v1/watch/namespaces/ns/pods", {}, ("watch", "", "ns", "pods", "", "")),
        ("GET", "/api/v1/watch/namespaces/ns/pods/p", {}, ("watch", "", "ns", "pods", "p", "")),
        (
            "GET",
            "/api/v1/namespaces/ns/pods",
            {"fieldSelector": "metadata.name=p"},
            ("list", "", "ns", "pods", "p", ""),
        ),
        (
            "GET",
            "/api/v1/namespaces/ns/pods",
            {"fieldSelector": "metadata.name!=p"},
            ("list", "", "ns", "pods", "", ""),
        ),
        ("GET", "/api/v1/namespaces/ns/pods/p", {}, ("get", "", "ns", "pods", "p", "")),
        ("HEAD", "/api/v1/namespaces/ns/pods/p", {}, ("get", "", "ns", "pods", "p", "")),
        ("GET", "/api/v1/namespaces/ns/pods/p/log", {}, ("get", "", "ns", "pods", "p", "log")),
        ("POST", "/api/v1/namespaces/ns/pods", {}, ("create", "", "ns", "pods", "", "")),
        ("PUT", "/api/v1/namespaces/ns/pods/p", {}, ("update", "", "ns", "pods", "p", "")),
        ("DELETE", "/api/v1/namespaces/ns/pods/p", {}, ("delete", "", "ns", "pods", "p", "")),
        ("DELETE", "/api/v1/namespaces/ns/pods", {}, ("deletecollection", "", "ns", "pods", "", "")),
        (
            "PATCH",
            "/apis/modelops.dev/v1alpha1/namespaces/ns/driftmonitors/m/status",
            {},
            ("patch", "modelops.dev", "ns", "driftmonitors", "m", "status"),
        ),
        (
            "POST",
            "/api/v1/namespaces/ns/serviceaccounts/sa/token",
            {},
            ("create", "", "ns", "serviceaccounts", "sa", "token"),
        ),
        ("GET", "/api/v1/nodes", {}, ("list", "", "", "nodes", "", "")),
        ("GET", "/apis/apps/v1/deployments", {}, ("list", "apps", "", "deployments", "", "")),
        # a namespace is its own namespace; status/finalize are its subresources
        ("GET", "/api/v1/namespaces/ns", {}, ("get", "", "ns", "namespaces", "ns", "")),
        ("PUT", "/api/v1/namespaces/ns/finalize", {}, ("update", "", "ns", "namespaces", "ns", "finalize")),
        ("GET", "/api/v1/namespaces", {}, ("list", "", "", "namespaces", "", "")),
        # resources that do not exist are still resource requests (403 comes before 404)
        ("GET", "/apis/nope.io/v1/namespaces/ns/things/t", {}, ("get", "nope.io", "ns", "things", "t", "")),
    ],
)
def test_request_attributes(method: str, path: str, query: dict[str, str], expected: tuple[str, ...]) -> None:
    a = request_attributes(SA, method, path, query)
    assert a.resource_request
    assert (a.verb, a.api_group, a.namespace, a.resource, a.name, a.subresource) == expected


@pytest.mark.parametrize(
    ("method", "path", "verb"),
    [
        ("GET", "/api", "get"),
        ("GET", "/api/v1", "get"),
        ("GET", "/apis/modelops.dev", "get"),
        ("GET", "/apis/modelops.dev/v1alpha1", "get"),
        ("GET", "/openapi/v3/apis/apps/v1", "get"),
        ("GET", "/healthz", "get"),
        ("POST", "/version", "post"),
        ("GET", "/", "get"),
    ],
)
def test_non_resource_requests(method: str, path: str, verb: str) -> None:
    a = request_attributes(SA, method, path, {})
    assert not a.resource_request
    assert (a.verb, a.path) == (verb, path)


def _res(verb: str, group: str, resource: str, sub: str = "", name: str = "", ns: str = "ns") -> Attributes:
    return Attributes(SA, verb, True, "", group, "v1", ns, resource, sub, name)


STATUS_RULE = {
    "apiGroups": ["modelops.dev"],
    "resources": ["driftmonitors/status"],
    "resourceNames": ["m"],
    "verbs": ["get", "patch"],
}


@pytest.mark.parametrize(
    ("rule", "attrs", "allowed"),
    [
        (STATUS_RULE, _res("patch", "modelops.dev", "driftmonitors", "status", "m"), True),
        (STATUS_RULE, _res("get", "modelops.dev", "driftmonitors", "status", "m"), True),
        (STATUS_RULE, _res("update", "modelops.dev", "driftmonitors", "status", "m"), False),  # verb
        (STATUS_RULE, _res("patch", "modelops.dev", "driftmonitors", "status", "other"), False),  # name
        (STATUS_RULE, _res("patch", "modelops.dev", "driftmonitors", "", "m"), False),  # main resource
        (STATUS_RULE, _res("patch", "other.dev", "driftmonitors", "status", "m"), False),  # group
        # resourceNames never match a request without a name (list, watch, create)
        (STATUS_RULE, _res("get", "modelops.dev", "driftmonitors", "status", ""), False),
        ({"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}, _res("list", "", "pods"), True),
        ({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}, _res("get", "", "pods", "log", "p"), False),
        ({"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}, _res("get", "", "pods", "log", "p"), True),
        ({"apiGroups": [""], "resources": ["*/log"], "verbs": ["get"]}, _res("get", "", "pods", "log", "p"), True),
        ({"apiGroups": [""], "resources": ["*/log"], "verbs": ["get"]}, _res("get", "", "pods", "", "p"), False),
        ({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, _res("delete", "apps", "deployments", "", "d"), True),
        ({"apiGroups": ["apps"], "resources": ["*"], "verbs": ["watch"]}, _res("watch", "apps", "deployments"), True),
        ({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list"]}, _res("watch", "apps", "deployments"), False),
        ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["s"]},
         _res("get", "", "secrets", "", "s"), True),
        # a resource rule never matches a non-resource URL and vice versa
        ({"apiGroups": ["*"], "resources": ["*"], "verbs": ["get"]}, Attributes(SA, "get", False, "/api"), False),
        ({"nonResourceURLs": ["/api"], "verbs": ["get"]}, Attributes(SA, "get", False, "/api"), True),
        ({"nonResourceURLs": ["/api/*"], "verbs": ["get"]}, Attributes(SA, "get", False, "/api/v1"), True),
        ({"nonResourceURLs": ["/api/*"], "verbs": ["get"]}, Attributes(SA, "get", False, "/apis"), False),
        ({"nonResourceURLs": ["*"], "verbs": ["*"]}, Attributes(SA, "post", False, "/anything"), True),
    ],
)  # fmt: skip
def test_rule_allows(rule: dict[str, Any], attrs: Attributes, allowed: bool) -> None:
    assert rule_allows(attrs, rule) is allowed


def _role(kind: str, name: str, rules: list[dict[str, Any]], ns: str = "", **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": ns} if ns else {})}
    meta.update(extra.pop("meta", {}))
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta, "rules": rules, **extra}


def _binding(
    kind: str, name: str, role_kind: str, role: str, subjects: list[dict[str, Any]], ns: str = ""
) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name, **({"namespace": ns} if ns else {})},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": subjects,
    }


SA_SUBJECT = {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}
POLICY = Policy.of(
    [
        _role("Role", "check", [STATUS_RULE], ns="ns"),
        _binding("RoleBinding", "check", "Role", "check", [SA_SUBJECT], ns="ns"),
        _role("ClusterRole", "pod-reader", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]),
        # a ClusterRole bound by a RoleBinding grants only in that binding's namespace
        _binding("RoleBinding", "read-pods", "ClusterRole", "pod-reader", [{"kind": "ServiceAccount", "name": "sa"}], ns="ns"),
        _role("ClusterRole", "node-reader", [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]),
        _binding("ClusterRoleBinding", "devs-nodes", "ClusterRole", "node-reader", [{"kind": "Group", "name": "devs"}]),
        # a ServiceAccount subject of a ClusterRoleBinding needs its namespace: without, it applies to no one
        _binding("ClusterRoleBinding", "no-ns", "ClusterRole", "node-reader", [{"kind": "ServiceAccount", "name": "sa"}]),
        _role("ClusterRole", "cm-writer", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}]),
        _binding("ClusterRoleBinding", "alice-cm", "ClusterRole", "cm-writer", [{"kind": "User", "name": "alice"}]),
        # aggregation: the aggregate has the rules of every ClusterRole its selector picks
        _role("ClusterRole", "monitoring", [], aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"agg": "mon"}}]}),
        _role("ClusterRole", "mon-leases", [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                                             "verbs": ["get"]}], meta={"labels": {"agg": "mon"}}),
        _binding("RoleBinding", "mon", "ClusterRole", "monitoring", [SA_SUBJECT], ns="ns"),
        _binding("RoleBinding", "dangling", "Role", "gone", [SA_SUBJECT], ns="ns"),
    ]
)  # fmt: skip


@pytest.mark.parametrize(
    ("attrs", "allowed", "reason"),
    [
        (
            _res("patch", "modelops.dev", "driftmonitors", "status", "m"),
            True,
            'RBAC: allowed by RoleBinding "check/ns" of Role "check" to ServiceAccount "sa/ns"',
        ),
        (
            _res("list", "", "pods"),
            True,
            'RBAC: allowed by RoleBinding "read-pods/ns" of ClusterRole "pod-reader" to ServiceAccount "sa/ns"',
        ),
        (
            _res("get", "coordination.k8s.io", "leases", "", "l"),
            True,
            'RBAC: allowed by RoleBinding "mon/ns" of ClusterRole "monitoring" to ServiceAccount "sa/ns"',
        ),
        # everything else for the ServiceAccount: denied, naming the dangling binding's missing Role
        (_res("list", "", "pods", ns="other"), False, ""),
        (_res("list", "", "nodes", ns=""), False, ""),
        (_res("delete", "modelops.dev", "driftmonitors", "", "m"), False, 'RBAC: role.rbac.authorization.k8s.io "gone" not found'),
        (
            Attributes(ALICE, "list", True, "", "", "v1", "", "nodes"),
            True,
            'RBAC: allowed by ClusterRoleBinding "devs-nodes" of ClusterRole "node-reader" to Group "devs"',
        ),
        (
            Attributes(ALICE, "create", True, "", "", "v1", "any", "configmaps"),
            True,
            'RBAC: allowed by ClusterRoleBinding "alice-cm" of ClusterRole "cm-writer" to User "alice"',
        ),
        (Attributes(OTHER_SA, "patch", True, "", "modelops.dev", "v1", "ns", "driftmonitors", "status", "m"), False, ""),
        # built-in policy: discovery for every authenticated user; masters may do anything
        (
            Attributes(OTHER_SA, "get", False, "/apis/modelops.dev/v1alpha1"),
            True,
            'RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" to Group '
            '"system:authenticated"',
        ),
        (Attributes(OTHER_SA, "get", False, "/metrics"), False, ""),
        (Attributes(ADMIN, "delete", True, "", "", "v1", "", "nodes", "", "n"), True, ""),
    ],
)  # fmt: skip
def test_authorize(attrs: Attributes, allowed: bool, reason: str) -> None:
    decision = authorize(attrs, POLICY)
    assert (decision.allowed, decision.reason) == (allowed, reason)


@pytest.mark.parametrize(
    ("attrs", "message", "details"),
    [
        (
            _res("patch", "modelops.dev", "driftmonitors", "status", "m"),
            'driftmonitors.modelops.dev "m" is forbidden: User "system:serviceaccount:ns:sa" cannot patch resource '
            '"driftmonitors/status" in API group "modelops.dev" in the namespace "ns"',
            {"name": "m", "group": "modelops.dev", "kind": "driftmonitors"},
        ),
        (
            _res("list", "", "pods"),
            'pods is forbidden: User "system:serviceaccount:ns:sa" cannot list resource "pods" in API group "" in the '
            'namespace "ns"',
            {"kind": "pods"},
        ),
        (
            _res("list", "", "nodes", ns=""),
            'nodes is forbidden: User "system:serviceaccount:ns:sa" cannot list resource "nodes" in API group "" at '
            "the cluster scope",
            {"kind": "nodes"},
        ),
        (
            _res("get", "", "pods", "log", "p"),
            'pods "p" is forbidden: User "system:serviceaccount:ns:sa" cannot get resource "pods/log" in API group "" '
            'in the namespace "ns"',
            {"name": "p", "kind": "pods"},
        ),
        (
            Attributes(SA, "get", False, "/metrics"),
            'forbidden: User "system:serviceaccount:ns:sa" cannot get path "/metrics"',
            {},
        ),
    ],
)
def test_forbidden_status_is_kubes(attrs: Attributes, message: str, details: dict[str, str]) -> None:
    status = forbidden(attrs).status()
    assert status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Forbidden",
        "code": 403,
        "details": details,
    }


def test_forbidden_appends_the_rbac_reason() -> None:
    err = forbidden(_res("list", "", "pods"), 'RBAC: role.rbac.authorization.k8s.io "gone" not found')
    assert err.message.endswith('in the namespace "ns": RBAC: role.rbac.authorization.k8s.io "gone" not found')


def test_stored_cluster_role_replaces_the_built_in_one() -> None:
    narrowed = _role("ClusterRole", "system:discovery", [{"nonResourceURLs": ["/version"], "verbs": ["get"]}])
    policy = Policy.of([narrowed])
    assert authorize(Attributes(SA, "get", False, "/version"), policy).allowed
    assert not authorize(Attributes(SA, "get", False, "/apis"), policy).allowed


# -- tokens -------------------------------------------------------------------------------------


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _store_with(*objs: tuple[str, dict[str, Any]]) -> Store:
    store = Store()
    for plural, body in objs:
        store.create(store.lookup("", "v1", plural), "ns" if plural != "namespaces" else None, body)
    return store


def _sa(name: str = "sa") -> tuple[str, dict[str, Any]]:
    return ("serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})


def _token(auth: Auth, body: dict[str, Any] | None = None, name: str = "sa") -> str:
    return str(auth.token_request("ns", name, body or {})["status"]["token"])


def test_token_carries_the_service_account_until_it_expires() -> None:
    store = _store_with(("namespaces", {"metadata": {"name": "ns"}}), _sa())
    clock = Clock(1_000_000.0)
    auth = Auth(store.objects, clock=clock)
    out = auth.token_request("ns", "sa", {"spec": {"expirationSeconds": 600}})
    assert out["status"]["expirationTimestamp"] == "1970-01-12T13:56:40Z"  # 1_000_600 s = 11 d 13 h 56 min 40 s
    user = auth.verify(out["status"]["token"])
    assert user is not None
    assert user.name == "system:serviceaccount:ns:sa"
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated")
    clock.t += 599
    assert auth.verify(out["status"]["token"]) is not None
    clock.t += 1
    assert auth.verify(out["status"]["token"]) is None


def test_token_is_refused_when_tampered_foreign_or_for_another_audience() -> None:
    store = _store_with(("namespaces", {"metadata": {"name": "ns"}}), _sa())
    auth = Auth(store.objects)
    token = _token(auth)
    header, payload, sig = token.split(".")
    assert auth.verify(f"{header}.{payload}x.{sig}") is None
    assert auth.verify(f"{header}.{payload}.{sig[:-2]}AA") is None
    assert auth.verify("not-a-jwt") is None
    assert Auth(store.objects).verify(token) is None  # another server's key
    vault = _token(auth, {"spec": {"audiences": ["vault"]}})
    assert auth.verify(vault) is None
    assert auth.verify(vault, ("vault",)) is not None


def test_token_dies_with_its_service_account_and_its_bound_pod() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"serviceAccountName": "sa", "containers": [{"name": "c", "image": "i"}]}}  # fmt: skip
    store = _store_with(("namespaces", {"metadata": {"name": "ns"}}), _sa(), ("pods", pod))
    auth = Auth(store.objects)
    plain = _token(auth)
    bound = _token(auth, {"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p"}}})
    user = auth.verify(bound)
    assert user is not None
    assert user.extra["authentication.kubernetes.io/pod-name"] == ("p",)
    store.delete(store.lookup("", "v1", "pods"), "ns", "p", {})
    assert auth.verify(bound) is None
    assert auth.verify(plain) is not None
    # the same name recreated is another ServiceAccount (new uid): the old token is refused
    store.delete(store.lookup("", "v1", "serviceaccounts"), "ns", "sa", {})
    store.create(store.lookup("", "v1", "serviceaccounts"), "ns", _sa()[1])
    assert auth.verify(plain) is None


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (
            {"spec": {"expirationSeconds": 60}},
            422,
            'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 60: may not '
            "specify a duration less than 10 minutes",
        ),
        (
            {"metadata": {"name": "x"}},
            422,
            'TokenRequest.authentication.k8s.io "sa" is invalid: metadata.name: Invalid value: "x": must match the '
            "service account name if specified",
        ),
        (
            {"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "ConfigMap", "name": "c"}}},
            400,
            "cannot bind token to object of type /v1, Kind=ConfigMap",
        ),
        ({"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p"}}}, 404, 'pods "p" not found'),
        ({"kind": "Pod"}, 400, "the kind in the data (Pod) does not match the expected kind (TokenRequest)"),
    ],
)
def test_token_request_rejections(body: dict[str, Any], code: int, message: str) -> None:
    store = _store_with(("namespaces", {"metadata": {"name": "ns"}}), _sa())
    with pytest.raises(ApiError) as err:
        Auth(store.objects).token_request("ns", "sa", body)
    assert (err.value.code, err.value.message) == (code, message)


def test_token_request_for_a_missing_service_account_is_404() -> None:
    store = _store_with(("namespaces", {"metadata": {"name": "ns"}}))
    with pytest.raises(ApiError) as err:
        Auth(store.objects).token_request("ns", "ghost", {})
    assert (err.value.code, err.value.message) == (404, 'serviceaccounts "ghost" not found')


def test_malformed_stored_rbac_objects_grant_nothing_and_do_not_crash() -> None:
    """Built-ins are stored without schema validation: odd shapes must deny, not 500."""
    policy = Policy.of(
        [
            _role("ClusterRole", "odd", [{"verbs": "get", "apiGroups": None, "resources": {"pods": 1}}],
                  aggregationRule={"clusterRoleSelectors": [{"matchLabels": ["x"]}, "nope", {"matchExpressions": [1]}]}),
            {**_binding("ClusterRoleBinding", "odd", "ClusterRole", "odd", []), "subjects": "system:authenticated"},
            {**_binding("RoleBinding", "odd", "ClusterRole", "odd", [SA_SUBJECT], ns="ns"), "roleRef": "odd"},
            _binding("RoleBinding", "odd2", "ClusterRole", "odd", [SA_SUBJECT, 7], ns="ns"),  # type: ignore[list-item]
        ]
    )  # fmt: skip
    decision = authorize(_res("get", "", "pods", "", "p"), policy)
    assert decision.allowed is False
    assert decision.reason == 'RBAC: unsupported role reference kind: ""'
