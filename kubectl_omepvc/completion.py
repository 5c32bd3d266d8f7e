"""kubectl's plugin completion protocol, answered from the click command tree.

kubectl (>= 1.26) completes `kubectl ome-pvc <words> <partial>` by running
`kubectl_complete-ome_pvc <words> <partial>` from PATH (without cobra's `__complete` word, which we
accept as well) and reading one candidate per line (`value<TAB>description`), then a last line
`:<directive>` that tells the shell what to do when no candidate fits (cobra's
ShellCompDirective).

Everything here is pure: listing cluster objects is done by the `Lister` the caller passes in.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterable, Sequence

import click
from click import shell_completion

from kubectl_omepvc.options import ConnectionOptions

PROG_NAME = "kubectl ome-pvc"
COBRA_REQUEST = "__complete"


class Directive(enum.IntFlag):
    """cobra's ShellCompDirective bits, as kubectl reads them from the last line."""

    DEFAULT = 0  # the shell may fall back to file names
    ERROR = 1
    NO_SPACE = 2
    NO_FILE_COMP = 4
    FILTER_FILE_EXT = 8
    FILTER_DIRS = 16
    KEEP_ORDER = 32


class Resource(str, enum.Enum):
    """What a parameter's value names; the Lister is asked for names of one of these."""

    INFERENCE_SERVICE = "inferenceservices"
    MODEL = "clusterbasemodels"  # and the namespace's BaseModels, as `status MODEL` finds them
    SOURCE_MODEL = "models"  # `create --from-model`: NAME or basemodel/NAME
    CLAIM = "persistentvolumeclaims"
    NAMESPACE = "namespaces"
    CONTEXT = "contexts"


# click parameter names (the Python identifiers) whose values name a cluster object.
PARAM_RESOURCES: dict[str, Resource] = {
    "isvc": Resource.INFERENCE_SERVICE,
    "isvcs": Resource.INFERENCE_SERVICE,
    "inference_service": Resource.INFERENCE_SERVICE,
    "inferenceservice": Resource.INFERENCE_SERVICE,
    "model": Resource.MODEL,
    "models": Resource.MODEL,
    "model_name": Resource.MODEL,
    "base_model": Resource.MODEL,
    "from_model": Resource.SOURCE_MODEL,
    "claim": Resource.CLAIM,
    "claims": Resource.CLAIM,
    "pvc": Resource.CLAIM,
    "namespace": Resource.NAMESPACE,
    "context": Resource.CONTEXT,
}
# Plain-string parameters that take a file path: let the shell offer file names.
FILE_PARAMS = frozenset({"kubeconfig", "certificate_authority", "filename", "file"})

Lister = Callable[[Resource, ConnectionOptions], Iterable[str]]


@dataclasses.dataclass(frozen=True)
class Candidate:
    value: str
    description: str = ""


@dataclasses.dataclass(frozen=True)
class Answer:
    candidates: tuple[Candidate, ...]
    directive: Directive

    def render(self) -> str:
        """The protocol's text: `value<TAB>description` lines, then `:<directive>`."""
        lines = []
        for candidate in self.candidates:
            description = _one_line(candidate.description)
            lines.append(f"{candidate.value}\t{description}" if description else candidate.value)
        lines.append(f":{int(self.directive)}")
        return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first.replace("\t", " ")


def split_request(words: Sequence[str]) -> tuple[list[str], str]:
    """kubectl's arguments -> (the complete words, the word being completed)."""
    words = list(words)
    if words and words[0] == COBRA_REQUEST:
        words = words[1:]
    if not words:
        return [], ""
    return words[:-1], words[-1]


def connection_options(ctx: click.Context) -> ConnectionOptions:
    """The connection flags typed so far (click ran their callbacks while resolving)."""
    found = ctx.find_object(ConnectionOptions)
    return found if found is not None else ConnectionOptions()


def complete(
    cli: click.Command, words: Sequence[str], lister: Lister, prog_name: str = PROG_NAME
) -> Answer:
    """Candidates for the last of `words`: subcommands, flags, flag values, object names."""
    args, incomplete = split_request(words)
    # click's own resolution (what its bash/zsh/fish completion uses): it parses `args`
    # resiliently, following subcommands, and finds the command or parameter that completes.
    ctx = shell_completion._resolve_context(cli, {}, prog_name, list(args))
    target, incomplete = shell_completion._resolve_incomplete(ctx, list(args), incomplete)
    items = target.shell_complete(ctx, incomplete)

    if isinstance(target, click.Parameter):
        kinds = {item.type for item in items}
        if "file" in kinds or (not items and target.name in FILE_PARAMS):
            return Answer((), Directive.DEFAULT)
        if "dir" in kinds:
            return Answer((), Directive.FILTER_DIRS)
        resource = PARAM_RESOURCES.get(target.name or "")
        if not items and resource is not None:
            names = _names(lister, resource, connection_options(ctx), incomplete)
            return Answer(tuple(Candidate(n) for n in names), Directive.NO_FILE_COMP)

    seen: set[str] = set()
    candidates = []
    for item in items:
        if item.value not in seen:
            seen.add(item.value)
            candidates.append(Candidate(str(item.value), item.help or ""))
    return Answer(tuple(candidates), Directive.NO_FILE_COMP)


def _names(lister: Lister, resource: Resource, opts: ConnectionOptions, prefix: str) -> list[str]:
    # Completion must never print an error into the user's prompt: no cluster, no candidates.
    try:
        names = list(lister(resource, opts))
    except Exception:
        return []
    return sorted({n for n in names if n.startswith(prefix)})


def answer(cli: click.Command, words: Sequence[str], lister: Lister) -> str:
    """The whole reply to kubectl; a failure of our own is cobra's error directive, silently."""
    try:
        return complete(cli, words, lister).render()
    except Exception:
        return Answer((), Directive.ERROR).render()
