"""`kubectl ome-pvc rbac`: the least-privilege roles for a command, as YAML to apply.

Pure: nothing is read from the cluster. Without a subject it prints the roles; with
`--bind-user`, `--bind-group` or `--bind-service-account` also the bindings (`--user` is
kubectl's flag for the kubeconfig user, which every command accepts). `status` needs a
ClusterRole (the model kinds, InferenceServices, nodes, claims and volumes, workloads, Jobs)
and a Role in namespace `ome` (the model-agent's ConfigMaps and DaemonSet): tighter than one
ClusterRole for both.
"""

from __future__ import annotations

import click

from kubectl_omepvc import errors
from kubectl_omepvc.commands import common
from kubectl_omepvc.core import rbac
from kubectl_omepvc.options import Output, connection_options, output_option
from kubectl_omepvc.printers import render_stream

RULES = {"status": rbac.STATUS_RULES}


@click.command("rbac")
@click.option(
    "--for",
    "command_name",
    type=click.Choice(sorted(RULES)),
    default="status",
    show_default=True,
    help="The command to grant full output of.",
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
    name: str | None,
    user: str | None,
    group: str | None,
    service_account: str | None,
    output: str | None,
) -> None:
    """Print the RBAC roles that give a command its full output (no cluster needed).

    `status` works with get/list/watch on ClusterBaseModels and BaseModels alone; these roles
    add every other read it makes, so it prints no permission warnings. Pipe the output to
    `kubectl apply -f -`.

    \b
    Examples:
      kubectl ome-pvc rbac --bind-user jane | kubectl apply -f -
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
    objects = rbac.rbac_objects(
        name or f"kubectl-ome-pvc-{command_name}", RULES[command_name], subject
    )
    common.emit(render_stream(objects, output or Output.YAML.value))


def _not_empty(value: str, flag: str) -> str:
    if not value.strip():
        raise errors.InputError(f"{flag} is empty", f"pass {flag} NAME")
    return value
