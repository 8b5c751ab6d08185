"""`modelops run`: start the operator (namespaced or cluster-wide).

Before kopf starts, everything a user can get wrong fails fast, in one line, exit 1: a broken
kubeconfig, an API server that does not answer (GET /version, a few seconds), credentials it
rejects, a health or metrics port already in use.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
from typing import Any

from modelops.commands.args import port
from modelops.commands.artifact_options import add_artifact_arguments, artifact_config
from modelops.core.leader_election import DEFAULT_LEASE_NAME, LeaseTiming
from modelops.errors import CLIError

HEALTH_PORT = 8081
"""Not 8080: that is `modelops serve`'s port, and the two often run on one machine."""
METRICS_PORT = 8083
"""Not 9090: that is Prometheus' own port."""
API_CHECK_TIMEOUT = 5.0
API_TIMEOUT = 30.0


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("run", help="run the operator")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch the whole cluster")
    p.add_argument("--kubeconfig", default=None, help="kubeconfig path (default: $KUBECONFIG, then in-cluster)")
    p.add_argument(
        "--health-port", type=port(), default=HEALTH_PORT, help=f"liveness endpoint /healthz (default {HEALTH_PORT})"
    )
    p.add_argument(
        "--metrics-port", type=port(), default=METRICS_PORT, help=f"Prometheus /metrics (default {METRICS_PORT})"
    )
    p.add_argument("--host", default="0.0.0.0", help="address for the health and metrics endpoints")
    p.add_argument(
        "--prometheus-url",
        default=os.environ.get("MODELOPS_PROMETHEUS_URL") or None,
        help="Prometheus for canary analysis when a ModelDeployment sets no spec.prometheus.address "
        "(default: $MODELOPS_PROMETHEUS_URL)",
    )
    p.add_argument(
        "--api-timeout",
        metavar="SECONDS",
        type=_seconds,
        default=API_TIMEOUT,
        help=f"seconds each request to the Kubernetes API may wait for an answer, then it fails and is retried "
        f"(watches excepted; default {API_TIMEOUT:g})",
    )
    add_artifact_arguments(p)
    add_leader_election_arguments(p)
    p.set_defaults(func=_run)


SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def add_leader_election_arguments(p: argparse.ArgumentParser) -> None:
    d = LeaseTiming()
    g = p.add_argument_group(
        "leader election", "run several replicas, one active: the holder of a coordination.k8s.io/v1 Lease"
    )
    g.add_argument(
        "--leader-elect",
        action="store_true",
        help="run the handlers only while holding the Lease; on losing it, exit (default: off, always act)",
    )
    g.add_argument(
        "--leader-elect-lease-name", metavar="NAME", default=DEFAULT_LEASE_NAME, help=f"(default {DEFAULT_LEASE_NAME})"
    )
    g.add_argument(
        "--leader-elect-lease-namespace",
        metavar="NS",
        default=None,
        help="(default: $POD_NAMESPACE, else the in-cluster ServiceAccount's namespace)",
    )
    g.add_argument(
        "--leader-elect-identity",
        metavar="ID",
        default=None,
        help="(default: $POD_NAME or the host name, and a random suffix)",
    )
    g.add_argument(
        "--leader-elect-lease-duration", metavar="SECONDS", type=_seconds, default=d.lease_duration,
        help=f"seconds a standby waits, after the Lease last changed, before taking it (default {d.lease_duration:g})",
    )  # fmt: skip
    g.add_argument(
        "--leader-elect-renew-deadline", metavar="SECONDS", type=_seconds, default=d.renew_deadline,
        help=f"seconds the leader keeps acting without a renewal before it exits (default {d.renew_deadline:g})",
    )  # fmt: skip
    g.add_argument(
        "--leader-elect-retry-period", metavar="SECONDS", type=_seconds, default=d.retry_period,
        help=f"seconds between tries to take or renew the Lease (default {d.retry_period:g})",
    )  # fmt: skip


def leader_election_config(args: argparse.Namespace) -> Any:
    """The LeaderElectionConfig of the flags (None without --leader-elect); CLIError on bad numbers."""
    if not args.leader_elect:
        return None
    timing = LeaseTiming(
        args.leader_elect_lease_duration, args.leader_elect_renew_deadline, args.leader_elect_retry_period
    )
    problems = timing.problems()
    if problems:
        raise CLIError(f"leader election: {'; '.join(problems)}")
    namespace = args.leader_elect_lease_namespace or os.environ.get("POD_NAMESPACE") or _sa_namespace()
    if not namespace:
        raise CLIError(
            "--leader-elect needs the Lease's namespace: --leader-elect-lease-namespace NS (or $POD_NAMESPACE)"
        )
    from modelops.leader import LeaderElectionConfig, default_identity

    identity = args.leader_elect_identity or default_identity()
    return LeaderElectionConfig(namespace, args.leader_elect_lease_name, identity, timing)


