"""`copy`: the Job, the copy script run for real (dash and busybox sh), and reading its log."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from kubectl_omepvc.core import copy as c
from kubectl_omepvc.core.verify import MANIFEST
from kubectl_omepvc.errors import InputError
from tests.unit.conftest import IS_ROOT, NOBODY, SETPRIV, Shell

MODEL_FILES = {
    "config.json": b'{"model_type": "llama"}\n',
    "tokenizer.json": b"{}\n",
    "model-00001-of-00002.safetensors": os.urandom(300_000),
    "model-00002-of-00002.safetensors": os.urandom(200_001),
    "model.safetensors.index.json": b'{"weight_map": {}}\n',
    "original/params.json": b"{}\n",
    "name with spaces.txt": b"x",
}


def write_source(root: Path, files: dict[str, bytes] = MODEL_FILES) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Claim:
    """A temporary 'claim': the sub-path is `root/meta/llama`, with a neighbour outside it."""

    def __init__(self, base: Path) -> None:
        self.root = base / "claim"
        self.target = self.root / "meta" / "llama"
        self.target.mkdir(parents=True)
        self.neighbour = self.root / "other" / "config.json"
        self.neighbour.parent.mkdir()
        self.neighbour.write_text("not ours\n")

    def tree(self) -> dict[str, bytes]:
        return {
            str(p.relative_to(self.root)): p.read_bytes()
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        }


def run_copy(
    shell: Shell, source: Path, target: Path, as_user: int | None = None, parallel: int = 2
) -> tuple[int, str, c.CopyProgress]:
    """The Job's own command, with the two directories standing in for its mounts."""
    command = c.copy_command("llama", "gpu-node-2", "/raid/models/meta/llama", parallel)
    assert command[4:6] == [c.SOURCE_MOUNT, c.TARGET_MOUNT]
    command[4:6] = [str(source), str(target)]
    done = shell.run(command, as_user)
    return done.returncode, done.stdout + done.stderr, c.parse_copy_log(done.stdout)


@pytest.fixture
def claim(tmp_path: Path) -> Claim:
    return Claim(tmp_path)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_source(tmp_path / "node")


@pytest.mark.parametrize("parallel", [1, 3])
def test_fresh_copy(shell: Shell, source: Path, claim: Claim, parallel: int) -> None:
    code, out, progress = run_copy(shell, source, claim.target, parallel=parallel)
    assert code == 0, out
    assert progress.done and progress.error is None
    total = sum(len(d) for d in MODEL_FILES.values())
    assert (progress.total_files, progress.total_bytes) == (len(MODEL_FILES), total)
    assert (progress.files, progress.bytes, progress.copied) == (len(MODEL_FILES), total, 7)
    for name, data in MODEL_FILES.items():
        assert (claim.target / name).read_bytes() == data
    for line in out.splitlines():
        if line.startswith("FILE "):
            _, how, size, digest, name = line.split(" ", 4)
            assert (how, int(size), digest) == (
                "copied",
                len(MODEL_FILES[name]),
                sha(MODEL_FILES[name]),
            )
    leftovers = [p.name for p in claim.target.rglob("*") if "ome-pvc" in p.name]
    assert leftovers == [MANIFEST]
    assert claim.neighbour.read_text() == "not ours\n"


def test_manifest_content(shell: Shell, source: Path, claim: Claim) -> None:
    code, out, _ = run_copy(shell, source, claim.target)
    assert code == 0, out
    manifest = json.loads((claim.target / MANIFEST).read_text())
    assert manifest["kind"] == "ome-pvc-copy" and manifest["version"] == 1
    assert manifest["model"] == "llama"
    assert manifest["sourceNode"] == "gpu-node-2"
    assert manifest["sourcePath"] == "/raid/models/meta/llama"
    assert manifest["time"].endswith("Z")
    assert manifest["count"] == len(MODEL_FILES)
    assert manifest["bytes"] == sum(len(d) for d in MODEL_FILES.values())
    assert manifest["files"] == [
        {"path": name, "size": len(MODEL_FILES[name]), "sha256": sha(MODEL_FILES[name])}
        for name in sorted(MODEL_FILES)
    ]
    # One file per line: verify's script reads it with awk.
    lines = (claim.target / MANIFEST).read_text().splitlines()
    assert sum('"sha256"' in line for line in lines) == len(MODEL_FILES)


