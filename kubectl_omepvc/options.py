"""Flags shared by every command: kubectl's connection flags, output and dry-run.

kubectl refuses flags placed before a plugin's name, so every command accepts the whole set of
connection flags itself (kubectl-tree gets them from genericclioptions; we declare them once here).
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass
class ConnectionOptions:
    """What the user said about how to reach the cluster; `None` means "not given"."""

    kubeconfig: str | None = None
    context: str | None = None
    cluster: str | None = None
    user: str | None = None
    namespace: str | None = None
    impersonate: str | None = None
    impersonate_groups: tuple[str, ...] = ()
    impersonate_uid: str | None = None
    token: str | None = None
    server: str | None = None
    certificate_authority: str | None = None
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    request_timeout: float | None = None
    verbose: int = 0


class Output(str, enum.Enum):
    """`-o` values; the table is the default (None)."""

    JSON = "json"
    YAML = "yaml"
    WIDE = "wide"
    NAME = "name"


class DryRun(str, enum.Enum):
    """`--dry-run` values, as kubectl spells them."""

    NONE = "none"
    CLIENT = "client"
    SERVER = "server"


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float | None:
    """kubectl's --request-timeout: "0" means none; a bare number is seconds; units ms, s, m, h."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(
            f"invalid duration {text!r}: use a number with a unit such as 10s, 500ms or 1m"
        )
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return seconds or None


class DurationType(click.ParamType):  # type: ignore[type-arg]  # generic only from click 8.4
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, float):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = DurationType()


def _store(field: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback that copies a flag's value into the shared ConnectionOptions."""

    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        opts = ctx.ensure_object(ConnectionOptions)
        if value not in (None, (), False):
            setattr(opts, field, value)
        return value

    return callback


# (flags, field, extra click.option keyword arguments)
_CONNECTION_FLAGS: list[tuple[tuple[str, ...], str, dict[str, Any]]] = [
    (("--kubeconfig",), "kubeconfig", {"help": "Path to the kubeconfig file to use (no merging)."}),
    (("--context",), "context", {"help": "The kubeconfig context to use."}),
    (("--cluster",), "cluster", {"help": "The kubeconfig cluster to use."}),
    (("--user",), "user", {"help": "The kubeconfig user to use."}),
    (("-n", "--namespace"), "namespace", {"help": "The namespace (default: the context's)."}),
    (("--as", "impersonate"), "impersonate", {"help": "User to impersonate."}),
    (
        ("--as-group", "impersonate_groups"),
        "impersonate_groups",
        {"multiple": True, "help": "Group to impersonate (repeatable)."},
    ),
    (("--as-uid", "impersonate_uid"), "impersonate_uid", {"help": "UID to impersonate."}),
    (("--token",), "token", {"help": "Bearer token for authentication to the API server."}),
    (("-s", "--server"), "server", {"help": "The address and port of the API server."}),
    (
        ("--certificate-authority",),
        "certificate_authority",
        {"help": "Path to a certificate file for the certificate authority."},
    ),
    (
        ("--insecure-skip-tls-verify",),
        "insecure_skip_tls_verify",
        {"is_flag": True, "default": False, "help": "Do not verify the server's certificate."},
    ),
    (
        ("--tls-server-name",),
        "tls_server_name",
        {"help": "Server name to use for certificate validation."},
    ),
    (
        ("--request-timeout",),
        "request_timeout",
        {
            "type": DURATION,
            "help": 'Time to wait on each request (e.g. 10s, 1m; "0" = no timeout).',
            "metavar": "DURATION",
        },
    ),
    (
        ("-v", "--verbose"),
        "verbose",
        {
            "count": True,
            "help": "Show more on stderr (-v: each request; -vv: also its status and time).",
        },
    ),
]


def connection_options(func: F) -> F:
    """Adds kubectl's connection flags to a command; their values land in ctx.obj."""
    for flags, field, extra in reversed(_CONNECTION_FLAGS):
        func = click.option(
            *flags,
            callback=_store(field),
            expose_value=False,
            is_eager=True,
            **extra,
        )(func)
    return func


pass_connection = click.make_pass_decorator(ConnectionOptions, ensure=True)


def output_option(*choices: Output) -> Callable[[F], F]:
    """`-o/--output` limited to what the command can print."""
    names = [c.value for c in choices]
    return click.option(
        "-o",
        "--output",
        type=click.Choice(names),
        default=None,
        help=f"Output format: {'|'.join(names)} (default: a table).",
    )


def no_headers_option(func: F) -> F:
    return click.option("--no-headers", is_flag=True, help="Print tables without headers.")(func)


def dry_run_option(func: F) -> F:
    return click.option(
        "--dry-run",
        type=click.Choice([d.value for d in DryRun]),
        default=DryRun.NONE.value,
        show_default=True,
        help="client: print what would be sent; server: the server checks it, nothing is stored.",
    )(func)


def all_namespaces_option(func: F) -> F:
    return click.option("-A", "--all-namespaces", is_flag=True, help="List across all namespaces.")(
        func
    )
