"""The command line surface: help, program name, flags, exit codes, lazy imports."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from kubectl_omepvc import cli


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.root, list(args), prog_name="kubectl ome-pvc")
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_subcommand_has_help(name: str) -> None:
    code, out, _ = invoke(name, "--help")
    assert code == 0
    assert out.startswith(f"Usage: kubectl ome-pvc {name}")


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_subcommand_takes_the_connection_flags(name: str) -> None:
    _, out, _ = invoke(name, "--help")
    for flag in (
        "--kubeconfig",
        "--context",
        "--cluster",
        "--user",
        "--namespace",
        "--as ",
        "--as-group",
        "--as-uid",
        "--token",
        "--server",
        "--certificate-authority",
        "--insecure-skip-tls-verify",
        "--tls-server-name",
        "--request-timeout",
    ):
        assert flag in out, f"{name} lacks {flag}"


@pytest.mark.parametrize(
    ("argv0", "expected"),
    [
        ("/home/u/.krew/bin/kubectl-ome_pvc", "kubectl ome-pvc"),
        ("kubectl-ome_pvc", "kubectl ome-pvc"),
        ("/usr/bin/python3 -m kubectl_omepvc", "kubectl ome-pvc"),
    ],
)
def test_program_name(argv0: str, expected: str) -> None:
    assert cli.program_name(argv0) == expected


def test_unknown_command_is_a_usage_error() -> None:
    code, _, err = invoke("frobnicate")
    assert code == 2
    assert "No such command" in err


def test_bad_flag_value_is_a_usage_error() -> None:
    code, _, err = invoke("version", "--request-timeout", "soon")
    assert code == 2
    assert "invalid duration" in err


def test_version_client_only() -> None:
    code, out, _ = invoke("version", "--client", "-o", "json")
    assert code == 0
    assert '"version": "0.' in out


def test_help_imports_neither_the_kubernetes_client_nor_tabulate() -> None:
    code = (
        "import sys\n"
        "from kubectl_omepvc import cli\n"
        "try:\n"
        "    cli.main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "for name in cli.COMMANDS:\n"
        "    try:\n"
        "        cli.main([name, '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('kubernetes' in sys.modules, 'urllib3' in sys.modules, 'tabulate' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "False False False"


def test_no_kubeconfig_is_one_line_exit_1(tmp_path: object) -> None:
    result = CliRunner().invoke(
        cli.root, ["version"], env={"KUBECONFIG": "", "HOME": str(tmp_path)}
    )
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "no kubeconfig found" in lines[0]
    assert "Traceback" not in result.output
