"""Which artifact URIs the operator may fetch: a pure decision on a URI and its host's addresses.

The operator reads ``spec.artifact.uri`` from inside the cluster, so a ModelVersion is a
server-side request forgery path: anyone who may create one could make the operator fetch cloud
metadata, a node's link-local services or the operator pod's own files. The policy is the
operator's setting (``modelops run --artifact-*``, chart values ``artifacts.*``):

- ``schemes``: the allowed URI schemes. ``file`` (and a bare path, which is read as a file) is
  off by default in a cluster; the sandbox turns it on.
- ``hosts``: if not empty, the URI's host must match an entry: an exact name, ``*.suffix`` (any
  subdomain of suffix, not suffix itself), or an IP address / CIDR for literal-IP hosts. For
  bucket schemes (``s3://bucket/key``) the host is the bucket. Empty: any host.
- link-local and metadata addresses (``BLOCKED_NETWORKS``) are refused, whatever the host
  allow-list says, unless a network in ``allow_networks`` contains them. Every address a host
  name resolves to is checked, and the connection is made only to checked addresses.
- ``max_bytes`` bounds a download; ``max_redirects`` bounds a redirect chain, each hop of which
  is checked like the original URI.

No I/O here: the fetcher (``modelops.artifacts``) resolves names and calls these functions.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_SCHEMES = ("http", "https", "s3", "gs", "gcs", "az", "abfs", "abfss")
"""Allowed by default: remote stores. Not ``file``: in a cluster it reads the operator's own pod."""

BLOCKED_NETWORKS = ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128")
"""IPv4 and IPv6 link-local (cloud metadata at 169.254.169.254 included) and AWS's IPv6 metadata."""

NETWORK_SCHEMES = frozenset({"http", "https"})
"""Schemes whose host is a network peer the operator connects to itself: their addresses are checked."""

DEFAULT_MAX_BYTES = 10 * 1024**3
DEFAULT_MAX_REDIRECTS = 5

RefusalReason = Literal[
    "InvalidURI", "SchemeNotAllowed", "HostNotAllowed", "AddressNotAllowed", "TooLarge", "TooManyRedirects"
]


@dataclass(frozen=True)
class FetchSettings:
    """Timeouts and concurrency of the operator's artifact reads (``modelops run --artifact-*``).

    Here, not in ``artifact_verifier`` (aiohttp), so ``modelops run --help`` shows the defaults
    without importing aiohttp."""

    connect_timeout: float = 10.0
    """Seconds to establish a connection (http) or to open the object (file, fsspec)."""
    read_timeout: float = 30.0
    """Seconds without a single byte before the artifact counts as unreachable."""
    max_concurrent: int = 32
    """Reads in flight at once, all namespaces together."""
    max_per_namespace: int = 16
    """Reads in flight at once for one namespace: the rest of the slots stay for the others."""
    blocking_workers: int = 4
    """Threads for file:// and fsspec reads (the verifier's own pool, never the handlers')."""


@dataclass(frozen=True)
class Refusal:
    """Why a fetch is not allowed. The message never contains anything the remote side sent."""

    reason: RefusalReason
    message: str


def _network(text: str) -> IPNetwork:
    return ipaddress.ip_network(text.strip(), strict=False)


@dataclass(frozen=True)
class ArtifactPolicy:
    schemes: frozenset[str] = frozenset(DEFAULT_SCHEMES)
    hosts: tuple[str, ...] = ()
    allow_networks: tuple[IPNetwork, ...] = ()
    max_bytes: int | None = DEFAULT_MAX_BYTES
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    blocked_networks: tuple[IPNetwork, ...] = field(default=tuple(_network(n) for n in BLOCKED_NETWORKS))

    @classmethod
    def build(
        cls,
        schemes: Iterable[str] = DEFAULT_SCHEMES,
        hosts: Iterable[str] = (),
        allow_networks: Iterable[str] = (),
        allow_file: bool = False,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
    ) -> ArtifactPolicy:
        """A policy from setting values; ValueError names the bad one."""
        scheme_set = {s.strip().lower().removesuffix("://") for s in schemes if s.strip()}
        for s in scheme_set:
            if not s.replace("+", "").replace("-", "").replace(".", "").isalnum():
                raise ValueError(f"not a URI scheme: {s!r}")
        if allow_file:
            scheme_set.add("file")
        host_list = tuple(h.strip().lower().rstrip(".") for h in hosts if h.strip())
        for h in host_list:
            if "/" in h and _as_network(h) is None:
                raise ValueError(f"not a host, *.domain or CIDR: {h!r}")
        nets = []
        for n in allow_networks:
            if n.strip():
                try:
                    nets.append(_network(n))
                except ValueError as exc:
                    raise ValueError(f"not a CIDR network: {n!r}") from exc
        if max_bytes is not None and max_bytes <= 0:
            raise ValueError(f"max bytes must be positive, got {max_bytes}")
        if max_redirects < 0:
            raise ValueError(f"max redirects must be >= 0, got {max_redirects}")
        return cls(frozenset(scheme_set), host_list, tuple(nets), max_bytes, max_redirects)

    def describe(self) -> str:
        """One line for the operator's start-up log."""
        hosts = ",".join(self.hosts) or "any"
        allowed = ",".join(str(n) for n in self.allow_networks) or "none"
        return (
            f"schemes={','.join(sorted(self.schemes))} hosts={hosts} "
            f"blocked={','.join(str(n) for n in self.blocked_networks)} (allowed: {allowed}) "
            f"maxBytes={self.max_bytes or 'unlimited'} maxRedirects={self.max_redirects}"
        )


