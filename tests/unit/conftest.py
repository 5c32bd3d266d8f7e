"""Fixtures for running the pods' own shell scripts locally, as the image would (busybox sh)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SETPRIV = "/usr/bin/setpriv"
NOBODY = 65534
IS_ROOT = os.geteuid() == 0


@dataclasses.dataclass(frozen=True)
class Shell:
    argv: tuple[str, ...]
    path: str  # PATH for the script: busybox's applets only, as in the default image

    def run(
        self, command: list[str], as_user: int | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """A pod's `/bin/sh -c SCRIPT ...` command, run in this shell (as `as_user` if given)."""
        assert command[0] == "/bin/sh"
        argv = [*self.argv, *command[1:]]
        if as_user is not None:
            argv = [SETPRIV, f"--reuid={as_user}", f"--regid={as_user}", "--clear-groups", *argv]
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env={"PATH": self.path},
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="session")
def busybox_bin() -> Iterator[Path]:
    """A directory of busybox applets, readable by every user (for the unprivileged runs)."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox is not installed (apt-get install busybox) to run the script in it")
    directory = Path(tempfile.mkdtemp(prefix="ome-pvc-busybox-"))
    directory.chmod(0o755)
    subprocess.run([busybox, "--install", "-s", str(directory)], check=True)
    yield directory
    shutil.rmtree(directory)


@pytest.fixture(params=["sh", "busybox"])
def shell(request: pytest.FixtureRequest) -> Shell:
    """The system's /bin/sh (dash on Debian) with its PATH, and busybox sh with busybox alone."""
    if request.param == "sh":
        return Shell(("/bin/sh",), os.environ.get("PATH", "/usr/bin:/bin"))
    directory: Path = request.getfixturevalue("busybox_bin")
    return Shell((str(directory / "sh"),), str(directory))
