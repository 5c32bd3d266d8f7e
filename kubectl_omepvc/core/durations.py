"""kubectl's short durations (45s, 12m, 5h, 3d, 2y).

Core's diagnoses and overview rows carry ages in this form, so it lives here, below both core
and `printers` (which re-exports it for the commands).
"""

from __future__ import annotations


def human_age(seconds: float | None) -> str:
    """kubectl's short durations: 45s, 12m, 5h, 3d, 2y."""
    if seconds is None or seconds < 0:
        return "<unknown>"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 120 and s < 600:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 730:
        return f"{days}d"
    return f"{days // 365}y"
