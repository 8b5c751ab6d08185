"""The operator's asynchronous artifact reader against local stores, one per case: digests, the
SSRF policy at connect and redirect time, size limits, timeouts, and fair fetch slots."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from modelops.artifact_verifier import FairLimiter, FetchSettings, Verifier
from modelops.artifacts import ArtifactRefused, ArtifactUnreachable, DigestMismatch
from modelops.core.artifact_policy import ArtifactPolicy
from tests.support.artifact_servers import Reply, hanging, scripted

DATA = b"\x00model-bytes\xff" * 5000
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()
SECRET = "SECRET-d41d8cd9"
LOCAL = ArtifactPolicy.build(allow_file=True)
FAST = FetchSettings(connect_timeout=2.0, read_timeout=0.5)


@pytest.fixture
async def verifier() -> AsyncIterator[Verifier]:
    v = Verifier(LOCAL, FAST)
    yield v
    await v.close()


async def test_http_digest_and_verify(verifier: Verifier) -> None:
    with scripted({"/m.joblib": Reply(body=DATA)}) as server:
        got = await verifier.digest(f"{server.url}/m.joblib")
        assert (got.value, got.size_bytes) == (DIGEST, len(DATA))
        with pytest.raises(DigestMismatch):
            await verifier.verify(f"{server.url}/m.joblib", "sha256:" + "0" * 64)


async def test_chunked_body_without_length(verifier: Verifier) -> None:
    with scripted({"/m": Reply(body=DATA, chunked=True)}) as server:
        assert (await verifier.digest(f"{server.url}/m")).value == DIGEST


@pytest.mark.parametrize(("status", "text"), [(404, "HTTP 404 Not Found"), (500, "HTTP 500 Internal Server Error")])
async def test_error_names_the_status_never_the_response(verifier: Verifier, status: int, text: str) -> None:
    reply = Reply(
        status, body=f"<error>{SECRET}</error>".encode(), reason=f"Oops {SECRET}", headers={"X-Debug": SECRET}
    )
    with scripted({"/m": reply}) as server, pytest.raises(ArtifactUnreachable) as err:
        await verifier.digest(f"{server.url}/m")
    assert not isinstance(err.value, ArtifactRefused)
    assert text in str(err.value)
    assert SECRET not in str(err.value)


async def test_redirect_within_the_policy_is_followed(verifier: Verifier) -> None:
    routes = {"/old": Reply(302, headers={"Location": "/new"}), "/new": Reply(body=DATA)}
    with scripted(routes) as server:
        assert (await verifier.digest(f"{server.url}/old")).value == DIGEST
        assert server.requests == ["/old", "/new"]


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "AddressNotAllowed"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "AddressNotAllowed"),
        ("gopher://127.0.0.1:6379/_INFO", "SchemeNotAllowed"),
    ],
)
async def test_redirect_outside_the_policy_is_refused(location: str, reason: str) -> None:
    v = Verifier(ArtifactPolicy(), FAST)  # the cluster default
    try:
        with (
            scripted({"/m": Reply(301, headers={"Location": location})}) as server,
            pytest.raises(ArtifactRefused) as err,
        ):
            await v.digest(f"{server.url}/m")
    finally:
        await v.close()
    assert err.value.reason == reason
    assert "meta-data" not in str(err.value)  # the target is named by scheme and host only


async def test_redirect_to_file_is_refused_in_a_cluster(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text(SECRET)
    v = Verifier(ArtifactPolicy(), FAST)
    try:
        with (
            scripted({"/m": Reply(302, headers={"Location": secret.as_uri()})}) as server,
            pytest.raises(ArtifactRefused) as err,
        ):
            await v.digest(f"{server.url}/m")
    finally:
        await v.close()
    assert err.value.reason == "SchemeNotAllowed"


async def test_redirect_to_a_host_outside_the_allow_list_is_refused() -> None:
    policy = ArtifactPolicy.build(hosts=["127.0.0.1"])
    with scripted({"/m": Reply(body=DATA)}) as target:
        with scripted({"/m": Reply(307, headers={"Location": f"http://localhost:{target.port}/m"})}) as server:
            v = Verifier(policy, FAST)
            try:
                assert (await v.digest(f"{target.url}/m")).value == DIGEST  # allowed directly
                with pytest.raises(ArtifactRefused) as err:
                    await v.digest(f"{server.url}/m")
            finally:
                await v.close()
        assert target.requests == ["/m"]  # the redirect was never followed
    assert err.value.reason == "HostNotAllowed"


async def test_redirect_loop_is_bounded(verifier: Verifier) -> None:
    with scripted({"/loop": Reply(302, headers={"Location": "/loop"})}) as server:
        with pytest.raises(ArtifactRefused) as err:
            await verifier.digest(f"{server.url}/loop")
        assert len(server.requests) == 6  # the original request and 5 redirects
    assert err.value.reason == "TooManyRedirects"


async def test_announced_size_over_the_limit_is_refused_before_reading() -> None:
    v = Verifier(ArtifactPolicy.build(max_bytes=1000), FAST)
    try:
        with scripted({"/m": Reply(body=b"x" * 1001)}) as server, pytest.raises(ArtifactRefused) as err:
            await v.digest(f"{server.url}/m")
        with scripted({"/m": Reply(body=b"x" * 1000)}) as exact:
            assert (await v.digest(f"{exact.url}/m")).size_bytes == 1000
    finally:
        await v.close()
    assert err.value.reason == "TooLarge"
    assert "1001 bytes" in str(err.value)


async def test_streamed_size_over_the_limit_is_refused() -> None:
    v = Verifier(ArtifactPolicy.build(max_bytes=10_000), FAST)
    try:
        with scripted({"/m": Reply(body=DATA, chunked=True)}) as server, pytest.raises(ArtifactRefused) as err:
            await v.digest(f"{server.url}/m")
    finally:
        await v.close()
    assert err.value.reason == "TooLarge"


async def test_size_limit_applies_to_files(tmp_path: Path) -> None:
    path = tmp_path / "m.bin"
    path.write_bytes(b"x" * 2001)
    v = Verifier(ArtifactPolicy.build(allow_file=True, max_bytes=2000), FAST)
    try:
        with pytest.raises(ArtifactRefused, match="larger than 2000 bytes"):
            await v.digest(path.as_uri())
    finally:
        await v.close()


async def test_a_store_that_never_answers_is_unreachable_after_the_read_timeout(verifier: Verifier) -> None:
    with hanging() as server:
        with pytest.raises(ArtifactUnreachable, match=r"sent nothing for 0\.5s"):
            await verifier.digest(f"{server.url}/m")
        assert server.accepted == 1


async def test_connection_refused_is_unreachable(verifier: Verifier) -> None:
    with scripted() as server:
        port = server.port
    with pytest.raises(ArtifactUnreachable, match="cannot connect") as err:
        await verifier.digest(f"http://127.0.0.1:{port}/m")
    assert not isinstance(err.value, ArtifactRefused)


async def test_every_resolved_address_is_checked_and_only_checked_ones_are_used() -> None:
    dns = {"store.test": ["127.0.0.1"], "mixed.test": ["127.0.0.1", "169.254.169.254"]}

    async def resolve(host: str, port: int) -> list[str]:
        return dns[host]

    v = Verifier(ArtifactPolicy(), FAST, resolve=resolve)
    try:
        with scripted({"/m": Reply(body=DATA)}) as server:
            assert (await v.digest(f"http://store.test:{server.port}/m")).value == DIGEST
            with pytest.raises(ArtifactRefused) as err:
                await v.digest(f"http://mixed.test:{server.port}/m")
            assert server.requests == ["/m"]  # the refused host was never contacted
    finally:
        await v.close()
    assert err.value.reason == "AddressNotAllowed"
    assert "169.254.169.254" in str(err.value)


async def test_a_name_redirected_to_resolves_through_the_policy() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return {"metadata.test": ["169.254.169.254"]}[host]

    v = Verifier(ArtifactPolicy(), FAST, resolve=resolve)
    try:
        with (
            scripted({"/m": Reply(302, headers={"Location": "http://metadata.test/latest/"})}) as server,
            pytest.raises(ArtifactRefused) as err,
        ):
            await v.digest(f"{server.url}/m")
    finally:
        await v.close()
    assert err.value.reason == "AddressNotAllowed"


async def test_file_is_off_by_default_and_on_when_allowed(tmp_path: Path) -> None:
    path = tmp_path / "m.joblib"
    path.write_bytes(DATA)
    cluster = Verifier(ArtifactPolicy(), FAST)
    sandbox = Verifier(LOCAL, FAST)
    try:
        for uri in (path.as_uri(), str(path)):
            with pytest.raises(ArtifactRefused) as err:
                await cluster.digest(uri)
            assert err.value.reason == "SchemeNotAllowed"
            assert "--allow-file-artifacts" in str(err.value)
            assert (await sandbox.digest(uri)).value == DIGEST
        with pytest.raises(ArtifactUnreachable, match="no such file or object"):
            await sandbox.digest((tmp_path / "absent").as_uri())
    finally:
        await cluster.close()
        await sandbox.close()


async def test_fsspec_scheme_in_the_verifiers_pool() -> None:
    fsspec = pytest.importorskip("fsspec")
    with fsspec.open("memory://models/verifier.joblib", "wb") as fh:
        fh.write(DATA)
    v = Verifier(ArtifactPolicy.build(schemes=["memory"]), FAST)
    try:
        assert (await v.digest("memory://models/verifier.joblib")).value == DIGEST
        with pytest.raises(ArtifactUnreachable, match="no such file or object"):
            await v.digest("memory://models/absent")
    finally:
        await v.close()


async def test_a_file_that_never_opens_or_stalls_is_unreachable(tmp_path: Path) -> None:
    """A FIFO: open() blocks until a writer comes, read() until it writes or closes."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    v = Verifier(LOCAL, FetchSettings(connect_timeout=0.3, read_timeout=0.3))
    try:
        with pytest.raises(ArtifactUnreachable, match=r"not opened within 0\.3s"):
            await v.digest(fifo.as_uri())
        writer = os.open(fifo, os.O_WRONLY)  # releases the abandoned reader (it sees EOF)
        os.close(writer)

        stall = threading.Event()

        def write_then_stall() -> None:
            fd = os.open(fifo, os.O_WRONLY)
            os.write(fd, b"partial")
            stall.wait()
            os.close(fd)

        t = threading.Thread(target=write_then_stall, daemon=True)
        t.start()
        with pytest.raises(ArtifactUnreachable, match=r"no data for 0\.3s"):
            await v.digest(fifo.as_uri())
        stall.set()
        t.join(5)
    finally:
        await v.close()


