"""The plugin's own errors: a line for the user, an exit code, nothing from the client library.

Every failure the user can act on is a `PluginError`; click prints `Error: <message>` on stderr
and exits with `exit_code`. Transport and HTTP failures are turned into these in one place
(`kubectl_omepvc.api.errors`), so no other module needs to know urllib3's or ssl's types.
"""

from __future__ import annotations

import click


class PluginError(click.ClickException):
    """A failure the user can act on: `message` says what failed, `hint` what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(f"{message}: {hint}" if hint else message)


class ConfigError(PluginError):
    """No usable kubeconfig, an unknown context, a bad flag value that needs the kubeconfig."""


class ConnectionFailed(PluginError):
    """The API server could not be reached, TLS failed, or the request timed out."""


class Unauthorized(PluginError):
    """401: the credentials were rejected."""


class Forbidden(PluginError):
    """403: RBAC denied one verb on one resource."""


class NotFound(PluginError):
    """404: an object (or an API) is missing."""


class Conflict(PluginError):
    """409: the object changed, or already exists with other content."""


class Invalid(PluginError):
    """422 or 400: the server rejected the object; the server's message is kept."""


class ServerError(PluginError):
    """5xx or anything else the server answered that we do not expect."""


class InputError(PluginError):
    """The command's input cannot work (checked before anything is written)."""


class DiffFound(click.ClickException):
    """Not an error: `diff` found differences. kubectl's contract is exit 1 with no message."""

    exit_code = 1

    def __init__(self) -> None:
        super().__init__("")

    def show(self, file: object = None) -> None:
        """Print nothing: the diff itself was the output."""
