"""Glue every command shares: making a client, echoing to the right stream."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from kubectl_omepvc.options import ConnectionOptions

if TYPE_CHECKING:
    from kubectl_omepvc.api.client import Client


def connect(opts: ConnectionOptions) -> Client:
    """A client for the cluster the flags and kubeconfig point at (imports the client lazily)."""
    from kubectl_omepvc.api.client import Client

    return Client(opts)


def note(message: str) -> None:
    """A diagnostic for the human: stderr, never mixed into the command's output."""
    click.echo(message, err=True)


def emit(text: Any) -> None:
    click.echo(text)
