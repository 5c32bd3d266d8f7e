"""OME's model-agent DaemonSet: which DaemonSets are agents, and where their downloads land (pure).

The agent downloads into `--models-root-dir` (the binary's default when the flag is absent)
inside its own container; only a hostPath volume mounted over that directory puts the files on
the node's disk, at the host directory behind the mount.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from kubectl_omepvc.core import naming
from kubectl_omepvc.core.objects import dig
from kubectl_omepvc.errors import InputError

AGENT_ROOT_FLAG = "--models-root-dir"
AGENT_DEFAULT_ROOT = "/mnt/models"  # the agent binary's default
AGENT_NAME_PART = "model-agent"

Obj = Mapping[str, Any]
D = TypeVar("D", bound=Mapping[str, Any])


def within(path: str, parent: str) -> bool:
    """Whether `path` is `parent` or below it (`parent` is normalised; `path` is taken as is)."""
    parent = posixpath.normpath(parent)
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _argvs(daemonset: Obj) -> list[list[Any]]:
    containers = dig(daemonset, "spec", "template", "spec", "containers") or []
    return [
        [*(c.get("command") or []), *(c.get("args") or [])]
        for c in containers
        if isinstance(c, Mapping)
    ]


def takes_root_flag(daemonset: Obj) -> bool:
    """A container of the DaemonSet is given `--models-root-dir` (`=DIR` or `DIR` after it)."""
    return any(
        isinstance(a, str) and a.split("=", 1)[0] == AGENT_ROOT_FLAG
        for argv in _argvs(daemonset)
        for a in argv
    )


def named_like_agent(daemonset: Obj) -> bool:
    return AGENT_NAME_PART in str(dig(daemonset, "metadata", "name") or "")


def model_agents(daemonsets: Iterable[D]) -> list[D]:
    """The model-agents among DaemonSets: those taking --models-root-dir, else those named
    `*model-agent*` (the flag is optional: the binary has a default)."""
    by_flag, by_name = [], []
    for ds in daemonsets:
        if takes_root_flag(ds):
            by_flag.append(ds)
        elif named_like_agent(ds):
            by_name.append(ds)
    return by_flag or by_name


def _flag(argv: Sequence[Any], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if not isinstance(arg, str):
            continue
        if arg.startswith(f"{flag}="):
            return arg.split("=", 1)[1] or None
        if arg == flag and i + 1 < len(argv) and isinstance(argv[i + 1], str):
            return str(argv[i + 1])
    return None


@dataclasses.dataclass(frozen=True)
class AgentRoot:
    """Where the model-agent's downloads reach the node: a hostPath mounted in its container."""

    models_root: str  # the --models-root-dir argument
    mount_path: str  # where the hostPath volume is mounted in the agent
    host_path: str  # the node directory behind it

    def node_path(self, path: str) -> str | None:
        """Where a download to `path` (inside the agent) lands on the node; None: nowhere."""
        path = posixpath.normpath(path)
        if not within(path, self.mount_path):
            return None
        rel = posixpath.relpath(path, self.mount_path)
        return posixpath.normpath(posixpath.join(self.host_path, rel))

    def reaches_node(self, path: str) -> bool:
        """True when the agent's download to `path` is what a hostPath `path` shows on the node."""
        return self.node_path(path) == posixpath.normpath(path)

    @property
    def host_root(self) -> str:
        """The node directory behind the models root (a local PV's path for its models)."""
        return self.node_path(self.models_root) or self.host_path


def agent_root(daemonset: Obj | None) -> AgentRoot | None:
    """The agent's models root and the hostPath behind it; None when it cannot be told."""
    if daemonset is None:
        return None
    spec = dig(daemonset, "spec", "template", "spec") or {}
    containers = [c for c in spec.get("containers") or [] if isinstance(c, Mapping)]
    if not containers:
        return None
    chosen, root = containers[0], None
    for container in containers:
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        root = _flag(argv, AGENT_ROOT_FLAG)
        if root:
            chosen = container
            break
    root = posixpath.normpath(root or AGENT_DEFAULT_ROOT)
    host_volumes = {
        v.get("name"): dig(v, "hostPath", "path")
        for v in spec.get("volumes") or []
        if isinstance(v, Mapping) and dig(v, "hostPath", "path")
    }
    best: tuple[str, str] | None = None
    for mount in chosen.get("volumeMounts") or []:
        mount_path = dig(mount, "mountPath")
        host = host_volumes.get(dig(mount, "name"))
        if not isinstance(mount_path, str) or not mount_path or host is None:
            continue
        if mount.get("subPath"):
            continue
        mount_path = posixpath.normpath(mount_path)
        if within(root, mount_path) and (best is None or len(mount_path) > len(best[0])):
            best = (mount_path, posixpath.normpath(host))
    return AgentRoot(root, best[0], best[1]) if best else None


@dataclasses.dataclass(frozen=True)
class AgentChoice:
    """The model-agent DaemonSet a model's files came through, and where they are on the node."""

    daemonset: str
    root: AgentRoot

    @property
    def host_root(self) -> str:
        """The node directory behind the agent's models root: the local PV's path."""
        return self.root.host_root


def pick_agent_root(daemonsets: Sequence[Obj], model_path: str) -> AgentChoice:
    """The model-agent whose models root holds `model_path`; InputError when none (or two)."""
    agents = []
    for ds in daemonsets:
        if not (takes_root_flag(ds) or named_like_agent(ds)):
            continue
        root = agent_root(ds)
        if root is not None:
            agents.append(AgentChoice(str(dig(ds, "metadata", "name")), root))
    if not agents:
        raise InputError(
            f"found no model-agent DaemonSet with a hostPath models directory in namespace "
            f"{naming.AGENT_NAMESPACE}",
            "pass --local-path with the node directory that holds the models",
        )
    holding = [a for a in agents if within(model_path, a.root.models_root)]
    if not holding:
        roots = ", ".join(
            f"{a.root.models_root} (daemonset/{a.daemonset})" for a in sorted(agents, key=str)
        )
        raise InputError(
            f"model path {model_path} is outside the model-agent's models directory {roots}",
            "the agent then writes inside its own container, not to the node: fix the model's "
            "storage.path, or pass --local-path with the node directory that holds the files",
        )
    deepest = max(len(a.root.models_root) for a in holding)
    best = [a for a in holding if len(a.root.models_root) == deepest]
    if len({a.host_root for a in best}) > 1:
        names = ", ".join(f"daemonset/{a.daemonset}" for a in best)
        raise InputError(
            f"model-agents {names} disagree on the host directory behind "
            f"{best[0].root.models_root}",
            "pass --local-path with the node directory that holds the models",
        )
    return best[0]
