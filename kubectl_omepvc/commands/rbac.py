"""`kubectl ome-pvc rbac`: the least-privilege roles for a command, as YAML to apply.

Pure: nothing is read from the cluster. Without a subject it prints the roles; with
`--bind-user`, `--bind-group` or `--bind-service-account` also the bindings (`--user` is
kubectl's flag for the kubeconfig user, which every command accepts). Rules needed only in
namespace `ome` (the model-agent's ConfigMaps and DaemonSet) go in a Role there, the rest in a
ClusterRole. `--for patch` covers `diff` and `unpatch` too, for one `--strategy` or all.
"""

from __future__ import annotations

import click

from kubectl_omepvc import errors
from kubectl_omepvc.commands import common
from kubectl_omepvc.core import rbac
from kubectl_omepvc.options import Output, connection_options, output_option
from kubectl_omepvc.printers import render_stream
from kubectl_omepvc.strategies import ORDER as STRATEGIES


@click.command("rbac")
@click.option(
    "--for",
    "command_name",
    type=click.Choice(rbac.COMMANDS),
    default="status",
    show_default=True,
    help="The command to grant: status, create (with verify), patch (with diff and unpatch), all.",
)
@click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    help="With --for patch or all: only this strategy's writes (default: every strategy's).",
)
@click.option(
    "--name",
    metavar="NAME",
    help="Name of the roles and bindings (default: kubectl-ome-pvc-<command>).",
)
@click.option("--bind-user", "user", metavar="USER", help="Bind the roles to this user.")
@click.option("--bind-group", "group", metavar="GROUP", help="Bind the roles to this group.")
@click.option(
    "--bind-service-account",
    "service_account",
    metavar="NAMESPACE:NAME",
    help="Bind the roles to this ServiceAccount.",
)
@output_option(Output.YAML, Output.JSON, default="yaml")
@connection_options  # unused (nothing is read), but every command accepts kubectl's flags
def command(
    command_name: str,
    strategy: str | None,
    name: str | None,
    user: str | None,
    group: str | None,
    service_account: str | None,
    output: str | None,
) -> None:
    """Print the least-privilege RBAC roles for a command (no cluster needed).

    `status` works with get/list/watch on ClusterBaseModels and BaseModels alone; its roles
    add every other read it makes, so it prints no permission warnings. `create` also covers
    `verify`; `patch` covers `diff` and `unpatch`. Pipe the output to `kubectl apply -f -`.

    \b
    Examples:
      kubectl ome-pvc rbac --bind-user jane | kubectl apply -f -
      kubectl ome-pvc rbac --for patch --strategy policy --bind-group ml-platform
      kubectl ome-pvc rbac --bind-service-account monitoring:model-watch -o json
    """
    given = [flag for flag, value in (("--bind-user", user), ("--bind-group", group),
             ("--bind-service-account", service_account)) if value is not None]  # fmt: skip
    if len(given) > 1:
        raise click.UsageError(f"name one subject: {' and '.join(given)} were both given")
    subject: rbac.Subject | None = None
    if user is not None:
        subject = rbac.Subject(rbac.SubjectKind.USER, _not_empty(user, "--bind-user"))
    elif group is not None:
        subject = rbac.Subject(rbac.SubjectKind.GROUP, _not_empty(group, "--bind-group"))
    elif service_account is not None:
        subject = rbac.service_account(service_account)
    if strategy and command_name not in ("patch", "all"):
        raise click.UsageError("--strategy goes with --for patch or --for all")
    from kubectl_omepvc.strategies import registry

    strategy_rules = {found.name: found.rules for found in registry().values()}
    rules = rbac.rules_for(command_name, strategy_rules, strategy)
    default = f"kubectl-ome-pvc-{command_name}" + (f"-{strategy}" if strategy else "")
    objects = rbac.rbac_objects(name or default, rules, subject)
    common.emit(render_stream(objects, output or Output.YAML.value))


def _not_empty(value: str, flag: str) -> str:
    if not value.strip():
        raise errors.InputError(f"{flag} is empty", f"pass {flag} NAME")
    return value
