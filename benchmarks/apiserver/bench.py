"""Requests per second of the sandbox API server at 0, 1000 and 5000 stored ModelVersions.

Run from the repo root:  python benchmarks/apiserver/bench.py [--requests 300] [--repeat 3]

The server runs in its own thread and event loop (`ServerThread`), the client is one keep-alive
aiohttp session issuing requests one after another, so the numbers are per-request latency
inverted, custom-resource validation and CEL included. Each cell is the best of `--repeat` runs
(the machine is shared; the best run is the one least disturbed). A final line repeats `get` after
thousands more requests so that a growing per-request history (the kmock problem) would show.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from modelops.sandbox import ServerThread, Store
from modelops.sandbox.selectors import field_matcher, label_matcher
from modelops.sandbox.server import load_crd_files

ROOT = Path(__file__).resolve().parents[2]
PATH = "/apis/modelops.dev/v1alpha1/namespaces/default/modelversions"
DIGEST = "sha256:" + "b" * 64
MERGE = "application/merge-patch+json"
COLUMNS = ["get", "list (selector)", "list (all)", "patch (new object)", "patch (same object)", "create"]


def body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name, "labels": {"bucket": str(int(name.rsplit("-", 1)[1]) % 100)}},
        "spec": {"modelName": "bench", "version": name, "artifact": {"uri": f"file:///m/{name}", "digest": DIGEST}},
    }


def table(title: str, rows: list[tuple[int, list[float]]]) -> None:
    print(f"\n{title}\n")
    print("| stored | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for stored, rates in rows:
        print(f"| {stored} | " + " | ".join(f"{r:.0f}" for r in rates) + " |")


async def http_rates(levels: list[int], requests: int, repeat: int) -> None:
    server = ServerThread(port=0, crds=[ROOT / "crds"]).start()
    base = server.url + PATH
    names: list[str] = []
    counter = 0
    rows = []
    try:
        async with aiohttp.ClientSession() as session:

            async def best(n: int, one: Callable[[int], Awaitable[None]]) -> float:
                rates = []
                for _ in range(repeat):
                    start = time.perf_counter()
                    for i in range(n):
                        await one(i)
                    rates.append(n / (time.perf_counter() - start))
                return max(rates)

            async def call(method: str, url: str, expect: int, **kw: Any) -> None:
                async with session.request(method, url, **kw) as r:
                    assert r.status == expect, await r.text()
                    await r.read()

            async def create(_: int) -> None:
                nonlocal counter
                counter += 1
                names.append(f"mv-{counter}")
                await call("POST", base, 201, json=body(names[-1]))

            async def patch_new(i: int) -> None:
                data = f'{{"metadata":{{"labels":{{"touched":"{i}"}}}}}}'
                await call("PATCH", f"{base}/{random.choice(names)}", 200, data=data, headers={"Content-Type": MERGE})

            async def patch_same(i: int) -> None:
                data = f'{{"status":{{"phase":"Verified","verifyAttempts":{i}}}}}'
                await call("PATCH", f"{base}/{names[0]}/status", 200, data=data, headers={"Content-Type": MERGE})

            async def get(_: int) -> None:
                await call("GET", f"{base}/{random.choice(names)}", 200)

            for level in levels:
                while len(names) < max(level, 1):
                    await create(0)
                stored = len(names)
                rates = [
                    await best(requests, get),
                    await best(
                        requests, lambda _: call("GET", base, 200, params={"labelSelector": "bucket=7", "limit": "50"})
                    ),
                    await best(max(requests // 25, 5), lambda _: call("GET", base, 200)),
                    await best(requests, patch_new),
                    await best(requests, patch_same),
                    await best(requests, create),  # last: it adds objects
                ]
                rows.append((stored, rates))
                while len(names) > stored:
                    await call("DELETE", f"{base}/{names.pop()}", 200)
            before = await best(requests, get)
            for _ in range(10):
                await best(requests // 2, patch_new)
                await best(requests // 2, get)
            after = await best(requests, get)
    finally:
        server.stop()
    table("HTTP (requests/s):", rows)
    print(f"\nget req/s before/after {10 * repeat * requests} more requests: {before:.0f} / {after:.0f}")


def store_rates(levels: list[int], requests: int, repeat: int) -> None:
    """The same operations on the `Store` directly: the server's own cost, without HTTP and client."""
    store = Store()
    crd = store.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    for doc in load_crd_files([ROOT / "crds"]):
        store.create(crd, None, doc)
    mv = store.lookup("modelops.dev", "v1alpha1", "modelversions")
    names: list[str] = []
    counter = 0
    everything, selected, no_fields = label_matcher(None), label_matcher("bucket=7"), field_matcher(None)

    def best(n: int, fn: Callable[[int], object]) -> float:
        rates = []
        for _ in range(repeat):
            start = time.perf_counter()
            for i in range(n):
                fn(i)
            rates.append(n / (time.perf_counter() - start))
        return max(rates)

    def create(_: int) -> None:
        nonlocal counter
        counter += 1
        names.append(f"mv-{counter}")
        store.create(mv, "default", body(names[-1]))

    rows = []
    for level in levels:
        while len(names) < max(level, 1):
            create(0)
        stored = len(names)
        rates = [
            best(requests, lambda _: store.get(mv, "default", random.choice(names))),
            best(requests, lambda _: store.list_objects(mv, "default", selected, no_fields, 50)),
            best(max(requests // 25, 5), lambda _: store.list_objects(mv, "default", everything, no_fields)),
            best(requests, lambda i: store.patch(mv, "default", random.choice(names), MERGE, {"metadata": {"labels": {"p": str(i)}}})),
            best(requests, lambda i: store.patch(mv, "default", names[0], MERGE, {"status": {"verifyAttempts": i}}, "status")),
            best(requests, create),
        ]  # fmt: skip
        rows.append((stored, rates))
        while len(names) > stored:
            store.delete(mv, "default", names.pop())
    table("Store only, no HTTP (operations/s):", rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=300, help="requests per measurement (default 300)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell, best kept (default 3)")
    parser.add_argument("--levels", default="0,1000,5000", help="stored-object counts (default 0,1000,5000)")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    print(
        f"python {platform.python_version()} on {platform.machine()}; --requests {args.requests} --repeat {args.repeat}"
    )
    asyncio.run(http_rates(levels, args.requests, args.repeat))
    store_rates(levels, args.requests, args.repeat)


if __name__ == "__main__":
    main()
