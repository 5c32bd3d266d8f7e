"""kubectl's forms of -v are accepted: `-v=6`, `-v6`, `--v=6`, `--v 6`."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from kubectl_omepvc import cli


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["-v=6"], ["-v"]),
        (["-v6"], ["-v"]),
        (["--v=6"], ["-v"]),
        (["--v", "8"], ["-v"]),
        (["--verbose=9"], ["-vv"]),
        (["-v=2"], []),
        (["-v", "-vv"], ["-v", "-vv"]),
        (["--", "-v=6"], ["--", "-v=6"]),
    ],
)
def test_levels_become_counts(given: list[str], expected: list[str]) -> None:
    assert cli.verbosity_flags(["status", *given]) == ["status", *expected]


@pytest.mark.parametrize("flag", ["-v=6", "--v=6"])
def test_a_command_takes_kubectls_form(flag: str) -> None:
    result = CliRunner().invoke(cli.root, ["rbac", flag], prog_name="kubectl ome-pvc")
    assert result.exit_code == 0, result.output
    assert "kind: ClusterRole" in result.stdout


def test_rbac_help_names_its_real_default_output() -> None:
    result = CliRunner().invoke(cli.root, ["rbac", "--help"], prog_name="kubectl ome-pvc")
    assert "json (default: yaml)" in " ".join(result.stdout.split())
    assert "a table" not in result.stdout
