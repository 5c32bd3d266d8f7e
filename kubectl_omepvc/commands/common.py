"""Glue every command shares: making a client, echoing to the right stream."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Any, NoReturn

import click

from kubectl_omepvc.options import ConnectionOptions

if TYPE_CHECKING:
    from kubectl_omepvc.api.client import Client
    from kubectl_omepvc.core.manifests import ModelRef


def connect(opts: ConnectionOptions) -> Client:
    """A client for the cluster the flags and kubeconfig point at (imports the client lazily)."""
    from kubectl_omepvc.api.client import Client

    return Client(opts)


def note(message: str) -> None:
    """A diagnostic for the human: stderr, never mixed into the command's output."""
    click.echo(message, err=True)


def emit(text: Any) -> None:
    click.echo(text)


INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C
ON_INTERRUPT = "kubectl_omepvc.on_interrupt"  # click Context.meta key: what Ctrl-C would leave


def on_interrupt(message: str) -> None:
    """What to say if Ctrl-C comes from here on, wherever it lands (see cli.LazyGroup)."""
    click.get_current_context().meta[ON_INTERRUPT] = message


def interrupted(message: str) -> NoReturn:
    """After Ctrl-C: one line on stderr saying what was done and what was not, exit 130.

    A second Ctrl-C is ignored from here on, so it cannot cut that line short.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    note(f"interrupted: {message}")
    raise click.exceptions.Exit(INTERRUPTED)


def hostpath_model(client: Client, ref: ModelRef, no_path_hint: str) -> tuple[dict[str, Any], str]:
    """The model `ref` names and its storage.path: a model the agent downloads to its nodes.

    InputError when it does not exist or has no path (`no_path_hint` says what to do instead).
    """
    from kubectl_omepvc.core import manifests as m
    from kubectl_omepvc.core import resources as r
    from kubectl_omepvc.core.naming import ModelKind
    from kubectl_omepvc.errors import InputError

    resource = r.model_resource(ref.kind)
    model = client.get_or_none(resource, ref.name, ref.namespace)
    where = f" in namespace {ref.namespace}" if ref.namespace else ""
    if model is None:
        hint = f"list them with `kubectl get {resource.plural}`"
        if ref.kind is ModelKind.CLUSTER:
            hint += "; a BaseModel is basemodel/NAME"
        elif ref.namespace:
            from kubectl_omepvc.api.lookup import whereabouts

            hint = whereabouts(client, resource, ref.name, ref.namespace) or hint
        raise InputError(f"{ref.kind.value} {ref.name!r} not found{where}", hint)
    storage = (model.get("spec") or {}).get("storage") or {}
    path = storage.get("path")
    if not path:
        raise InputError(
            f"{ref.kind.value} {ref.name} has no storage.path (storageUri "
            f"{storage.get('storageUri') or '-'})",
            no_path_hint,
        )
    m.validate_absolute_path(path, f"{ref.kind.value} {ref.name} storage.path")
    return model, str(path)
