"""The `kubectl ome-pvc` command group: lazy subcommands, program name, exit codes.

Subcommands are imported only when run (or listed by --help), and import the HTTP and
kubeconfig layers only inside their callbacks, so `--help` stays as quick as kubectl's own.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from typing import Any

import click

from kubectl_omepvc import __version__

# name -> (module, one-line help shown by the group's --help without importing the module)
COMMANDS: dict[str, tuple[str, str]] = {
    "version": ("kubectl_omepvc.commands.version", "Show plugin, server and OME capabilities."),
    "diff": ("kubectl_omepvc.commands.diff", "Show what patch would change in each workload."),
    "patch": ("kubectl_omepvc.commands.patch", "Serve an InferenceService's model from a claim."),
    "unpatch": ("kubectl_omepvc.commands.unpatch", "Serve the model from its hostPath again."),
    "status": ("kubectl_omepvc.commands.status", "Show each model's state per node and why."),
    "create": ("kubectl_omepvc.commands.create", "Create a PV/PVC pair for model weights."),
    "verify": ("kubectl_omepvc.commands.verify", "Check a claim holds a loadable model."),
    "copy": ("kubectl_omepvc.commands.copy", "Copy a model from a node onto a claim, checked."),
    "rbac": ("kubectl_omepvc.commands.rbac", "Print least-privilege roles for a command."),
    "completion": (
        "kubectl_omepvc.commands.completion",
        "Print a shell completion script (bash, zsh, fish).",
    ),
}


# Commands that write; the others only read, so Ctrl-C leaves nothing behind.
WRITERS = frozenset({"copy", "create", "patch", "unpatch"})


_LEVEL = re.compile(r"^(?:-v=?|--v=|--verbose=)(\d+)$")
REQUESTS_LEVEL = 6  # kubectl -v=6 logs each request, as our -v does
TRACE_LEVEL = 9  # kubectl -v=9 shows bodies; ours, -vv, adds tracebacks


def verbosity_flags(args: list[str]) -> list[str]:
    """kubectl's forms of the flag (`-v=6`, `-v6`, `--v=6`, `--v 6`) as our count (`-v`, `-vv`).

    Levels below 6 log nothing extra in kubectl, so they add nothing here either.
    """
    out: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == "--":
            out += [arg, *rest]
            break
        flag = f"--v={next(rest, '')}" if arg == "--v" else arg
        match = _LEVEL.match(flag)
        if match is None:
            out.append(arg)
            continue
        level = int(match.group(1))
        if level >= TRACE_LEVEL:
            out.append("-vv")
        elif level >= REQUESTS_LEVEL:
            out.append("-v")
    return out


class LazyGroup(click.Group):
    """A group whose subcommands live in modules imported on first use."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, verbosity_flags(args))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(COMMANDS[cmd_name][0])
        command: click.Command = module.command
        return command

    def invoke(self, ctx: click.Context) -> Any:
        # Commands that write say themselves what Ctrl-C left behind; anything else (a read)
        # changed nothing. Either way exit 130, not click's "Aborted!" and 1.
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            from kubectl_omepvc.commands import common

            if common.ON_INTERRUPT in ctx.meta:
                common.interrupted(ctx.meta[common.ON_INTERRUPT])
            if ctx.invoked_subcommand in WRITERS:
                common.interrupted(
                    f"{ctx.invoked_subcommand} stopped before it finished: run the same command"
                    " again to finish (it carries on from what is in place)"
                )
            common.interrupted("nothing was changed")

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The short help comes from our table so the group's --help imports no command module.
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", prog_name="kubectl ome-pvc")
def root() -> None:
    """Serve OME (Open Model Engine) model weights from a PersistentVolumeClaim.

    Every command accepts kubectl's connection flags (--kubeconfig, --context, -n, --as, ...)
    after its name.
    """


def program_name(argv0: str) -> str:
    """kubectl runs us as `.../kubectl-ome_pvc`; users typed `kubectl ome-pvc`."""
    base = os.path.basename(argv0)
    if base.startswith("kubectl-"):
        return "kubectl " + base[len("kubectl-") :].replace("_", "-")
    return "kubectl ome-pvc"


def main(args: list[str] | None = None, **extra: Any) -> Any:
    """Console entry point."""
    return root.main(
        args=args,
        prog_name=program_name(sys.argv[0]),
        complete_var="_KUBECTL_OME_PVC_COMPLETE",
        **extra,
    )
