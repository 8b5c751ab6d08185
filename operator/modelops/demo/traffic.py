"""Live inference traffic for the demo and the rollout tests: real HTTP, counted by answering version.

The requests score simulated customers of the churn examples: four features in the units the
models were trained on (standardised, so N(0, 1) each: ``tenure_months``, ``monthly_charges``,
``support_calls``, ``contract_length``; see examples/make_artifacts.py). :data:`SHIFT` moves some
features' means, as a change in the customer base would. The demo's drift reference,
examples/retrain/reference.csv, is drawn from the same distribution as the traffic before a shift.

Each request opens a new connection (``force_close``), so a Service's per-connection round robin
(kube-proxy) spreads requests by replica ratio as a fleet of clients would; through a Gateway the
split is per request anyway. Every answer is counted by the ``model_version`` the server reports
(or by status code for errors), so the measured split of a canary step is read off real answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp

FEATURE_NAMES = ("tenure_months", "monthly_charges", "support_calls", "contract_length")
FEATURES = len(FEATURE_NAMES)
SHIFT: Mapping[str, float] = {"tenure_months": 1.0, "support_calls": 1.0}
"""The demo's shift, in standard deviations: long-standing customers who call support more often
(churn risk about unchanged: the churn rule weighs tenure -1.2 and support calls +1.5)."""


def customer_rows(rng: random.Random, rows: int, shift: Mapping[str, float] | None = None) -> list[float]:
    """``rows`` customers, flattened row by row: each feature N(0, 1) plus its shift, 4 decimals."""
    offsets = [float((shift or {}).get(name, 0.0)) for name in FEATURE_NAMES]
    return [round(rng.gauss(0.0, 1.0) + offsets[j], 4) for _ in range(rows) for j in range(FEATURES)]


def request_body(rng: random.Random, rows: int = 1, shift: Mapping[str, float] | None = None) -> dict[str, object]:
    """One Open Inference Protocol v2 request for the churn examples (4 numeric features)."""
    data = customer_rows(rng, rows, shift)
    return {"inputs": [{"name": "features", "shape": [rows, FEATURES], "datatype": "FP64", "data": data}]}


@dataclass
class Tally:
    """Answers per model version ("2"), errors per HTTP status ("http 400") and connection failures."""

    counts: Counter[str] = field(default_factory=Counter)

    def share(self, key: str) -> float:
        total = sum(self.counts.values())
        return self.counts[key] / total if total else 0.0

    def total(self) -> int:
        return sum(self.counts.values())


class Traffic:
    """A steady request rate against ``url`` (``.../v2/models/<name>/infer``) in a background thread.

    ``rows`` customers per request; ``shift`` (feature -> standard deviations) can be changed while
    it runs: requests sent afterwards carry shifted features.
    """

    def __init__(
        self,
        url: str,
        rate: float = 40.0,
        concurrency: int = 8,
        seed: int = 7,
        rows: int = 1,
        shift: Mapping[str, float] | None = None,
    ) -> None:
        self.url = url
        self.rate = rate
        self.concurrency = concurrency
        self.rows = rows
        self.shift: Mapping[str, float] | None = shift
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._tally = Tally()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="traffic", daemon=True)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def take(self) -> Tally:
        """The answers counted since the last ``take`` (a window), and start a new window."""
        with self._lock:
            out, self._tally = self._tally, Tally()
        return out

    def _count(self, key: str) -> None:
        with self._lock:
            self._tally.counts[key] += 1

    async def _main(self) -> None:
        connector = aiohttp.TCPConnector(force_close=True, limit=self.concurrency)
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            slots = asyncio.Semaphore(self.concurrency)
            pending: set[asyncio.Task[None]] = set()
            interval = 1.0 / self.rate
            next_at = time.monotonic()
            while not self._stop.is_set():
                await slots.acquire()
                task = asyncio.create_task(self._one(session, slots))
                pending.add(task)
                task.add_done_callback(pending.discard)
                next_at = max(next_at + interval, time.monotonic() - 1.0)  # no burst after a stall
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            for task in list(pending):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _one(self, session: aiohttp.ClientSession, slots: asyncio.Semaphore) -> None:
        try:
            async with session.post(self.url, json=request_body(self._rng, self.rows, self.shift)) as resp:
                body = await resp.json(content_type=None)
                if resp.status == 200 and isinstance(body, dict):
                    self._count(str(body.get("model_version", "?")))
                else:
                    self._count(f"http {resp.status}")
        except (TimeoutError, aiohttp.ClientError, ValueError):
            self._count("unreachable")
        finally:
            slots.release()
