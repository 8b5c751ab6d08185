"""Watch streams break: cut in the middle of an event (half a JSON line, then the connection
closed), or, when the operator watches again, answered 410 Expired ("too old resource version",
after etcd compaction) so that it must list from scratch. The event cut in half is the one that
starts the rollout: it must not be lost, nor applied twice."""

from __future__ import annotations

from typing import Any

from tests.integration.faults.conftest import Chaos
from tests.support.rollout_checks import assert_promoted_once

MDS = "/modeldeployments"


def about(name: str, kind: str) -> Any:
    """A watch event about ModelDeployment ``name`` whose spec asks for ``<name>-v2``."""

    def pick(event: dict[str, Any]) -> bool:
        obj = event.get("object") or {}
        wanted = ((obj.get("spec") or {}).get("model") or {}).get("versionRef") == f"{name}-v2"
        return obj.get("kind") == kind and obj.get("metadata", {}).get("name") == name and wanted

    return pick


def md_watch(method: str, path: str) -> bool:
    return "watch=" in path and MDS in path


def test_a_watch_cut_mid_event(chaos: Chaos):
    name = "cut"
    rec = chaos.start_rollout(name)
    rule = chaos.proxy.cut(md_watch, about(name, "ModelDeployment"))
    chaos.to_v2(name)
    st = chaos.promote_through(name, [1])
    assert rule.applied == 1  # the stream carrying the spec change was cut in that very event
    assert_promoted_once(rec.stop(), st, f"{name}-v1", f"{name}-v2", weights=[25])


def test_a_watch_answered_410_expired(chaos: Chaos):
    name = "expired"
    rec = chaos.start_rollout(name)
    watches_before = len(chaos.proxy.seen(lambda s: s.is_watch and MDS in s.path))
    expire = chaos.proxy.expire(md_watch)  # the next watch of ModelDeployments: 410
    cut = chaos.proxy.cut(md_watch, about(name, "ModelDeployment"))  # ... which the cut forces
    chaos.to_v2(name)
    st = chaos.promote_through(name, [1])
    assert (cut.applied, expire.applied) == (1, 1)
    watches = chaos.proxy.seen(lambda s: s.is_watch and MDS in s.path)
    assert "cut" in [w.fault for w in watches[:watches_before]]  # the stream open since start-up
    # the operator watched again from where it was: 410; it listed afresh and watched on
    again = watches[watches_before:]
    assert [w.fault for w in again[:2]] == ["expire", None]
    lists = chaos.proxy.seen(lambda s: s.method == "GET" and s.path.split("?")[0].endswith(MDS) and not s.is_watch)
    assert any(again[0].at < s.at < again[1].at for s in lists)
    assert_promoted_once(rec.stop(), st, f"{name}-v1", f"{name}-v2", weights=[25])
