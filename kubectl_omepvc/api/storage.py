"""The API sequences `create` and `verify` need, on top of the plain-dict client.

- `apply`: server-side apply that also says whether it created, changed or left the object;
- `watch_until`: wait for one object to reach a state (or vanish) by watching, not polling;
- `agent_daemonsets`, `pods_using_claim`, `object_events`: the few reads the commands check with;
- `throwaway_pod`: a pod that is deleted on every way out (errors, timeouts, Ctrl-C);
- `read_pod_log`: a pod's log as text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kubectl_omepvc import errors
from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.resources import ResourceRef

Obj = dict[str, Any]

# Metadata the server maintains: two versions of one object differ in these without a change.
_SERVER_METADATA = ("resourceVersion", "managedFields", "generation", "creationTimestamp", "uid")
LOG_LIMIT_BYTES = 1 << 20  # the verify script prints a few KiB; more means something else ran


def _meta(obj: Mapping[str, Any] | None, key: str) -> Any:
    return ((obj or {}).get("metadata") or {}).get(key)


def _namespace_of(ref: ResourceRef, obj: Mapping[str, Any]) -> str | None:
    return _meta(obj, "namespace") if ref.namespaced else None


def _content(obj: Mapping[str, Any] | None) -> Any:
    """`obj` without status and server-maintained metadata: what an apply may change."""
    if obj is None:
        return None
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _SERVER_METADATA}
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}


@dataclasses.dataclass(frozen=True)
class Applied:
    """One server-side apply: the object before (None: absent) and what the server returned."""

    ref: ResourceRef
    before: Obj | None
    after: Obj
    dry_run: bool = False

    @property
    def name(self) -> str:
        return str(_meta(self.after, "name"))

    @property
    def namespace(self) -> str | None:
        return _namespace_of(self.ref, self.after)

    @property
    def action(self) -> str:
        """kubectl's words: created, configured or unchanged."""
        if self.before is None:
            return "created"
        # Not resourceVersion: controllers write status (a claim's `Unused` condition) between
        # our read and our apply, and a dry run never bumps it.
        return "unchanged" if _content(self.before) == _content(self.after) else "configured"


def apply(
    client: Client,
    ref: ResourceRef,
    obj: Mapping[str, Any],
    *,
    before: Obj | None,
    dry_run: bool = False,
    force: bool = False,
) -> Applied:
    """Server-side apply of `obj` (field manager kubectl-ome-pvc); `before` is what was read."""
    after = client.apply(ref, obj, namespace=_namespace_of(ref, obj), dry_run=dry_run, force=force)
    return Applied(ref, before, after, dry_run)


def delete(client: Client, ref: ResourceRef, obj: Mapping[str, Any]) -> None:
    client.delete(ref, str(_meta(obj, "name")), _namespace_of(ref, obj))


# --- waiting --------------------------------------------------------------------------------------


def _list_version(client: Client, ref: ResourceRef, namespace: str | None, name: str) -> str:
    """The collection's resourceVersion, to watch an object that does not exist yet."""
    page = client.request(
        "GET",
        ref.path(namespace),
        query={"fieldSelector": f"metadata.name={name}", "limit": 1},
        verb="list",
        resource=ref.display,
        namespace=namespace,
    )
    return str((page.get("metadata") or {}).get("resourceVersion") or "")


