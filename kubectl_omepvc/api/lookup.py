"""Where a namespaced object the user named is, when it is not where they looked.

A missing `-n` and a typo are the two usual reasons for "not found": the first is answered by
the namespaces that hold an object of that name ("llama is in team-a"), the second by the
closest names in the namespace looked in. Both reads are best effort: without the right to
list, the error stays as it was.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kubectl_omepvc import errors
from kubectl_omepvc.core.resources import ResourceRef

if TYPE_CHECKING:
    from kubectl_omepvc.api.client import Client

MAX_CLOSE = 3


def suggestion(name: str, elsewhere: Sequence[str], close: Sequence[str]) -> str | None:
    """The hint for a name not found: where it is, else what it may be a typo of (pure)."""
    if elsewhere:
        more = len(elsewhere) - MAX_CLOSE
        shown = ", ".join(elsewhere[:MAX_CLOSE]) + (f" and {more} more" if more > 0 else "")
        return f"{name} is in {shown}: pass -n {elsewhere[0]}"
    if close:
        return f"did you mean {', '.join(close)}?"
    return None


def whereabouts(client: Client, ref: ResourceRef, name: str, namespace: str) -> str | None:
    """A hint naming the namespaces that hold `name`, or the closest names in `namespace`."""
    try:
        elsewhere = sorted(
            str(item["metadata"]["namespace"])
            for item in client.list(ref, None, field_selector=f"metadata.name={name}")
        )
    except errors.PluginError:
        elsewhere = []
    close: list[str] = []
    if not elsewhere:
        try:
            here = [str(item["metadata"]["name"]) for item in client.list(ref, namespace)]
        except errors.PluginError:
            here = []
        close = difflib.get_close_matches(name, here, n=MAX_CLOSE)
    return suggestion(name, elsewhere, close)
