"""The artifact SSRF policy as a table: URI (and resolved addresses) in, refusal reason out."""

from __future__ import annotations

import pytest

from modelops.core.artifact_policy import (
    ArtifactPolicy,
    check_addresses,
    check_redirect,
    check_size,
    check_uri,
    host_matches,
    where,
)

CLUSTER = ArtifactPolicy()  # what `modelops run` uses without flags
SANDBOX = ArtifactPolicy.build(allow_file=True)
HOSTS = ArtifactPolicy.build(hosts=["models.example.com", "*.store.example", "10.1.0.0/16"])
METADATA_ALLOWED = ArtifactPolicy.build(allow_networks=["169.254.169.254/32"])


@pytest.mark.parametrize(
    ("policy", "uri", "reason"),
    [
        # schemes: file is off in a cluster, on in the sandbox; a bare path is a file
        (CLUSTER, "file:///etc/passwd", "SchemeNotAllowed"),
        (CLUSTER, "/var/run/secrets/kubernetes.io/serviceaccount/token", "SchemeNotAllowed"),
        (CLUSTER, "FILE:///etc/passwd", "SchemeNotAllowed"),
        (SANDBOX, "file:///tmp/model.joblib", None),
        (SANDBOX, "/tmp/model.joblib", None),
        (CLUSTER, "https://models.example.com/m.joblib", None),
        (CLUSTER, "http://models.example.com/m.joblib", None),
        (CLUSTER, "s3://bucket/m.joblib", None),
        (CLUSTER, "gs://bucket/m.joblib", None),
        (CLUSTER, "ftp://internal/m.joblib", "SchemeNotAllowed"),
        (CLUSTER, "memory://m.joblib", "SchemeNotAllowed"),
        (CLUSTER, "gopher://127.0.0.1:6379/_FLUSHALL", "SchemeNotAllowed"),
        (ArtifactPolicy.build(schemes=["https"]), "http://models.example.com/m", "SchemeNotAllowed"),
        # link-local and metadata addresses, literal: refused whatever the host list says
        (CLUSTER, "http://169.254.169.254/latest/meta-data/", "AddressNotAllowed"),
        (CLUSTER, "http://169.254.0.1:8080/m", "AddressNotAllowed"),
        (CLUSTER, "http://169.254.255.255/m", "AddressNotAllowed"),
        (CLUSTER, "http://169.253.255.255/m", None),
        (CLUSTER, "http://169.255.0.0/m", None),
        (CLUSTER, "http://[fd00:ec2::254]/latest/meta-data/", "AddressNotAllowed"),
        (CLUSTER, "http://[fd00:ec2::253]/m", None),
        (CLUSTER, "http://[fe80::1]/m", "AddressNotAllowed"),
        (CLUSTER, "http://[::ffff:169.254.169.254]/m", "AddressNotAllowed"),
        (CLUSTER, "http://127.0.0.1:8080/m", None),
        (ArtifactPolicy.build(hosts=["169.254.169.254"]), "http://169.254.169.254/m", "AddressNotAllowed"),
        (METADATA_ALLOWED, "http://169.254.169.254/m", None),
        (METADATA_ALLOWED, "http://169.254.169.253/m", "AddressNotAllowed"),
        # the host allow-list
        (HOSTS, "https://models.example.com/m", None),
        (HOSTS, "https://MODELS.example.com./m", None),
        (HOSTS, "https://evil.example.com/m", "HostNotAllowed"),
        (HOSTS, "https://models.example.com.evil.net/m", "HostNotAllowed"),
        (HOSTS, "https://a.store.example/m", None),
        (HOSTS, "https://a.b.store.example/m", None),
        (HOSTS, "https://store.example/m", "HostNotAllowed"),
        (HOSTS, "https://evilstore.example/m", "HostNotAllowed"),
        (HOSTS, "http://10.1.2.3/m", None),
        (HOSTS, "http://10.2.0.1/m", "HostNotAllowed"),
        (HOSTS, "s3://bucket/m", "HostNotAllowed"),
        (HOSTS, "https://user:pw@models.example.com/m", None),
        # not a URI the operator can fetch
        (CLUSTER, "http:///no-host", "InvalidURI"),
        (CLUSTER, "http://models.example.com:99999/m", "InvalidURI"),
    ],
)
def test_check_uri(policy: ArtifactPolicy, uri: str, reason: str | None) -> None:
    got = check_uri(uri, policy)
    assert (got.reason if got else None) == reason, got


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        (["10.0.0.5"], None),
        (["10.0.0.5", "2001:db8::1"], None),
        # one bad answer among good ones refuses the host: the connection could go to any of them
        (["10.0.0.5", "169.254.169.254"], "AddressNotAllowed"),
        (["2001:db8::1", "fd00:ec2::254"], "AddressNotAllowed"),
        (["fe80::1%eth0"], "AddressNotAllowed"),
        (["::ffff:169.254.1.1"], "AddressNotAllowed"),
        ([], "AddressNotAllowed"),
    ],
)
def test_check_addresses_checks_every_address(addresses: list[str], reason: str | None) -> None:
    got = check_addresses("store.example", addresses, CLUSTER)
    assert (got.reason if got else None) == reason