def watch_until(
    client: Client,
    ref: ResourceRef,
    name: str,
    namespace: str | None,
    done: Callable[[Obj | None], bool],
    timeout: float,
    on_change: Callable[[Obj | None], None] | None = None,
) -> tuple[bool, Obj | None]:
    """Watch one object until `done(obj)` (obj None: deleted); (met, last state seen).

    Gives up after `timeout` seconds with (False, last state). A watch the server ends early
    (its own timeout, a 410 Gone) is resumed from the last version seen.
    """
    deadline = time.monotonic() + timeout
    current = client.get_or_none(ref, name, namespace)
    if done(current):
        return True, current
    version = _meta(current, "resourceVersion") or _list_version(client, ref, namespace, name)
    while (remaining := deadline - time.monotonic()) > 0:
        for event in client.watch(
            ref,
            namespace,
            resource_version=version,
            field_selector=f"metadata.name={name}",
            timeout_seconds=max(1, math.ceil(remaining)),
        ):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":  # usually 410 Gone: the version is too old; start over
                current = client.get_or_none(ref, name, namespace)
                if done(current):
                    return True, current
                version = _meta(current, "resourceVersion") or _list_version(
                    client, ref, namespace, name
                )
                break
            version = _meta(obj, "resourceVersion") or version
            if kind == "BOOKMARK":
                continue
            current = None if kind == "DELETED" else obj
            if on_change is not None:
                on_change(current)
            if done(current):
                return True, current
            if time.monotonic() >= deadline:
                return False, current
    return False, current


def claim_phase(claim: Obj | None) -> str | None:
    return ((claim or {}).get("status") or {}).get("phase")


def wait_for_claim_bound(
    client: Client, namespace: str, name: str, timeout: float
) -> tuple[bool, Obj | None]:
    return watch_until(
        client, r.PVCS, name, namespace, lambda c: claim_phase(c) == "Bound", timeout
    )


def wait_until_gone(
    client: Client, ref: ResourceRef, name: str, namespace: str | None, timeout: float
) -> bool:
    met, _ = watch_until(client, ref, name, namespace, lambda o: o is None, timeout)
    return met


# --- reads the commands check with -------------------------------------------------------------


def object_events(client: Client, namespace: str, name: str, kind: str) -> list[Obj]:
    """Events about one object, oldest first (for a "why is it not bound/running" message)."""
    events = client.list(
        r.EVENTS,
        namespace,
        field_selector=f"involvedObject.name={name},involvedObject.kind={kind}",
    )
    return sorted(events, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))


def agent_daemonsets(client: Client, namespace: str) -> list[Obj]:
    """DaemonSets in OME's namespace (`ome`); the caller picks the model-agent among them."""
    return list(client.list(r.DAEMON_SETS, namespace))


def pods_using_claim(client: Client, namespace: str, claim: str) -> list[str]:
    """Names of the pods in `namespace` whose volumes name `claim` (any phase but finished)."""
    users = []
    for pod in client.list(r.PODS, namespace):
        if ((pod.get("status") or {}).get("phase")) in ("Succeeded", "Failed"):
            continue
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            if (volume.get("persistentVolumeClaim") or {}).get("claimName") == claim:
                users.append(str(_meta(pod, "name")))
                break
    return users


# --- a pod that never outlives the command -------------------------------------------------------


def _delete_pod(client: Client, namespace: str, name: str) -> None:
    # A second Ctrl-C while deleting must not leave the pod behind: try once more, then give up
    # with a message naming the pod.
    for attempt in range(2):
        try:
            client.delete(r.PODS, name, namespace)
            return
        except KeyboardInterrupt:
            if attempt:
                raise errors.PluginError(
                    f"interrupted while deleting pod {name} -n {namespace}",
                    f"delete it with `kubectl delete pod {name} -n {namespace}`",
                ) from None


@contextlib.contextmanager
def throwaway_pod(client: Client, pod: Mapping[str, Any], keep: bool = False) -> Iterator[Obj]:
    """Creates `pod` and deletes it when the block ends, however it ends (unless `keep`)."""
    namespace = str(_meta(pod, "namespace"))
    created = client.create(r.PODS, pod, namespace)
    try:
        yield created
    finally:
        if not keep:
            _delete_pod(client, namespace, str(_meta(created, "name")))


def read_pod_log(client: Client, namespace: str, name: str, container: str) -> str:
    """The log of one container of a pod (at most LOG_LIMIT_BYTES)."""
    return client.get_text(
        r.PODS.path(namespace, name) + "/log",
        query={"container": container, "limitBytes": LOG_LIMIT_BYTES},
        resource="pods/log",
        namespace=namespace,
        name=name,
    )
