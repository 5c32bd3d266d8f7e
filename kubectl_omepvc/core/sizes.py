"""Byte counts for people (512B, 1.5KiB, 3.2GiB).

Core's messages (copy progress, space refusals) carry sizes in this form, so it lives here,
below both core and `printers` (which re-exports it for the commands).
"""

from __future__ import annotations


def human_bytes(n: float | None) -> str:
    """Binary units, one decimal above bytes; `-` when unknown."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}PiB"
