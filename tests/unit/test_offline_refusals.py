"""Refusals that need no server: each is checked before the plugin sends its first request.

They run against a kubeconfig whose server refuses every connection, so a refusal that waited
for the server would say "cannot reach the server" instead of what is wrong with the input.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from kubectl_omepvc import cli

DEAD = "https://127.0.0.1:1"
NODE_1 = "gpu-node-1"


@pytest.fixture
def dead_kubeconfig(tmp_path: Path) -> Path:
    """One context, `decoy`, on a server that refuses connections."""
    path = tmp_path / "kubeconfig"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "dead", "cluster": {"server": DEAD}}],
        "users": [{"name": "nobody", "user": {"token": "x"}}],
        "contexts": [{"name": "decoy", "context": {"cluster": "dead", "user": "nobody"}}],
        "current-context": "decoy",
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def run(kubeconfig: Path, *args: str) -> Result:
    env = {"KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent), "NO_COLOR": None}
    return CliRunner().invoke(cli.root, list(args), env=env, prog_name="kubectl ome-pvc")


# --- the connection ------------------------------------------------------------------------------


def test_unknown_context_is_one_line(dead_kubeconfig: Path) -> None:
    result = run(dead_kubeconfig, "version", "--context", "nope")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert 'context "nope" does not exist in the kubeconfig' in lines[0]


def test_connection_refused(dead_kubeconfig: Path) -> None:
    result = run(dead_kubeconfig, "version", "--insecure-skip-tls-verify")
    assert result.exit_code == 1
    assert f"cannot reach the server at {DEAD}" in result.stderr
    assert "Traceback" not in result.output


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung API server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_request_timeout_bounds_a_hung_server(dead_kubeconfig: Path, silent_server: int) -> None:
    start = time.monotonic()
    result = run(
        dead_kubeconfig,
        "version",
        "--server",
        f"https://127.0.0.1:{silent_server}",
        "--insecure-skip-tls-verify",
        "--request-timeout",
        "2s",
    )
    elapsed = time.monotonic() - start
    assert result.exit_code == 1
    assert "did not answer after 2s" in result.stderr
    assert elapsed < 10, f"took {elapsed:.1f}s despite --request-timeout 2s"


def test_version_client_only_needs_no_cluster(dead_kubeconfig: Path) -> None:
    result = run(dead_kubeconfig, "version", "--client")
    assert result.exit_code == 0, result.output
    assert "Plugin Version: v0." in result.stdout
    assert "Server Version" not in result.stdout
    as_json = json.loads(run(dead_kubeconfig, "version", "--client", "-o", "json").stdout)
    assert "server" not in as_json


# --- create's input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--local-path", "raid/models", "--node", NODE_1], "is not absolute"),
        (["--local-path", "/raid//models", "--node", NODE_1], "write it as /raid/models"),
        (["--local-path", "/raid/models", "--node", NODE_1, "--sub-path", "../etc"], "'..'"),
        (["--local-path", "/raid/models", "--node", NODE_1, "--sub-path", "/meta"],
         "starts with '/'"),
        (["--local-path", "/raid/models", "--node", NODE_1, "--size", "10GB"], "size '10GB'"),
        (["--local-path", "/raid/models", "--node", "GPU_1"], "node 'GPU_1' is not a valid name"),
        (["--nfs-server", "10.0.0.5", "--nfs-path", "export"],
         "NFS path 'export' is not absolute"),
    ],
    ids=["relative", "unnormalised", "dotdot-sub", "abs-sub", "size", "node-name", "nfs"],
)  # fmt: skip
def test_create_refuses_bad_input_before_any_request(
    dead_kubeconfig: Path, args: list[str], message: str
) -> None:
    size = [] if "--size" in args else ["--size", "1Gi"]
    result = run(dead_kubeconfig, "create", "llama", "-n", "team-a", *size, *args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_create_two_storage_sources_are_a_usage_error_before_any_request(
    dead_kubeconfig: Path,
) -> None:
    result = run(
        dead_kubeconfig, "create", "llama", "-n", "team-a", "--size", "1Gi",
        "--local-path", "/raid/models", "--node", NODE_1, "--nfs-server", "x", "--nfs-path", "/e",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "one storage source per claim" in result.stderr


def test_create_refuses_a_bad_claim_name_before_any_request(dead_kubeconfig: Path) -> None:
    result = run(
        dead_kubeconfig, "create", "Llama", "--local-path", "/raid/models", "--node", NODE_1,
        "--size", "1Gi",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "claim name 'Llama' is not a valid name" in result.stderr