# --- fair slots ---------------------------------------------------------------------------------


async def _grant_order(limiter: FairLimiter, arrivals: list[str]) -> list[str]:
    """Hold the only slot, queue ``arrivals`` (namespace/name), release: the order they got it."""
    order: list[str] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with limiter.slot("a"):
            await release.wait()

    async def waiter(label: str) -> None:
        async with limiter.slot(label.split("/")[0]):
            order.append(label)
            await asyncio.sleep(0)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    tasks = []
    for label in arrivals:
        tasks.append(asyncio.create_task(waiter(label)))
        await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *tasks)
    return order


async def test_slots_go_round_robin_across_namespaces() -> None:
    order = await _grant_order(FairLimiter(1, 1), ["a/1", "a/2", "a/3", "b/1", "c/1", "b/2"])
    assert order == ["a/1", "b/1", "c/1", "a/2", "b/2", "a/3"]


async def test_one_namespace_never_takes_more_than_its_cap() -> None:
    limiter = FairLimiter(limit=3, per_key=2)
    release = asyncio.Event()
    held: list[str] = []

    async def take(key: str) -> None:
        async with limiter.slot(key):
            held.append(key)
            await release.wait()

    tasks = [asyncio.create_task(take(k)) for k in ("noisy", "noisy", "noisy", "quiet")]
    for _ in range(5):
        await asyncio.sleep(0)
    assert sorted(held) == ["noisy", "noisy", "quiet"]  # the third noisy one waits, a slot stays free for quiet
    release.set()
    await asyncio.gather(*tasks)
    assert limiter.in_use == 0


