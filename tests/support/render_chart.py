"""Render charts/modelops into plain manifests for `kubectl apply` users, with the real Helm engine.

    python -m tests.support.render_chart > examples/install/modelops-operator.yaml

The output is the chart's default rendering (release `modelops` in namespace `modelops`) plus the
Namespace, in Helm's install order, without the CRDs (`crds.enabled=false`: they are applied from
crds/, so that `kubectl delete -f` on this file never deletes them) and without the `helm test`
hooks. It does not import `modelops`: only helm-python-sdk and PyYAML.
tests/chart checks that the committed file is what this prints.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "modelops"
RELEASE = "modelops"
NAMESPACE = "modelops"
REGEN_COMMAND = "python -m tests.support.render_chart > examples/install/modelops-operator.yaml"

# Helm's install order (pkg/release/util/kind_sorter.go), the kinds this chart can render.
INSTALL_ORDER = (
    "Namespace",
    "NetworkPolicy",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "Deployment",
    "Job",
    "ServiceMonitor",
    "PodMonitor",
    "PrometheusRule",
)
# The values of examples/install/modelops-operator.yaml: the CRDs come from crds/ instead.
INSTALL_VALUES: dict[str, Any] = {"crds": {"enabled": False}}

_DOC_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)
# libyaml's loader when PyYAML has it: the rendered CRDs are large, and the pure-Python loader
# takes about a second per rendering for them.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str) -> Any:
    """One YAML document, as yaml.safe_load reads it."""
    return yaml.load(text, Loader=_LOADER)


def split_documents(text: str) -> list[str]:
    """The non-empty YAML documents of a rendered template, comments kept."""
    docs = []
    for chunk in _DOC_SEPARATOR.split(text):
        if load(chunk) is not None:
            docs.append(chunk.strip("\n"))
    return docs


def render_documents(
    values: dict[str, Any] | None = None,
    *,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    chart_dir: Path = CHART,
    hooks: bool = True,
) -> list[str]:
    """Every manifest the chart renders (NOTES.txt excluded), in Helm's install order.

    ``hooks=False`` leaves out hook resources (annotation ``helm.sh/hook``: the `helm test` Job
    and its RBAC), which `helm install` does not create.
    """
    with helm.Chart.load(chart_dir) as chart:
        rendered = chart.render(values=values, name=release, namespace=namespace, is_install=True)
    docs = [doc for path, text in rendered.items() if not path.endswith("NOTES.txt") for doc in split_documents(text)]
    if not hooks:
        docs = [doc for doc in docs if "helm.sh/hook" not in (load(doc)["metadata"].get("annotations") or {})]

    def order(doc: str) -> tuple[int, str, str, str]:
        obj = load(doc)
        kind = obj["kind"]
        rank = INSTALL_ORDER.index(kind) if kind in INSTALL_ORDER else len(INSTALL_ORDER)
        meta = obj["metadata"]
        return rank, kind, meta.get("namespace", ""), meta["name"]

    return sorted(docs, key=order)


def namespace_document(namespace: str) -> str:
    """The operator's namespace, labelled for the restricted Pod Security Standard."""
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": namespace,
                "labels": {
                    "app.kubernetes.io/part-of": "modelops",
                    "pod-security.kubernetes.io/enforce": "restricted",
                },
            },
        },
        sort_keys=False,
    ).strip("\n")


def install_manifest(*, release: str = RELEASE, namespace: str = NAMESPACE) -> str:
    """The text of examples/install/modelops-operator.yaml."""
    header = (
        "# GENERATED from charts/modelops (default values) - do not edit.\n"
        f"# Regenerate: {REGEN_COMMAND}\n"
        "# Install:    kubectl apply --server-side -f crds/ && kubectl apply -f examples/install/modelops-operator.yaml\n"
    )
    docs = [
        namespace_document(namespace),
        *render_documents(INSTALL_VALUES, release=release, namespace=namespace, hooks=False),
    ]
    return header + "".join(f"---\n{doc}\n" for doc in docs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--release", default=RELEASE)
    parser.add_argument("--namespace", default=NAMESPACE)
    args = parser.parse_args(argv)
    sys.stdout.write(install_manifest(release=args.release, namespace=args.namespace))
    return 0


if __name__ == "__main__":
    sys.exit(main())
