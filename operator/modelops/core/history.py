"""Bounded audit trails: append, keep the newest ``limit`` entries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from modelops.api.base import HISTORY_LIMIT, HistoryEntry

E = TypeVar("E", bound=HistoryEntry)


def append_history(history: Sequence[E], *entries: E, limit: int = HISTORY_LIMIT) -> list[E]:
    combined = [*history, *entries]
    return combined[-limit:] if limit > 0 else []
