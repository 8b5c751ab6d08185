"""Artifact digests over file://, bare paths, http(s) and fsspec schemes."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops.artifacts import ArtifactUnreachable, DigestMismatch, compute_digest, verify

DATA = b"\x00model-bytes\xff" * 1000
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "m.joblib").write_bytes(DATA)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(tmp_path), **kw)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_file_uri_and_bare_path(tmp_path):
    path = tmp_path / "m.joblib"
    path.write_bytes(DATA)
    assert compute_digest(path.as_uri()).value == DIGEST
    got = verify(str(path), DIGEST)
    assert got.size_bytes == len(DATA)


def test_http(served):
    assert verify(f"{served}/m.joblib", DIGEST).size_bytes == len(DATA)
    with pytest.raises(ArtifactUnreachable, match="404"):
        compute_digest(f"{served}/absent.joblib")


def test_fsspec_memory_scheme():
    fsspec = pytest.importorskip("fsspec")
    with fsspec.open("memory://models/m.joblib", "wb") as fh:
        fh.write(DATA)
    assert compute_digest("memory://models/m.joblib").value == DIGEST


def test_mismatch_names_both_digests(tmp_path):
    path = tmp_path / "m.joblib"
    path.write_bytes(DATA + b"tampered")
    with pytest.raises(DigestMismatch) as err:
        verify(path.as_uri(), DIGEST)
    assert err.value.expected == DIGEST
    assert err.value.actual != DIGEST
    assert DIGEST in str(err.value)


@pytest.mark.parametrize("uri", ["file:///nonexistent/m.joblib", "nosuchscheme://x/y", "http://127.0.0.1:9/m"])
def test_unreachable(uri):
    with pytest.raises(ArtifactUnreachable):
        compute_digest(uri)