def test_rerun_rewrites_nothing(shell: Shell, source: Path, claim: Claim) -> None:
    assert run_copy(shell, source, claim.target)[0] == 0
    before = {p: p.stat().st_mtime_ns for p in claim.target.rglob("*") if p.name != MANIFEST}
    code, out, progress = run_copy(shell, source, claim.target)
    assert code == 0, out
    assert (progress.skipped, progress.copied, progress.replaced) == (len(MODEL_FILES), 0, 0)
    assert progress.written == 0
    after = {p: p.stat().st_mtime_ns for p in claim.target.rglob("*") if p.name != MANIFEST}
    assert after == before


def test_resume_after_a_partial_copy(shell: Shell, source: Path, claim: Claim) -> None:
    """An interrupted run leaves whole files, a part file, and files not yet started."""
    shard = "model-00002-of-00002.safetensors"
    write_source(claim.target, {"config.json": MODEL_FILES["config.json"]})
    (claim.target / f".{shard}.ome-pvc-part").write_bytes(MODEL_FILES[shard][:1000])
    code, out, progress = run_copy(shell, source, claim.target)
    assert code == 0, out
    assert (progress.skipped, progress.copied) == (1, len(MODEL_FILES) - 1)
    assert f"FILE skipped {len(MODEL_FILES['config.json'])}" in out
    assert (claim.target / shard).read_bytes() == MODEL_FILES[shard]
    assert not list(claim.target.glob("*.ome-pvc-part"))


@pytest.mark.parametrize("damage", ["same-size", "truncated"])
def test_corrupted_file_is_replaced(shell: Shell, source: Path, claim: Claim, damage: str) -> None:
    shard = "model-00001-of-00002.safetensors"
    assert run_copy(shell, source, claim.target)[0] == 0
    data = MODEL_FILES[shard]
    broken = bytes([data[0] ^ 1]) + data[1:] if damage == "same-size" else data[:-10]
    (claim.target / shard).write_bytes(broken)
    code, out, progress = run_copy(shell, source, claim.target)
    assert code == 0, out
    assert progress.replaced == 1 and progress.skipped == len(MODEL_FILES) - 1
    assert f"FILE replaced {len(data)} {sha(data)} {shard}" in out
    assert (claim.target / shard).read_bytes() == data


def test_source_without_config_json_writes_nothing(
    shell: Shell, source: Path, claim: Claim
) -> None:
    (source / "config.json").unlink()
    before = claim.tree()
    code, _, progress = run_copy(shell, source, claim.target)
    assert code == 1
    assert progress.error == "source /raid/models/meta/llama on node gpu-node-2 has no config.json"
    assert progress.total_files is None
    assert claim.tree() == before


@pytest.mark.skipif(
    not IS_ROOT or not os.access(SETPRIV, os.X_OK),
    reason="needs root and setpriv to run the script as an unprivileged user",
)
def test_read_only_claim_is_refused_before_any_write(shell: Shell) -> None:
    # Not under tmp_path: pytest's base directory is closed to other users.
    base = Path(tempfile.mkdtemp(prefix="ome-pvc-copy-"))
    try:
        base.chmod(0o755)
        source = write_source(base / "node")
        claim = Claim(base)
        for directory in (claim.root, claim.target, claim.target.parent):
            directory.chmod(0o555)
        code, out, progress = run_copy(shell, source, claim.target, as_user=NOBODY)
        before = claim.tree()
    finally:
        for p in base.rglob("*"):
            if p.is_dir():
                p.chmod(0o755)
        shutil.rmtree(base)
    assert code == 1, out
    assert progress.error is not None and progress.error.startswith("cannot write to the claim")
    assert progress.files == 0
    assert before == {"other/config.json": b"not ours\n"}


