"""`verify` without a cluster: flags, and the helpers that read PVs, engines and pod states."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kubectl_omepvc import cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["c", "--timeout", "0"], "--timeout must be positive"),
        (["c", "--run-as-user", "-1"], "-1 is not in the range x>=0"),
        (["c", "-o", "wide"], "'wide' is not one of"),
    ],
    ids=["timeout", "uid", "output"],
)
def test_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(
        cli.root, ["verify", *args], env={"KUBECONFIG": "", "HOME": str(tmp_path)}
    )
    assert result.exit_code == 2
    assert message in result.stderr


def test_bad_sub_path_fails_before_connecting(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli.root,
        ["verify", "c", "--sub-path", "/abs"],
        env={"KUBECONFIG": "", "HOME": str(tmp_path)},
    )
    assert result.exit_code == 1
    assert "starts with '/'" in result.stderr
    assert "kubeconfig" not in result.stderr