def _as_network(text: str) -> IPNetwork | None:
    try:
        return _network(text)
    except ValueError:
        return None


def _as_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def scheme_of(uri: str) -> str:
    """The URI's scheme, lower case; a bare path is a ``file``."""
    scheme = urllib.parse.urlsplit(uri).scheme.lower()
    return scheme or "file"


def where(uri: str) -> str:
    """``scheme://host[:port]`` of a URI: enough to name it without its path or query (signatures)."""
    parts = urllib.parse.urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}" if parts.netloc else f"{scheme_of(uri)}:"


def host_matches(host: str, pattern: str) -> bool:
    """``pattern`` is an exact host, ``*.suffix`` (strict subdomains), or an address/CIDR for IP hosts."""
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and host != pattern[2:]
    net = _as_network(pattern)
    if net is not None:
        addr = _as_address(host)
        return addr is not None and addr.version == net.version and addr in net
    return host == pattern


def check_address(address: str, policy: ArtifactPolicy) -> Refusal | None:
    """Refuse a link-local/metadata address unless a network of ``allow_networks`` contains it."""
    addr = _as_address(address)
    if addr is None:
        return Refusal("AddressNotAllowed", f"{address!r} is not an IP address")
    candidates: list[IPAddress] = [addr]
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        candidates.append(addr.ipv4_mapped)
    for a in candidates:
        blocked = next((n for n in policy.blocked_networks if a.version == n.version and a in n), None)
        if blocked is None:
            continue
        if any(a.version == n.version and a in n for n in policy.allow_networks):
            continue
        return Refusal(
            "AddressNotAllowed",
            f"address {a} is in {blocked} (link-local or cloud metadata); "
            "allow it with the operator's --artifact-allow-network",
        )
    return None


def check_uri(uri: str, policy: ArtifactPolicy) -> Refusal | None:
    """Scheme, host allow-list and (for a literal IP host) the address: everything known before DNS."""
    try:
        parts = urllib.parse.urlsplit(uri)
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError as exc:
        return Refusal("InvalidURI", f"cannot parse the URI: {exc}")
    scheme = scheme_of(uri)
    if scheme not in policy.schemes:
        hint = " (file:// is off in a cluster: --allow-file-artifacts)" if scheme == "file" else ""
        return Refusal(
            "SchemeNotAllowed",
            f"scheme {scheme!r} is not allowed by the operator's artifact policy "
            f"(allowed: {', '.join(sorted(policy.schemes)) or 'none'}){hint}",
        )
    if scheme == "file":
        return None
    host = (parts.hostname or "").lower().rstrip(".")
    if scheme in NETWORK_SCHEMES and not host:
        return Refusal("InvalidURI", f"{scheme}:// URI without a host")
    if policy.hosts and not any(host_matches(host, p) for p in policy.hosts):
        return Refusal(
            "HostNotAllowed",
            f"host {host!r} is not in the operator's artifact host allow-list ({', '.join(policy.hosts)})",
        )
    if scheme in NETWORK_SCHEMES and _as_address(host) is not None:
        return check_address(host, policy)
    return None


def check_addresses(host: str, addresses: Sequence[str], policy: ArtifactPolicy) -> Refusal | None:
    """Every address ``host`` resolved to must pass: one bad answer refuses the host."""
    if not addresses:
        return Refusal("AddressNotAllowed", f"host {host!r} resolved to no address")
    for a in addresses:
        refusal = check_address(a, policy)
        if refusal is not None:
            return Refusal(refusal.reason, f"host {host!r} resolves to {refusal.message}")
    return None


def check_redirect(uri: str, location: str, hops: int, policy: ArtifactPolicy) -> tuple[str, Refusal | None]:
    """The absolute target of redirect number ``hops`` from ``uri``, and whether it may be followed."""
    target = urllib.parse.urljoin(uri, location)
    if hops > policy.max_redirects:
        return target, Refusal("TooManyRedirects", f"more than {policy.max_redirects} redirects")
    refusal = check_uri(target, policy)
    if refusal is not None:
        return target, Refusal(refusal.reason, f"redirect to {where(target)} refused: {refusal.message}")
    return target, None


def check_size(size: int, policy: ArtifactPolicy, declared: bool = False) -> Refusal | None:
    """Refuse more than ``max_bytes``: as announced (Content-Length), or as counted while reading."""
    if policy.max_bytes is None or size <= policy.max_bytes:
        return None
    what = f"announces {size} bytes" if declared else f"is larger than {policy.max_bytes} bytes"
    return Refusal(
        "TooLarge",
        f"artifact {what}; the operator's limit is {policy.max_bytes} bytes (--artifact-max-bytes)",
    )
