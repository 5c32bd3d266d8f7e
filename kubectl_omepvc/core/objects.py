"""Small readers and shapers for Kubernetes objects as plain dicts (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

Obj = dict[str, Any]
# For isinstance: decoded JSON objects are dicts, and a dict is recognised without the slower
# ABC check that other mappings need (status runs these checks a million times at scale).
MAPPING = (dict, Mapping)


def dig(obj: Any, *path: str) -> Any:
    """obj[path[0]][path[1]]...; None as soon as a step is missing or not a mapping."""
    for step in path:
        if not isinstance(obj, MAPPING):
            return None
        obj = obj.get(step)
    return obj


def strip_server_fields(obj: Mapping[str, Any]) -> Obj:
    """A deep copy without managedFields: an object as kubectl prints it by default."""
    out = json.loads(json.dumps(obj))
    (out.get("metadata") or {}).pop("managedFields", None)
    return dict(out)


def one_or_list(objects: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """One object as itself, several (or none) as a v1 `List`, as kubectl prints them."""
    if len(objects) == 1:
        return objects[0]
    return {"apiVersion": "v1", "kind": "List", "items": list(objects)}
