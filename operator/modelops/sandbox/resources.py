"""What the sandbox serves: built-in resource kinds and the ones CRDs add.

Built-ins are stored as given (no schema), but keep the metadata semantics the operator relies on:
which ones are namespaced, which have a `/status` subresource, which bump `metadata.generation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ALL_VERBS: tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUB_VERBS: tuple[str, ...] = ("get", "patch", "update")
EXTRA_SUBRESOURCES: dict[tuple[str, str], tuple[dict[str, Any], ...]] = {
    ("", "serviceaccounts"): (
        {"name": "serviceaccounts/token", "singularName": "", "namespaced": True, "group": "authentication.k8s.io",
         "version": "v1", "kind": "TokenRequest", "verbs": ["create"]},
    ),
}  # fmt: skip
"""Subresources other than status, by (group, plural), as discovery lists them."""


@dataclass(frozen=True)
class Resource:
    """One served group/version/plural; several versions of one CRD share storage via `key`."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status: bool = False
    generation: bool = False
    schema: dict[str, Any] | None = None
    printer_columns: tuple[dict[str, Any], ...] = ()
    crd_name: str | None = None
    list_kind: str = ""
    verbs: tuple[str, ...] = ALL_VERBS

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        """Storage identity: all versions of a group/plural share objects (no conversion needed)."""
        return (self.group, self.plural)

    @property
    def is_custom(self) -> bool:
        return self.crd_name is not None

    @property
    def qualified(self) -> str:
        """`plural.group` as kube-apiserver names it in messages (`modelversions.modelops.dev`)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        """`Kind.group` as kube-apiserver names it in Invalid messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def discovery(self) -> list[dict[str, Any]]:
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        out = [entry]
        if self.status:
            out.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": list(SUB_VERBS),
                }
            )
        out.extend(dict(e) for e in EXTRA_SUBRESOURCES.get(self.key, ()))
        return out


def _r(
    gv: str,
    plural: str,
    kind: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    status: bool = False,
    generation: bool = False,
    categories: tuple[str, ...] = (),
    verbs: tuple[str, ...] = ALL_VERBS,
) -> Resource:
    group, _, version = gv.rpartition("/")
    return Resource(
        group=group,
        version=version,
        plural=plural,
        kind=kind,
        namespaced=namespaced,
        singular=kind.lower(),
        short_names=short,
        categories=categories,
        status=status,
        generation=generation,
        list_kind=f"{kind}List",
        verbs=verbs,
    )


ALL = ("all",)

BUILTINS: tuple[Resource, ...] = (
    _r("v1", "namespaces", "Namespace", namespaced=False, short=("ns",), status=True,
       verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    _r("v1", "events", "Event", short=("ev",)),
    _r("v1", "services", "Service", short=("svc",), status=True, categories=ALL),
    _r("v1", "serviceaccounts", "ServiceAccount", short=("sa",)),
    _r("v1", "configmaps", "ConfigMap", short=("cm",)),
    _r("v1", "secrets", "Secret"),
    _r("v1", "pods", "Pod", short=("po",), status=True, categories=ALL),
    _r("v1", "endpoints", "Endpoints", short=("ep",)),
    _r("v1", "persistentvolumeclaims", "PersistentVolumeClaim", short=("pvc",), status=True),
    _r("v1", "nodes", "Node", namespaced=False, short=("no",), status=True),
    _r("apps/v1", "deployments", "Deployment", short=("deploy",), status=True, generation=True, categories=ALL),
    _r("apps/v1", "replicasets", "ReplicaSet", short=("rs",), status=True, generation=True, categories=ALL),
    _r("apps/v1", "statefulsets", "StatefulSet", short=("sts",), status=True, generation=True, categories=ALL),
    _r("apps/v1", "daemonsets", "DaemonSet", short=("ds",), status=True, generation=True, categories=ALL),
    _r("batch/v1", "jobs", "Job", status=True, generation=True, categories=ALL),
    _r("batch/v1", "cronjobs", "CronJob", short=("cj",), status=True, generation=True, categories=ALL),
    _r("rbac.authorization.k8s.io/v1", "roles", "Role"),
    _r("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding"),
    _r("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", namespaced=False),
    _r("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    _r("authorization.k8s.io/v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", namespaced=False,
       verbs=("create",)),
    _r("authorization.k8s.io/v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview", namespaced=False,
       verbs=("create",)),
    _r("authorization.k8s.io/v1", "subjectaccessreviews", "SubjectAccessReview", namespaced=False, verbs=("create",)),
    _r("authorization.k8s.io/v1", "localsubjectaccessreviews", "LocalSubjectAccessReview", verbs=("create",)),
    _r("authentication.k8s.io/v1", "selfsubjectreviews", "SelfSubjectReview", namespaced=False, verbs=("create",)),
    _r("authentication.k8s.io/v1", "tokenreviews", "TokenReview", namespaced=False, verbs=("create",)),
    _r("events.k8s.io/v1", "events", "Event", short=("ev",)),
    _r("coordination.k8s.io/v1", "leases", "Lease"),
    _r("networking.k8s.io/v1", "ingresses", "Ingress", short=("ing",), status=True, generation=True),
    _r("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy", short=("netpol",), generation=True),
    _r("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget", short=("pdb",), status=True, generation=True),
    _r("autoscaling/v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", short=("hpa",), status=True,
       categories=ALL),
    _r("discovery.k8s.io/v1", "endpointslices", "EndpointSlice"),
    _r("apiextensions.k8s.io/v1", "customresourcedefinitions", "CustomResourceDefinition", namespaced=False,
       short=("crd", "crds"), status=True, generation=True),
)  # fmt: skip

CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
NAMESPACE_KEY = ("", "namespaces")


def resources_from_crd(crd: dict[str, Any]) -> list[Resource]:
    """Every served version of a CRD, as kube-apiserver would serve it once Established."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for ver in spec.get("versions") or []:
        if not ver.get("served", True):
            continue
        schema = (ver.get("schema") or {}).get("openAPIV3Schema")
        out.append(
            Resource(
                group=spec["group"],
                version=ver["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=names.get("singular") or names["kind"].lower(),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status="status" in (ver.get("subresources") or {}),
                generation=True,
                schema=schema,
                printer_columns=tuple(ver.get("additionalPrinterColumns") or ()),
                crd_name=crd["metadata"]["name"],
                list_kind=names.get("listKind") or f"{names['kind']}List",
            )
        )
    return out
