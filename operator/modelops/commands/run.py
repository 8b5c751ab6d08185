"""`modelops run`: start the operator (namespaced or cluster-wide)."""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from modelops.commands.artifact_options import add_artifact_arguments, artifact_config
from modelops.errors import CLIError


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("run", help="run the operator")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch the whole cluster")
    p.add_argument("--kubeconfig", default=None, help="kubeconfig path (default: $KUBECONFIG, then in-cluster)")
    p.add_argument("--health-port", type=int, default=8080, help="liveness endpoint /healthz (default 8080)")
    p.add_argument("--metrics-port", type=int, default=9090, help="Prometheus /metrics (default 9090)")
    p.add_argument("--host", default="0.0.0.0", help="address for the health and metrics endpoints")
    p.add_argument(
        "--prometheus-url",
        default=os.environ.get("MODELOPS_PROMETHEUS_URL") or None,
        help="Prometheus for canary analysis when a ModelDeployment sets no spec.prometheus.address "
        "(default: $MODELOPS_PROMETHEUS_URL)",
    )
    add_artifact_arguments(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from modelops.k8s.client import KubeConnectionError, load_api_client
    from modelops.runner import OperatorConfig, run_operator

    if not args.namespace and not args.all_namespaces:
        raise CLIError("choose the scope: --namespace NS (repeatable) or --all-namespaces")
    if args.prometheus_url and not args.prometheus_url.startswith(("http://", "https://")):
        raise CLIError(f"--prometheus-url must be an http(s) URL, got {args.prometheus_url!r}")
    artifact_policy, artifact_fetch = artifact_config(args)
    try:
        load_api_client(args.kubeconfig)  # fail fast, in one line, on a broken kubeconfig
    except KubeConnectionError as exc:
        raise CLIError(str(exc)) from exc
    cfg = OperatorConfig(
        namespaces=args.namespace,
        clusterwide=args.all_namespaces,
        kubeconfig=args.kubeconfig,
        health_port=args.health_port,
        metrics_port=args.metrics_port,
        host=args.host,
        prometheus_url=args.prometheus_url,
        artifact_policy=artifact_policy,
        artifact_fetch=artifact_fetch,
    )
    asyncio.run(run_operator(cfg))
    return 0
