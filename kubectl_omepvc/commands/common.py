"""Glue every command shares: making a client, echoing to the right stream."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Any, NoReturn

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