# --- the Job -----------------------------------------------------------------------------------


def _job(**changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "name": "ome-pvc-copy-models",
        "namespace": "team-a",
        "claim": "models",
        "sub_path": "meta/llama",
        "model": "llama-3-2-1b-instruct",
        "node": "gpu-node-2",
        "host_path": "/raid/models/meta/llama",
    }
    args.update(changes)
    return c.copy_job(**args)


def test_job_is_pinned_with_the_right_volumes() -> None:
    job = _job(run_as_user=1000)
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["gpu-node-2"]
    assert pod["volumes"] == [
        {"name": "source", "hostPath": {"path": "/raid/models/meta/llama", "type": "Directory"}},
        {"name": "target", "persistentVolumeClaim": {"claimName": "models"}},
    ]
    container = pod["containers"][0]
    assert container["volumeMounts"] == [
        {"name": "source", "mountPath": "/source", "readOnly": True},
        {"name": "target", "mountPath": "/target", "subPath": "meta/llama"},
    ]
    assert container["command"][4:] == [
        "/source", "/target", "llama-3-2-1b-instruct", "gpu-node-2", "/raid/models/meta/llama", "2",
    ]  # fmt: skip
    assert pod["securityContext"]["runAsUser"] == 1000
    assert "cpu" not in container["resources"]["limits"]
    assert job["metadata"]["labels"][c.COPY_LABEL] == "models"
    assert "ttlSecondsAfterFinished" not in job["spec"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sub_path": "../x"}, "'..'"),
        ({"sub_path": "/abs"}, "starts with '/'"),
        ({"host_path": "raid"}, "source path"),
        ({"image": " "}, "image is empty"),
        ({"parallel": 0}, "--parallel"),
        ({"node": "Bad_Node"}, "node"),
    ],
)
def test_job_refuses_bad_input(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        _job(**changes)


def test_job_name_is_one_per_claim() -> None:
    assert c.job_name("models") == "ome-pvc-copy-models"
    assert len(c.job_name("x" * 63)) == 63


# --- the log -----------------------------------------------------------------------------------

LOG = """TOTAL files=3 bytes=3000
FILE skipped 1000 aa config.json
PARTIAL bytes=500
some shell noise
FILE copied 1500 bb model.safetensors
"""


def test_progress_from_a_running_log() -> None:
    p = c.parse_copy_log(LOG)
    assert (p.total_files, p.total_bytes, p.files, p.bytes, p.written) == (3, 3000, 2, 2500, 1500)
    assert (p.copied, p.skipped, p.partial, p.done, p.error) == (1, 1, 0, False, None)
    assert c.progress_line(p, 10.0) == "2/3 files, 2.4KiB/2.9KiB (83%), 250B/s, ETA 2s"
    partial = c.parse_copy_log(LOG + "PARTIAL bytes=400\n")
    assert partial.bytes_so_far == 2900


def test_progress_when_done_or_failed() -> None:
    done = c.parse_copy_log(LOG + "FILE replaced 500 cc x\nDONE files=3\n")
    assert done.done and done.replaced == 1
    assert "ETA" not in c.progress_line(done, 1.0)
    assert c.progress_report(done)["bytes"] == {"done": 3000, "total": 3000}
    failed = c.parse_copy_log("TOTAL files=1 bytes=5\nERROR cannot write\nERROR again\n")
    assert failed.error == "cannot write"
    assert c.progress_line(c.parse_copy_log(""), 1.0) == "listing the source ..."


@pytest.mark.parametrize(
    ("conditions", "state"),
    [
        ([], None),
        ([{"type": "Complete", "status": "True"}], "Complete"),
        ([{"type": "Failed", "status": "True"}], "Failed"),
        ([{"type": "Failed", "status": "False"}], None),
    ],
)
def test_job_finished(conditions: list[dict[str, str]], state: str | None) -> None:
    assert c.job_finished({"status": {"conditions": conditions}}) == state


# --- verify reads the manifest ---------------------------------------------------------------


def test_verify_checks_the_files_the_manifest_lists(
    shell: Shell, source: Path, claim: Claim
) -> None:
    from kubectl_omepvc.core import verify as v

    assert run_copy(shell, source, claim.target)[0] == 0

    def copy_check() -> v.Check:
        done = shell.run(v.verify_command(str(claim.target)))
        assert done.returncode == 0, done.stderr
        return next(ch for ch in v.parse_verify_output(done.stdout) if ch.name == "copy")

    good = copy_check()
    assert good.ok
    assert good.detail.startswith(f"{len(MODEL_FILES)} files as copied from gpu-node-2 at 20")
    (claim.target / "model-00002-of-00002.safetensors").write_bytes(b"short")
    (claim.target / "name with spaces.txt").unlink()
    bad = copy_check()
    assert not bad.ok
    assert bad.detail.startswith(f"2 of {len(MODEL_FILES)} files differ from the copy's manifest")
    assert "model-00002-of-00002.safetensors (manifest 200001 bytes, found 5)" in bad.detail
    assert bad.fix is not None and "kubectl ome-pvc copy" in bad.fix


def test_verify_without_a_manifest_has_no_copy_check(shell: Shell, source: Path) -> None:
    from kubectl_omepvc.core import verify as v

    done = shell.run(v.verify_command(str(source)))
    assert "copy" not in {ch.name for ch in v.parse_verify_output(done.stdout)}


# --- the checks before any write ---------------------------------------------------------------

KEY = "models.ome.io/llama"


def _node(
    name: str, label: str | None = "Ready", ready: bool = True, cordoned: bool = False
) -> dict[str, Any]:
    labels = {KEY: label} if label else {}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"unschedulable": True} if cordoned else {},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


