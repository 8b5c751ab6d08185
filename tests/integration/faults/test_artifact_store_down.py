"""The artifact store goes down while a ModelVersion is verified: the download is cut in the
middle (fewer bytes than announced, then the connection closed). A partial download is not the
artifact: the version stays Pending (ArtifactUnreachable, retried with backoff), never Failed
for a digest mismatch, and is Verified once the store is back; one history entry per event."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator

import pytest

from modelops.k8s.resources import MODEL_VERSION
from tests.integration.faults.conftest import Chaos
from tests.integration.rollout.conftest import NS, events, wait

DATA = b"model bytes " * 4096


class DyingStore:
    """An HTTP artifact store whose first answer dies half-way; later answers are whole."""

    def __init__(self) -> None:
        self.served: list[str] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/churn.joblib"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(DATA)}\r\nConnection: close\r\n\r\n".encode()
                if not self.served:
                    self.served.append("cut")
                    conn.sendall(head + DATA[: len(DATA) // 2])  # then the store dies: connection closed
                else:
                    self.served.append("whole")
                    conn.sendall(head + DATA)

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def store() -> Iterator[DyingStore]:
    s = DyingStore()
    yield s
    s.close()


def test_store_dies_mid_download_then_recovers(chaos: Chaos, store: DyingStore):
    name = "dying-store"
    mv = {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {
            "modelName": "dying",
            "version": "1",
            "artifact": {"uri": store.url, "digest": "sha256:" + hashlib.sha256(DATA).hexdigest()},
        },
    }
    phases: list[str] = []

    def status() -> dict:
        st = chaos.api.get(MODEL_VERSION, NS, name).get("status") or {}
        if st.get("phase") and (not phases or phases[-1] != st["phase"]):
            phases.append(st["phase"])
        return st

    chaos.api.create(MODEL_VERSION, NS, mv)
    pending = wait(lambda: (st := status()).get("verifyAttempts") == 1 and st, "a first failed attempt", 30)
    ready = next(c for c in pending["conditions"] if c["type"] == "Ready")
    assert (pending["phase"], ready["reason"]) == ("Pending", "ArtifactUnreachable")
    assert "retrying in 5s" in ready["message"]
    verified = wait(lambda: (st := status()).get("phase") == "Verified" and st, "Verified after the backoff", 30)
    assert store.served == ["cut", "whole"]  # one retry after the backoff, no hot loop
    assert "Failed" not in phases
    assert [h["event"] for h in verified["history"]] == ["Registered", "Verified"]
    warnings = [e for e in events(chaos.core, name) if e.type == "Warning"]
    assert [e.reason for e in warnings] == ["ArtifactUnreachable"]
