"""The one exception a drift check raises for data it cannot judge.

The operator maps ``reason`` onto a status condition and a Warning Event, the CLI onto exit
code 2: bad data must never read as "no drift".
"""

from __future__ import annotations

from typing import Literal

DataErrorReason = Literal[
    "MissingColumns",
    "EmptyData",
    "UnreadableData",
    "MistypedData",
    "InvalidConfig",
]


class DriftDataError(Exception):
    """Data or settings a check cannot use; ``reason`` is a CamelCase condition reason."""

    def __init__(self, reason: DataErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason: DataErrorReason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"