NODES = {
    "n1": _node("n1", label="Updating"),
    "n2": _node("n2"),
    "n3": _node("n3", cordoned=True),
}


@pytest.mark.parametrize(
    ("ready", "from_node", "expected"),
    [(["n1", "n2", "n3"], None, "n2"), (["n2"], "n2", "n2")],
)
def test_choose_node(ready: list[str], from_node: str | None, expected: str) -> None:
    assert c.choose_node("llama", ready, NODES, KEY, from_node) == expected


@pytest.mark.parametrize(
    ("ready", "from_node", "message"),
    [
        ([], None, "is Ready on no node"),
        (["n2"], "n1", "node n1 does not hold model llama (Ready on n2)"),
        (["n1", "n2"], "n1", "label models.ome.io/llama is Updating, not Ready"),
        (["n3"], "n3", "cordoned"),
        (["n4"], "n4", "node n4 does not exist"),
        (["n1", "n3"], None, "no node can serve as the source"),
    ],
)
def test_choose_node_refuses(ready: list[str], from_node: str | None, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        c.choose_node("llama", ready, NODES, KEY, from_node)


@pytest.mark.parametrize(
    ("status", "spec", "problem"),
    [
        ({"phase": "Bound", "accessModes": ["ReadWriteMany"]}, {}, None),
        ({"phase": "Bound"}, {"accessModes": ["ReadWriteOnce"]}, None),
        ({"phase": "Bound", "accessModes": ["ReadOnlyMany"]}, {}, "ReadOnlyMany"),
        ({"phase": "Pending"}, {}, "Pending, not Bound"),
        ({}, {}, "in no phase"),
    ],
)
def test_claim_problem(status: dict[str, Any], spec: dict[str, Any], problem: str | None) -> None:
    found = c.claim_problem({"status": status, "spec": spec})
    assert found == problem if problem is None else (found is not None and problem in found)


# --- the command's flags, before any connection ------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--claim", "c"], 2, "name the model to copy (or pass --status)"),
        (["m"], 2, "Missing option '--claim'"),
        (["m", "--claim", "c", "--timeout", "0"], 2, "--timeout must be positive"),
        (["m", "--claim", "c", "--parallel", "0"], 2, "0 is not in the range 1<=x<=64"),
        (["m", "--claim", "c", "-o", "wide"], 2, "'wide' is not one of"),
        (["m", "--claim", "c", "--sub-path", "../x"], 1, "'..'"),
        (["m", "--claim", "Bad"], 1, "claim name 'Bad'"),
        (["m", "--claim", "c", "--from-node", "Bad_Node"], 1, "node 'Bad_Node'"),
    ],
)
def test_flags_are_checked_before_connecting(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    from click.testing import CliRunner

    from kubectl_omepvc import cli

    # No kubeconfig at all: reaching the cluster would be a different error.
    env = {"KUBECONFIG": "", "HOME": str(tmp_path)}
    result = CliRunner().invoke(cli.root, ["copy", *args], env=env)
    assert result.exit_code == code, result.output
    assert message in result.stderr


def test_too_little_space_is_refused_before_any_write(
    shell: Shell, source: Path, claim: Claim, tmp_path: Path
) -> None:
    """A `df` that reports 1 KiB free stands in for a full claim."""
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    (fake / "df").write_text(
        "#!/bin/sh\necho 'Filesystem 1024-blocks Used Available Capacity Mounted on'\n"
        "echo 'nfs:/export 100 99 1 99% /target'\n"
    )
    (fake / "df").chmod(0o755)
    before = claim.tree()
    full = Shell(shell.argv, f"{fake}:{shell.path}")
    code, _, progress = run_copy(full, source, claim.target)
    assert code == 1
    total = sum(len(d) for d in MODEL_FILES.values())
    assert progress.error == f"the claim has 1024 bytes free and the copy needs {total}"
    assert claim.tree() == before


@pytest.mark.parametrize("tty", [True, False])
def test_progress_display(
    tty: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A live line (carriage return, erase) on a terminal; plain lines, one per file, off it."""
    import sys

    from kubectl_omepvc.commands import copy as command

    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    display = command._Display()
    for log in (LOG, LOG, LOG + "FILE copied 500 cc x\nDONE\n"):
        display.show(c.parse_copy_log(log))
    display.end()
    err = capsys.readouterr().err
    if tty:
        assert err.count("\r\033[K") >= 2 and err.endswith("\n")  # redrawn as the rate moves
        assert "\n" not in err[:-1]
    else:
        assert "\r" not in err and "\033" not in err
        assert [line.split(",")[0] for line in err.splitlines()] == ["2/3 files", "3/3 files"]


@pytest.mark.parametrize(
    ("claim", "model_bytes", "problem"),
    [
        ({"status": {"capacity": {"storage": "10Gi"}}}, 5 << 30, None),
        ({"status": {"capacity": {"storage": "1Gi"}}}, 5 << 30, "it holds 1Gi and the model is 5"),
        ({"spec": {"resources": {"requests": {"storage": "1Gi"}}}}, 2 << 30, "it holds 1Gi"),
        ({"status": {"capacity": {"storage": "1Gi"}}}, None, None),
        ({"status": {"capacity": {"storage": "lots"}}}, 5 << 30, None),
        ({}, 5 << 30, None),
    ],
    ids=["fits", "too-small", "requested-size", "size-unknown", "bad-quantity", "no-size"],
)
def test_size_problem(claim: dict[str, Any], model_bytes: int | None, problem: str | None) -> None:
    found = c.size_problem(claim, model_bytes)
    assert found == problem if problem is None else (found is not None and problem in found)