async def test_a_cancelled_waiter_leaves_no_trace() -> None:
    limiter = FairLimiter(1, 1)
    release = asyncio.Event()

    async def hold() -> None:
        async with limiter.slot("a"):
            await release.wait()

    async def wait_forever() -> None:
        async with limiter.slot("b"):
            pass

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(wait_forever())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    await holder
    assert limiter.in_use == 0
    async with limiter.slot("c"):
        assert limiter.in_use == 1


async def test_hanging_stores_do_not_delay_a_good_one() -> None:
    """Ten reads hanging on one store (a long read timeout), one namespace at its cap; a good
    artifact in another namespace, and one in the noisy namespace, are read while all still hang."""
    v = Verifier(LOCAL, FetchSettings(connect_timeout=5, read_timeout=60, max_concurrent=16, max_per_namespace=12))
    try:
        with hanging() as slow, scripted({"/m": Reply(body=DATA)}) as good:
            stuck = [asyncio.create_task(v.digest(f"{slow.url}/m{i}", "noisy")) for i in range(10)]
            for _ in range(1500):  # all ten connected (30 s at most)
                if slow.open_connections() == 10:
                    break
                await asyncio.sleep(0.02)
            assert (await v.digest(f"{good.url}/m", "quiet")).value == DIGEST
            assert (await v.digest(f"{good.url}/m", "noisy")).value == DIGEST
            assert not any(t.done() for t in stuck)
            assert slow.open_connections() == 10
            for t in stuck:
                t.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
    finally:
        await v.close()