def _sa_namespace() -> str | None:
    try:
        with open(SA_NAMESPACE_FILE) as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def _run(args: argparse.Namespace) -> int:
    from modelops.k8s.client import KubeConnectionError, load_api_client

    if not args.namespace and not args.all_namespaces:
        raise CLIError("choose the scope: --namespace NS (repeatable) or --all-namespaces")
    if args.prometheus_url and not args.prometheus_url.startswith(("http://", "https://")):
        raise CLIError(f"--prometheus-url must be an http(s) URL, got {args.prometheus_url!r}")
    artifact_policy, artifact_fetch = artifact_config(args)
    election = leader_election_config(args)
    if args.health_port == args.metrics_port:
        raise CLIError(f"--health-port and --metrics-port must differ, both are {args.health_port}")
    try:
        api = load_api_client(args.kubeconfig)  # fail fast, in one line, on a broken kubeconfig
        check_api_server(api, API_CHECK_TIMEOUT)
    except KubeConnectionError as exc:
        raise CLIError(str(exc)) from exc
    check_ports(args.host, [("--health-port", args.health_port), ("--metrics-port", args.metrics_port)])
    from modelops.runner import OperatorConfig, run_operator  # kopf and the handlers: seconds, so after the checks

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
        api_timeout=args.api_timeout,
        leader_election=election,
    )
    _tune_garbage_collector()
    asyncio.run(run_operator(cfg))
    return 0


def _tune_garbage_collector() -> None:
    """Fewer, cheaper collections for a long-lived process holding thousands of objects.

    With CPython's defaults (700, 10, 10) the operator ran 26-28 full collections in the
    benchmark's run at 1,000 ModelVersions and 100 ModelDeployments, each stopping every thread
    for 250-530 ms: they were the p99 of reconcile latency. Modules and startup objects are
    frozen out of every collection, and the younger generations are collected less often
    (as gunicorn and Instagram's Django tune it); benchmarks/operator/README.md has the numbers."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)


def check_api_server(api: Any, timeout: float) -> None:
    """GET /version once, without retries: an API server that does not answer is one line, not kopf's retry storm."""
    import copy
    import warnings

    import urllib3
    from kubernetes.client import ApiClient, VersionApi
    from kubernetes.client.exceptions import ApiException

    from modelops.k8s.client import KubeConnectionError, one_line

    host = api.configuration.host
    config = copy.deepcopy(api.configuration)
    config.retries = urllib3.Retry(total=0, connect=0, read=0, redirect=0)
    probe = ApiClient(config)
    try:
        with warnings.catch_warnings():  # insecure-skip-tls-verify is the kubeconfig's choice, not news
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            VersionApi(probe).get_code(_request_timeout=timeout)
    except ApiException as exc:
        if exc.status == 401:
            raise KubeConnectionError(
                f"the Kubernetes API at {host} rejected the credentials (GET /version: 401 Unauthorized)"
            ) from exc
        if exc.status == 404:
            raise KubeConnectionError(f"{host} is not a Kubernetes API server (GET /version: 404 Not Found)") from exc
        # Any other answer (403 where /version is not public, ...) proves the server is there.
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        reason = one_line(getattr(exc, "reason", None) or exc)
        if reason.startswith(("HTTPConnection(", "HTTPSConnection(")) and "): " in reason:
            reason = reason.split("): ", 1)[1]  # the host is said already
        raise KubeConnectionError(
            f"cannot reach the Kubernetes API at {host} (GET /version, {timeout:g}s timeout): {reason}"
        ) from exc
    finally:
        probe.close()


def check_ports(host: str, ports: list[tuple[str, int]]) -> None:
    """Bind each port once and let go, so a busy one is a one-line error before kopf starts."""
    import errno
    import socket

    from modelops.hostports import host_port

    for flag, number in ports:
        local = host_port(number)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, local))
            except OSError as exc:
                why = "already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
                raise CLIError(f"{flag} {number}: cannot listen on {host}:{local}: {why}") from exc
