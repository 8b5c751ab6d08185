"""Bounded audit trails: append, keep the newest ``limit`` entries."""

from __future__ import annotations

from collections.abc import Sequence

from modelops.api.base import HISTORY_LIMIT, HistoryEntry


def append_history(
    history: Sequence[HistoryEntry], *entries: HistoryEntry, limit: int = HISTORY_LIMIT
) -> list[HistoryEntry]:
    combined = [*history, *entries]
    return combined[-limit:] if limit > 0 else []