def test_allowed_network_exempts_only_itself() -> None:
    policy = ArtifactPolicy.build(allow_networks=["169.254.10.0/24", "fd00:ec2::254/128"])
    assert check_addresses("h", ["169.254.10.7", "fd00:ec2::254"], policy) is None
    refused = check_addresses("h", ["169.254.10.7", "169.254.11.7"], policy)
    assert refused is not None
    assert "169.254.11.7" in refused.message


@pytest.mark.parametrize(
    ("location", "hops", "target", "reason"),
    [
        ("/v2/m.joblib", 1, "http://store.example/v2/m.joblib", None),
        ("https://cdn.example/m", 5, "https://cdn.example/m", None),
        ("https://cdn.example/m", 6, "https://cdn.example/m", "TooManyRedirects"),
        (
            "http://169.254.169.254/latest/meta-data/iam",
            1,
            "http://169.254.169.254/latest/meta-data/iam",
            "AddressNotAllowed",
        ),
        ("file:///var/run/secrets/token", 1, "file:///var/run/secrets/token", "SchemeNotAllowed"),
        ("gopher://127.0.0.1/x", 1, "gopher://127.0.0.1/x", "SchemeNotAllowed"),
    ],
)
def test_redirects_stay_within_the_policy(location: str, hops: int, target: str, reason: str | None) -> None:
    got_target, refusal = check_redirect("http://store.example/v1/m.joblib", location, hops, CLUSTER)
    assert got_target == target
    assert (refusal.reason if refusal else None) == reason


def test_redirect_to_a_host_outside_the_allow_list() -> None:
    _, refusal = check_redirect("https://models.example.com/m", "https://elsewhere.example/m?sig=secret", 1, HOSTS)
    assert refusal is not None
    assert refusal.reason == "HostNotAllowed"
    assert "sig=secret" not in refusal.message  # the target's query (a signature) is not repeated


@pytest.mark.parametrize(
    ("size", "declared", "reason"),
    [(1000, False, None), (1001, False, "TooLarge"), (1001, True, "TooLarge"), (0, True, None)],
)
def test_size_limit(size: int, declared: bool, reason: str | None) -> None:
    got = check_size(size, ArtifactPolicy.build(max_bytes=1000), declared)
    assert (got.reason if got else None) == reason
    if got:
        assert "1000 bytes" in got.message


def test_default_limits_are_pinned() -> None:
    assert CLUSTER.max_bytes == 10 * 1024**3
    assert CLUSTER.max_redirects == 5
    assert "file" not in CLUSTER.schemes
    assert check_size(10 * 1024**3 + 1, CLUSTER) is not None


@pytest.mark.parametrize(
    ("host", "pattern", "match"),
    [
        ("a.example.com", "*.example.com", True),
        ("example.com", "*.example.com", False),
        ("aexample.com", "*.example.com", False),
        ("10.0.0.1", "10.0.0.0/8", True),
        ("::1", "10.0.0.0/8", False),
        ("host", "10.0.0.0/8", False),
        ("Host.Example.", "host.example", True),
    ],
)
def test_host_matches(host: str, pattern: str, match: bool) -> None:
    assert host_matches(host, pattern) is match


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"schemes": ["ht tp"]}, "not a URI scheme"),
        ({"allow_networks": ["169.254.0.0/33"]}, "not a CIDR"),
        ({"hosts": ["a/b"]}, "not a host"),
        ({"max_bytes": 0}, "positive"),
    ],
)
def test_build_names_the_bad_setting(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ArtifactPolicy.build(**kwargs)  # type: ignore[arg-type]


def test_where_drops_credentials_path_and_query() -> None:
    assert where("https://user:pw@store.example:8443/a/b?X-Amz-Signature=s") == "https://store.example:8443"
    assert where("/tmp/m.joblib") == "file:"
