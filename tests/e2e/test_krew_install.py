"""The release archive installed by real krew and run through real kubectl's plugin discovery.

PATH holds only $KREW_ROOT/bin, the cluster's bin dir (kubectl, kubectl-krew) and a directory
with a `python3` link, so the plugin kubectl finds can only be the one krew installed (not a
pip-installed kubectl-ome_pvc next to the test's Python).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubectl_omepvc import __version__
from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
TAG = f"v{__version__}"


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=False, capture_output=True, text=True, env=env, timeout=300)


def test_krew_installs_the_archive_and_kubectl_runs_it(cluster: Cluster, tmp_path: Path) -> None:
    # hack/build-dist -o renders plugin.yaml for exactly this archive next to it.
    out = tmp_path / "dist"
    built = run(
        [sys.executable, str(REPO / "hack" / "build-dist"), "-o", str(out)], dict(os.environ)
    )
    assert built.returncode == 0, built.stderr
    archive = out / f"kubectl-ome_pvc-{TAG}.tar.gz"
    manifest = out / "plugin.yaml"

    krew_root = tmp_path / "krew"
    python_dir = tmp_path / "python"
    python_dir.mkdir()
    (python_dir / "python3").symlink_to(sys.executable)
    path = os.pathsep.join([str(krew_root / "bin"), str(cluster.bin_dir), str(python_dir)])
    env = {
        **cluster.env,
        "PATH": path,
        "KREW_ROOT": str(krew_root),
        "KREW_NO_UPGRADE_CHECK": "1",  # no network here
        "XDG_CACHE_HOME": str(tmp_path / "cache"),  # where the zipapp unpacks itself
    }
    kubectl = str(cluster.bin_dir / "kubectl")

    installed = run(
        [kubectl, "krew", "install", f"--manifest={manifest}", f"--archive={archive}"], env
    )
    assert installed.returncode == 0, installed.stderr
    try:
        plugins = run([kubectl, "plugin", "list"], env)
        assert str(krew_root / "bin" / "kubectl-ome_pvc") in plugins.stdout, plugins

        client = run([kubectl, "ome-pvc", "version", "--client"], env)
        assert client.returncode == 0, client.stderr
        assert client.stdout.startswith(f"Plugin Version: {TAG} (Python "), client.stdout

        server = run([kubectl, "ome-pvc", "version", "--context", "local-admin"], env)
        assert server.returncode == 0, server.stderr
        assert "Server Version: v1." in server.stdout, server.stdout

        # kubectl's own completion asks kubectl_complete-ome_pvc, once the user copies it onto
        # PATH as the manifest's caveats say.
        store = krew_root / "store" / "ome-pvc" / TAG
        files = sorted(p.name for p in store.iterdir())
        assert files == ["LICENSE", "kubectl-ome_pvc", "kubectl_complete-ome_pvc"], files
        completer = krew_root / "bin" / "kubectl_complete-ome_pvc"
        completer.write_bytes((store / "kubectl_complete-ome_pvc").read_bytes())
        completer.chmod(0o755)
        completed = run([kubectl, "__complete", "ome-pvc", "vers"], env)
        assert completed.returncode == 0, completed.stderr
        lines = completed.stdout.splitlines()
        assert lines[0].split("\t")[0] == "version", completed.stdout
        assert lines[-1] == ":4", completed.stdout
        completer.unlink()
    finally:
        # `uninstall` insists on a cloned index (`krew update`, which needs the network); it
        # only checks that index/default/.git exists and then works from the install receipt.
        (krew_root / "index" / "default" / ".git").mkdir(parents=True, exist_ok=True)
        uninstalled = run([kubectl, "krew", "uninstall", "ome-pvc"], env)
    assert uninstalled.returncode == 0, uninstalled.stderr
    assert not (krew_root / "bin" / "kubectl-ome_pvc").exists()
    assert "kubectl-ome_pvc" not in run([kubectl, "plugin", "list"], env).stdout
