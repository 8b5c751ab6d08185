"""`modelops run`'s artifact options: the SSRF policy and the limits of the registry's digest check.

Each policy option also reads an environment variable (the flag wins), so a Deployment can set
either. The chart passes flags from its ``artifacts.*`` values.
"""

from __future__ import annotations

import argparse
import os
import re

from modelops.core.artifact_policy import DEFAULT_MAX_BYTES, DEFAULT_SCHEMES, ArtifactPolicy, FetchSettings
from modelops.errors import CLIError

_UNITS = {
    "": 1,
    "k": 1000,
    "m": 1000**2,
    "g": 1000**3,
    "t": 1000**4,
    "ki": 1024,
    "mi": 1024**2,
    "gi": 1024**3,
    "ti": 1024**4,
}


def parse_size(text: str) -> int:
    """``10Gi``, ``500M``, ``1048576``: a byte count (Kubernetes quantity suffixes)."""
    m = re.fullmatch(r"\s*(\d+)\s*([kmgt]i?)?\s*[bB]?\s*", text, flags=re.IGNORECASE)
    if m is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 10Gi, 500Mi, 1048576)")
    return int(m.group(1)) * _UNITS[(m.group(2) or "").lower()]


def _csv(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def add_artifact_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "artifact reads",
        "The operator reads spec.artifact.uri to verify its digest: from inside the cluster, so these "
        "options bound what it may fetch (link-local and cloud metadata addresses are always refused "
        "unless --artifact-allow-network names them).",
    )
    g.add_argument(
        "--artifact-schemes",
        type=_csv,
        default=_csv(os.environ.get("MODELOPS_ARTIFACT_SCHEMES") or ",".join(DEFAULT_SCHEMES)),
        metavar="LIST",
        help="allowed URI schemes, comma-separated (default: $MODELOPS_ARTIFACT_SCHEMES or "
        f"{','.join(DEFAULT_SCHEMES)}; file is added by --allow-file-artifacts)",
    )
    g.add_argument(
        "--allow-file-artifacts",
        action="store_true",
        default=_env_true("MODELOPS_ALLOW_FILE_ARTIFACTS"),
        help="also read file:// URIs and bare paths: the operator's own filesystem, so off in a cluster "
        "(default: $MODELOPS_ALLOW_FILE_ARTIFACTS; the sandbox turns it on)",
    )
    g.add_argument(
        "--artifact-hosts",
        type=_csv,
        default=_csv(os.environ.get("MODELOPS_ARTIFACT_HOSTS") or ""),
        metavar="LIST",
        help="allowed hosts, comma-separated: name, *.domain, IP or CIDR; for s3:// and the like the host "
        "is the bucket (default: $MODELOPS_ARTIFACT_HOSTS; empty: any host)",
    )
    g.add_argument(
        "--artifact-allow-network",
        action="append",
        default=_csv(os.environ.get("MODELOPS_ARTIFACT_ALLOW_NETWORKS") or ""),
        metavar="CIDR",
        help="exempt this network from the link-local/metadata refusal (repeatable; "
        "default: $MODELOPS_ARTIFACT_ALLOW_NETWORKS, comma-separated)",
    )
    g.add_argument(
        "--artifact-max-bytes",
        type=parse_size,
        default=parse_size(os.environ.get("MODELOPS_ARTIFACT_MAX_BYTES") or str(DEFAULT_MAX_BYTES)),
        metavar="SIZE",
        help="refuse larger artifacts, e.g. 10Gi (default: $MODELOPS_ARTIFACT_MAX_BYTES or 10Gi)",
    )
    d = FetchSettings()
    g.add_argument(
        "--artifact-connect-timeout",
        type=float,
        default=d.connect_timeout,
        metavar="S",
        help=f"seconds to connect to (or open) an artifact (default {d.connect_timeout:g})",
    )
    g.add_argument(
        "--artifact-read-timeout",
        type=float,
        default=d.read_timeout,
        metavar="S",
        help=f"seconds without a byte before an artifact counts as unreachable (default {d.read_timeout:g})",
    )
    g.add_argument(
        "--artifact-max-concurrent",
        type=int,
        default=d.max_concurrent,
        metavar="N",
        help=f"artifact reads in flight at once (default {d.max_concurrent})",
    )
    g.add_argument(
        "--artifact-max-per-namespace",
        type=int,
        default=d.max_per_namespace,
        metavar="N",
        help=f"artifact reads in flight at once for one namespace (default {d.max_per_namespace})",
    )


def artifact_config(args: argparse.Namespace) -> tuple[ArtifactPolicy, FetchSettings]:
    """The policy and fetch settings from parsed arguments; CLIError names a bad value."""
    try:
        policy = ArtifactPolicy.build(
            schemes=args.artifact_schemes,
            hosts=args.artifact_hosts,
            allow_networks=args.artifact_allow_network,
            allow_file=args.allow_file_artifacts,
            max_bytes=args.artifact_max_bytes,
        )
    except ValueError as exc:
        raise CLIError(f"artifact policy: {exc}") from exc
    for flag, value in (
        ("--artifact-connect-timeout", args.artifact_connect_timeout),
        ("--artifact-read-timeout", args.artifact_read_timeout),
        ("--artifact-max-concurrent", args.artifact_max_concurrent),
        ("--artifact-max-per-namespace", args.artifact_max_per_namespace),
    ):
        if value <= 0:
            raise CLIError(f"{flag} must be positive, got {value}")
    settings = FetchSettings(
        connect_timeout=args.artifact_connect_timeout,
        read_timeout=args.artifact_read_timeout,
        max_concurrent=args.artifact_max_concurrent,
        max_per_namespace=args.artifact_max_per_namespace,
    )
    return policy, settings
