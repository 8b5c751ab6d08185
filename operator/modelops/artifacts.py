"""Fetch artifact bytes by URI and verify their sha256 digest.

Two ways in, one meaning of a digest:

- ``compute_digest`` / ``verify`` / ``open_uri``: blocking, for the model server (verify before
  load) and the CLI (digest of a local file).
- ``modelops.artifact_verifier.Verifier``: the operator's, asynchronous (aiohttp), with the
  artifact policy, timeouts and fair fetch slots; it raises the exceptions defined here.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from modelops.core.artifact_policy import Refusal

CHUNK = 1 << 20


class ArtifactUnreachable(Exception):
    """The bytes could not be read (missing file, HTTP error, unknown scheme): worth retrying."""


class ArtifactRefused(ArtifactUnreachable):
    """The operator's artifact policy forbids this fetch (scheme, host, address, redirect, size)."""

    def __init__(self, uri: str, refusal: Refusal) -> None:
        super().__init__(f"refused to read {uri}: {refusal.message}")
        self.reason = refusal.reason
        self.refusal = refusal


class DigestMismatch(Exception):
    """The bytes were read and hash to something else: never retried, never served."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"digest mismatch: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True)
class Digest:
    value: str  # "sha256:<hex>"
    size_bytes: int


def local_path(uri: str) -> Path | None:
    """The filesystem path of a file:// URI or a bare path; None for remote URIs."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        return Path(urllib.parse.unquote(parsed.netloc + parsed.path))
    if parsed.scheme == "":
        return Path(uri)
    return None


@contextmanager
def open_uri(uri: str, timeout: float = 30.0) -> Iterator[IO[bytes]]:
    """A binary stream of the artifact: file paths, http(s), then any fsspec protocol."""
    path = local_path(uri)
    scheme = urllib.parse.urlparse(uri).scheme
    try:
        if path is not None:
            with path.open("rb") as fh:
                yield fh
        elif scheme in ("http", "https"):
            with urllib.request.urlopen(uri, timeout=timeout) as resp:
                yield resp
        else:
            try:
                import fsspec
            except ImportError as exc:
                raise ArtifactUnreachable(f"scheme {scheme!r} needs fsspec: pip install 'modelops[drift]'") from exc
            try:
                with fsspec.open(uri, "rb") as fh:
                    yield fh
            except ValueError as exc:  # unknown protocol
                raise ArtifactUnreachable(f"cannot open {uri}: {exc}") from exc
    except (OSError, urllib.error.URLError) as exc:
        raise ArtifactUnreachable(f"cannot read {uri}: {exc}") from exc


def compute_digest(uri: str) -> Digest:
    """Stream the artifact through sha256."""
    h = hashlib.sha256()
    size = 0
    with open_uri(uri) as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return Digest(f"sha256:{h.hexdigest()}", size)


def verify(uri: str, expected: str) -> Digest:
    """Raise DigestMismatch unless the artifact's bytes hash to ``expected``."""
    got = compute_digest(uri)
    if got.value != expected:
        raise DigestMismatch(expected, got.value)
    return got
