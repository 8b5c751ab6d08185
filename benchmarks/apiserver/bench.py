"""Requests per second of the sandbox API server at 0, 1000 and 5000 stored ModelVersions.

Run from the repo root:  python benchmarks/apiserver/bench.py [--requests 500] [--levels 0,1000,5000]

The server runs in its own thread and event loop (`ServerThread`), the client is one keep-alive
aiohttp session issuing requests one after another, so the numbers are per-request latency
inverted, custom-resource validation and CEL included. A final row repeats `get` after every other
request so that a growing per-request history (the kmock problem) would show as a drop.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from modelops.sandbox import ServerThread

ROOT = Path(__file__).resolve().parents[2]
PATH = "/apis/modelops.dev/v1alpha1/namespaces/default/modelversions"
DIGEST = "sha256:" + "b" * 64


def body(name: str) -> dict[str, object]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name, "labels": {"bucket": str(hash(name) % 100)}},
        "spec": {"modelName": "bench", "version": name, "artifact": {"uri": f"file:///m/{name}", "digest": DIGEST}},
    }


async def rate(n: int, one: Callable[[int], Awaitable[None]]) -> float:
    start = time.perf_counter()
    for i in range(n):
        await one(i)
    return n / (time.perf_counter() - start)


async def run(levels: list[int], requests: int) -> None:
    server = ServerThread(port=0, crds=[ROOT / "crds"]).start()
    base = server.url + PATH
    names: list[str] = []
    counter = 0
    rows = []
    try:
        async with aiohttp.ClientSession() as session:

            async def create(_: int) -> None:
                nonlocal counter
                counter += 1
                name = f"mv-{counter}"
                async with session.post(base, json=body(name)) as r:
                    assert r.status == 201, await r.text()
                    await r.read()
                names.append(name)

            async def get(_: int) -> None:
                async with session.get(f"{base}/{random.choice(names)}") as r:
                    assert r.status == 200
                    await r.read()

            async def list_selected(_: int) -> None:
                async with session.get(base, params={"labelSelector": "bucket=7", "limit": "50"}) as r:
                    assert r.status == 200
                    await r.read()

            async def list_all(_: int) -> None:
                async with session.get(base) as r:
                    assert r.status == 200
                    await r.read()

            async def patch(i: int) -> None:
                headers = {"Content-Type": "application/merge-patch+json"}
                data = f'{{"metadata":{{"labels":{{"touched":"{i}"}}}}}}'
                async with session.patch(f"{base}/{random.choice(names)}", data=data, headers=headers) as r:
                    assert r.status == 200, await r.text()
                    await r.read()

            for level in levels:
                while len(names) < level:
                    await create(0)
                if not names:
                    await create(0)
                stored = len(names)
                row = {
                    "stored": stored,
                    "create": await rate(requests, create),
                    "get": await rate(requests, get),
                    "list (selector)": await rate(requests, list_selected),
                    "list (all)": await rate(max(requests // 25, 5), list_all),
                    "patch": await rate(requests, patch),
                }
                for _ in range(level and len(names) - level):  # back to the level for the next row
                    async with session.delete(f"{base}/{names.pop()}") as r:
                        await r.read()
                rows.append(row)
            before = await rate(requests, get)
            for _ in range(20):
                await rate(requests // 2, patch)
                await rate(requests // 2, get)
            after = await rate(requests, get)
    finally:
        server.stop()
    cols = ["stored", "create", "get", "list (selector)", "list (all)", "patch"]
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.processor() or platform.system()}")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(str(row[c]) if c == "stored" else f"{row[c]:.0f}" for c in cols) + " |")
    print(f"\nget req/s before/after {20 * requests} more requests: {before:.0f} / {after:.0f}")


def store_rates(levels: list[int], requests: int) -> None:
    """The same operations on the `Store` directly: the server's own cost, without HTTP and client."""
    from modelops.sandbox import Store
    from modelops.sandbox.selectors import field_matcher, label_matcher
    from modelops.sandbox.server import load_crd_files

    store = Store()
    crd = store.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    for doc in load_crd_files([ROOT / "crds"]):
        store.create(crd, None, doc)
    mv = store.lookup("modelops.dev", "v1alpha1", "modelversions")
    names: list[str] = []
    everything, selected = label_matcher(None), label_matcher("bucket=7")

    def timed(n: int, fn: Callable[[int], object]) -> float:
        start = time.perf_counter()
        for i in range(n):
            fn(i)
        return n / (time.perf_counter() - start)

    def create(_: int) -> None:
        name = f"mv-{len(names) + 1}"
        store.create(mv, "default", body(name))
        names.append(name)

    merge = "application/merge-patch+json"
    print("\nStore only (no HTTP):")
    print("| stored | create | get | list (selector) | list (all) | patch (new object) | patch (same object) |")
    print("|---|---|---|---|---|---|---|")
    for level in levels:
        while len(names) < max(level, 1):
            create(0)
        stored = len(names)
        row = [
            timed(requests, create),
            timed(requests, lambda _: store.get(mv, "default", random.choice(names))),
            timed(requests, lambda _: store.list_objects(mv, "default", selected, field_matcher(None), 50)),
            timed(max(requests // 25, 5), lambda _: store.list_objects(mv, "default", everything, field_matcher(None))),
            timed(
                requests,
                lambda i: store.patch(mv, "default", names[-1 - i], merge, {"metadata": {"labels": {"p": str(i)}}}),
            ),
            timed(
                requests,
                lambda i: store.patch(
                    mv, "default", names[0], merge, {"status": {"phase": "Verified", "verifyAttempts": i}}
                ),
            ),
        ]
        print(f"| {stored} | " + " | ".join(f"{r:.0f}" for r in row) + " |")
        for _ in range(len(names) - max(level, 1)):
            store.delete(mv, "default", names.pop())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=500, help="requests per measurement (default 500)")
    parser.add_argument("--levels", default="0,1000,5000", help="stored-object counts (default 0,1000,5000)")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    asyncio.run(run(levels, args.requests))
    store_rates(levels, args.requests)


if __name__ == "__main__":
    main()
