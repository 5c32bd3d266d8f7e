"""A unified diff of two pod templates, as YAML, optionally coloured."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import yaml

from kubectl_omepvc.printers import Palette


def template_yaml(template: Mapping[str, Any]) -> str:
    """The template as YAML in its own key order (what both sides of the diff are made of)."""
    return yaml.safe_dump(dict(template), sort_keys=False, default_flow_style=False)


def template_diff(
    name: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    color: Palette | None = None,
    labels: tuple[str, str] = ("hostPath", "pvc"),
    context: int = 3,
) -> str:
    """`--- <name> (hostPath)` / `+++ <name> (pvc)` and hunks; "" when the templates are equal.

    Removed lines are red and added lines green when `color` is an enabled palette; headers
    are bold and hunk markers dim, as git shows them.
    """
    lines = difflib.unified_diff(
        template_yaml(before).splitlines(),
        template_yaml(after).splitlines(),
        fromfile=f"{name} ({labels[0]})",
        tofile=f"{name} ({labels[1]})",
        n=context,
        lineterm="",
    )
    palette = color or Palette(False)
    return "\n".join(_paint(i, line, palette) for i, line in enumerate(lines))


def _paint(i: int, line: str, palette: Palette) -> str:
    if i < 2:  # the two file headers come first, and only there
        return palette.bold(line)
    if line.startswith("@@"):
        return palette.dim(line)
    if line.startswith("-"):
        return palette.bad(line)
    if line.startswith("+"):
        return palette.good(line)
    return line
