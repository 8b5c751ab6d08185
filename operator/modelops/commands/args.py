"""Argument types and help-text helpers shared by the command modules (stdlib only: imported by --help)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

_MARKUP = re.compile(r"``(.+?)``|`([^`\n]+)`", re.DOTALL)


def plain(text: str | None) -> str:
    """A docstring as terminal help: RST/Markdown literals (``x``, `x`) shown as plain x."""
    return _MARKUP.sub(lambda m: m.group(1) or m.group(2), text or "")


def port(*, allow_zero: bool = False) -> Callable[[str], int]:
    """An argparse ``type`` for a TCP port: 1-65535 (0 too when it means "any free port")."""
    low = 0 if allow_zero else 1

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a port number ({low}-65535), got {text!r}") from None
        if not low <= value <= 65535:
            raise argparse.ArgumentTypeError(f"must be a port number ({low}-65535), got {value}")
        return value

    parse.__name__ = "port"
    return parse
