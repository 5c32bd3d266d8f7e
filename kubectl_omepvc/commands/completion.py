"""`kubectl ome-pvc completion`: shell completion, and the `kubectl_complete-ome_pvc` entry point.

Two routes, because kubectl owns the words `kubectl ome-pvc`:
- `kubectl ome-pvc <TAB>`: kubectl (>= 1.26) runs `kubectl_complete-ome_pvc` from PATH, which
  answers kubectl's plugin completion protocol (`cobra_main`, logic in kubectl_omepvc.completion).
- `kubectl-ome_pvc <TAB>`: click's own completion, from the script this command prints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import sys
from collections.abc import Callable, Mapping

import click

from kubectl_omepvc import completion, errors
from kubectl_omepvc.core import resources
from kubectl_omepvc.options import ConnectionOptions, connection_options

EXECUTABLE = "kubectl-ome_pvc"
COMPLETE_VAR = "_KUBECTL_OME_PVC_COMPLETE"  # what cli.main passes to click
SHELLS = ("bash", "zsh", "fish")
LOOKUP_TIMEOUT = 5.0  # seconds; a TAB that hangs on a dead server is worse than no answer
LOOKUP_LIMIT = 1000

_REFS = {
    completion.Resource.INFERENCE_SERVICE: resources.INFERENCE_SERVICES,
    completion.Resource.CLAIM: resources.PVCS,
    completion.Resource.NAMESPACE: resources.NAMESPACES,
}
# Model resources -> how a BaseModel's name is written for them.
MODELS = {completion.Resource.MODEL: "", completion.Resource.SOURCE_MODEL: "basemodel/"}


def script(shell: str) -> str:
    """click's completion script for SHELL, bound to the executable and our completion variable."""
    from click.shell_completion import get_completion_class

    from kubectl_omepvc import cli

    shell_class = get_completion_class(shell)
    if shell_class is None:
        raise click.BadParameter(f"unsupported shell {shell!r}")
    return shell_class(cli.root, {}, EXECUTABLE, COMPLETE_VAR).source()


def list_names(
    resource: completion.Resource,
    opts: ConnectionOptions,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Names of `resource` in the namespace (or cluster) the flags point at; raises on failure."""
    environ = os.environ if environ is None else environ
    if resource is completion.Resource.CONTEXT:
        from kubectl_omepvc.api import kubeconfig

        paths, explicit = kubeconfig.kubeconfig_paths(opts.kubeconfig, environ)
        documents, _ = kubeconfig.load_documents(paths, explicit)
        return [str(c["name"]) for c in kubeconfig.merge(documents)["contexts"]]

    from kubectl_omepvc.api.client import Client

    quick = dataclasses.replace(
        opts, request_timeout=opts.request_timeout or LOOKUP_TIMEOUT, verbose=0
    )
    client = Client(quick, environ)

    def names(ref: resources.ResourceRef, prefix: str = "") -> list[str]:
        items = client.list(ref, client.namespace if ref.namespaced else None)
        return [prefix + str(i["metadata"]["name"]) for i in itertools.islice(items, LOOKUP_LIMIT)]

    if resource in MODELS:
        # ClusterBaseModels, then the namespace's BaseModels: `status -n NS` shows one by its
        # name, `create --from-model` takes it as basemodel/NAME.
        found = names(resources.CLUSTER_BASE_MODELS)
        with contextlib.suppress(errors.PluginError):  # no BaseModel API or no right: none
            found += names(resources.BASE_MODELS, MODELS[resource])
        return found
    return names(_REFS[resource])


def complete_names(
    resource: completion.Resource,
) -> Callable[[click.Context, click.Parameter, str], list[str]]:
    """A click `shell_complete=` callback listing `resource` names; nothing when unreachable."""

    def callback(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
        try:
            names = list_names(resource, completion.connection_options(ctx))
        except Exception:
            return []
        return sorted(n for n in names if n.startswith(incomplete))

    return callback


def cobra_main(argv: list[str] | None = None) -> None:
    """`kubectl_complete-ome_pvc`: answers kubectl's plugin completion on stdout, nothing else."""
    import logging
    import warnings

    from kubectl_omepvc import cli

    # Anything on stderr would land in the user's prompt (urllib3 warnings, client logging).
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    words = sys.argv[1:] if argv is None else argv
    sys.stdout.write(completion.answer(cli.root, words, list_names))
    sys.stdout.flush()


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@connection_options  # unused, but every command accepts kubectl's flags
def command(shell: str) -> None:
    """Print a shell completion script for SHELL (bash, zsh or fish).

    `kubectl ome-pvc <TAB>` is completed by kubectl itself (1.26 or newer, with kubectl's own
    completion loaded), which runs `kubectl_complete-ome_pvc` from PATH: pip installs it; krew
    users copy it from the plugin's directory (`kubectl krew info ome-pvc` shows how).

    The script printed here completes the executable `kubectl-ome_pvc` when run directly:

    \b
      bash: source <(kubectl ome-pvc completion bash)          # in ~/.bashrc
      zsh:  kubectl ome-pvc completion zsh > "${fpath[1]}/_kubectl-ome_pvc"
      fish: kubectl ome-pvc completion fish > ~/.config/fish/completions/kubectl-ome_pvc.fish
    """
    click.echo(script(shell), nl=False)
