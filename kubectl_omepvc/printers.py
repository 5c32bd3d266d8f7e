"""Rendering: kubectl-style tables, JSON/YAML, and a colour palette named for meaning.

Functions here return strings; commands decide where they go (stdout for results, stderr for
diagnostics). Padding happens before colouring, because escape codes have width for the
formatter but none on the terminal.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import IO, Any

from kubectl_omepvc.core.durations import human_age as human_age
from kubectl_omepvc.core.objects import one_or_list
from kubectl_omepvc.core.sizes import human_bytes as human_bytes


@dataclasses.dataclass(frozen=True)
class Palette:
    """Colours by meaning; the zero value prints plain text."""

    enabled: bool = False

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled and text else text

    def good(self, text: str) -> str:
        return self._wrap("32", text)

    def bad(self, text: str) -> str:
        return self._wrap("31", text)

    def warn(self, text: str) -> str:
        return self._wrap("33", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def bold(self, text: str) -> str:
        return self._wrap("1", text)


def palette_for(stream: IO[str], environ: dict[str, str] | None = None) -> Palette:
    """Colour only on a terminal, and never when NO_COLOR is set (to anything non-empty)."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return Palette(False)
    isatty = getattr(stream, "isatty", None)
    return Palette(bool(isatty and isatty()))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], no_headers: bool = False) -> str:
    """A plain kubectl table: upper-case headers, three spaces between columns, `-` for empty.

    Cells may carry ANSI colour; widths are computed on the visible text.
    """
    cells = [["-" if c in (None, "") else str(c) for c in row] for row in rows]
    head = [h.upper() for h in headers]
    grid = cells if no_headers else [head, *cells]
    if not grid:
        return ""
    import tabulate  # only when a table is printed: ~20 ms of start-up (benchmarks/startup.py)

    # kubectl's tabwriter counts characters, not terminal cells; so do we, with wcwidth or not.
    tabulate.WIDE_CHARS_MODE = False
    kubectl = tabulate.DataRow("", "   ", "")  # no rules; tabulate strips trailing blanks
    # The headers go in as the first row: tabulate pads given headers by two, kubectl does not.
    return tabulate.tabulate(
        grid,
        tablefmt=tabulate.TableFormat(None, None, None, None, kubectl, kubectl, 0, None),
        disable_numparse=True,
        stralign="left",
        preserve_whitespace=True,
    )


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False)


def to_yaml(obj: Any) -> str:
    import yaml  # only when YAML is asked for: it costs ~10 ms of start-up

    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False).rstrip("\n")


def to_yaml_stream(objects: Sequence[Any]) -> str:
    return "\n---\n".join(to_yaml(o) for o in objects)


def render_stream(objects: Sequence[Mapping[str, Any]], output: str) -> str:
    """Objects as kubectl prints what it applied: `json`, one object or a v1 `List` of several;
    `yaml`, a YAML stream (`---` between objects)."""
    if output == "json":
        return to_json(one_or_list(objects))
    return to_yaml_stream(objects)
