from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kubectl_omepvc.commands.verify import render_checks
from kubectl_omepvc.core import verify as v
from kubectl_omepvc.core.verify import Check, parse_verify_output, verify_pod
from kubectl_omepvc.errors import InputError
from kubectl_omepvc.printers import Palette
from tests import factories
from tests.expect import raises_exactly
from tests.unit.conftest import IS_ROOT, NOBODY, SETPRIV, Shell

DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

# --- the pod -----------------------------------------------------------------------------------


def test_pod_is_complete() -> None:
    pod = verify_pod(
        "ome-pvc-verify-llama-x1",
        "serving",
        "llama-weights",
        "meta/llama",
        "/opt/ml/model",
        "gpu-node-1",
        "busybox:1.36",
        1000,
        90,
    )
    assert pod == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "ome-pvc-verify-llama-x1",
            "namespace": "serving",
            "labels": {
                "app.kubernetes.io/managed-by": "kubectl-ome-pvc",
                "ome-pvc.io/verify": "llama-weights",
            },
        },
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": 90,
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {
                "seccompProfile": {"type": "RuntimeDefault"},
                "runAsUser": 1000,
                "runAsNonRoot": True,
            },
            "containers": [
                {
                    "name": "verify",
                    "image": "busybox:1.36",
                    "command": [
                        "/bin/sh",
                        "-c",
                        v.VERIFY_SCRIPT,
                        "ome-pvc-verify",
                        "/opt/ml/model",
                    ],
                    "volumeMounts": [
                        {
                            "name": "model",
                            "mountPath": "/opt/ml/model",
                            "readOnly": True,
                            "subPath": "meta/llama",
                        }
                    ],
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "16Mi"},
                        "limits": {"cpu": "200m", "memory": "64Mi"},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
            "volumes": [
                {
                    "name": "model",
                    "persistentVolumeClaim": {"claimName": "llama-weights", "readOnly": True},
                }
            ],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {
                                        "key": "kubernetes.io/hostname",
                                        "operator": "In",
                                        "values": ["gpu-node-1"],
                                    }
                                ]
                            }
                        ]
                    }
                }
            },
        },
    }


def _pod(**changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "name": "verify-x",
        "namespace": "serving",
        "claim": "llama",
        "sub_path": "meta/llama",
        "mount_path": "/opt/ml/model",
        "node": None,
    }
    args.update(changes)
    return verify_pod(**args)


def test_pod_defaults() -> None:
    pod = _pod()
    spec = pod["spec"]
    container = spec["containers"][0]
    assert container["image"] == "busybox:1.36"
    assert spec["activeDeadlineSeconds"] == 120
    assert "affinity" not in spec and "nodeName" not in spec
    # Without a user the image's user runs, with the default capabilities a root engine has.
    assert spec["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert "capabilities" not in container["securityContext"]


def test_pod_as_root_user() -> None:
    pod = _pod(run_as_user=0)
    assert pod["spec"]["securityContext"]["runAsUser"] == 0
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is False
    assert "capabilities" not in pod["spec"]["containers"][0]["securityContext"]


@pytest.mark.parametrize("sub_path", [None, ""], ids=["none", "empty"])
def test_pod_without_sub_path_mounts_the_root(sub_path: str | None) -> None:
    mount = _pod(sub_path=sub_path)["spec"]["containers"][0]["volumeMounts"][0]
    assert mount == {"name": "model", "mountPath": "/opt/ml/model", "readOnly": True}


def test_pod_label_for_a_long_claim() -> None:
    claim = "c" * 100
    value = _pod(claim=claim)["metadata"]["labels"]["ome-pvc.io/verify"]
    assert len(value) <= 63
    assert value.startswith("cccc")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mount_path": "opt/ml/model"}, "mount path 'opt/ml/model' is not absolute"),
        ({"mount_path": "/opt/ml/model/"}, "not normalised"),
        ({"sub_path": "../secrets"}, "'..'"),
        ({"sub_path": "/meta"}, "starts with '/'"),
        ({"claim": "Llama"}, "claim name 'Llama'"),
        ({"namespace": "a.b"}, "namespace 'a.b'"),
        ({"name": "Verify"}, "pod name 'Verify'"),
        ({"node": "GPU_1"}, "node 'GPU_1'"),
        ({"image": " "}, "image is empty"),
        ({"timeout_s": 0}, "timeout 0s"),
        ({"run_as_user": -1}, "user id -1"),
    ],
    ids=[
        "relative-mount",
        "mount-trailing-slash",
        "sub-path-dotdot",
        "sub-path-absolute",
        "claim",
        "namespace",
        "pod-name",
        "node",
        "image",
        "timeout",
        "uid",
    ],
)
def test_pod_refuses_bad_input(changes: dict[str, Any], message: str) -> None:
    with raises_exactly(InputError) as err:
        _pod(**changes)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("claim", "token"),
    [("llama", "x7k2p"), ("c" * 253, "x7k2p"), ("a" * 40 + "." + "b" * 40, "q1w2e")],
    ids=["short", "longest", "cut-near-dot"],
)
def test_pod_name(claim: str, token: str) -> None:
    name = v.verify_pod_name(claim, token)
    assert len(name) <= 63
    assert DNS_SUBDOMAIN.fullmatch(name), name
    assert name.startswith("ome-pvc-verify-")
    assert name.endswith(f"-{token}")
    if claim == "llama":
        assert name == "ome-pvc-verify-llama-x7k2p"


# --- the script, run for real ------------------------------------------------------------------


def run_script(shell: Shell, mount_path: Path, as_user: int | None = None) -> str:
    """Run the pod's own command, with `mount_path` standing in for the volume mount."""
    command = _pod(mount_path=str(mount_path))["spec"]["containers"][0]["command"]
    done = shell.run(command, as_user, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def write_model(
    directory: Path,
    *,
    config: bool = True,
    tokenizer: tuple[str, ...] = ("tokenizer.json", "tokenizer_config.json"),
    weights: dict[str, int] | None = None,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    if config:
        (directory / "config.json").write_text('{"model_type": "llama"}\n')
    for name in tokenizer:
        (directory / name).write_text("{}\n")
    sizes = {"model-00001-of-00002.safetensors": 5000, "model-00002-of-00002.safetensors": 3000}
    for name, size in (sizes if weights is None else weights).items():
        (directory / name).write_bytes(b"\0" * size)
    return directory


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


def oks(checks: list[Check]) -> dict[str, bool]:
    return {check.name: check.ok for check in checks}


@dataclasses.dataclass(frozen=True)
class Case:
    build: Callable[[Path], Path]  # the test's directory → the directory to mount
    sub_path: str | None
    ok: dict[str, bool]
    detail: dict[str, str] = dataclasses.field(default_factory=dict)  # check → substring
    fix: dict[str, str] = dataclasses.field(default_factory=dict)  # check → substring


ALL_OK = {"mount": True, "config.json": True, "tokenizer": True, "weights": True, "identity": True}


def _nested(root: Path) -> Path:
    write_model(root / "meta" / "llama-3-2-1b-instruct")
    (root / "README.md").write_text("models\n")
    return root


def _weights_below(root: Path) -> Path:
    write_model(root, weights={})
    write_model(root / "weights", config=False, tokenizer=())
    return root


def _dangling_tokenizer(root: Path) -> Path:
    write_model(root, tokenizer=())
    (root / "tokenizer.json").symlink_to("../../blobs/4f3a")
    return root


def _config_directory(root: Path) -> Path:
    write_model(root, config=False)
    (root / "config.json").mkdir()
    return root


def _empty(root: Path) -> Path:
    root.mkdir()
    return root


CASES = {
    "good": Case(
        write_model,
        "meta/llama",
        ALL_OK,
        detail={
            "weights": "2 files, 7.8 KiB",
            "tokenizer": "tokenizer.json, tokenizer_config.json",
            "mount": ": 5 entries",
        },
    ),
    "bin-weights-and-sentencepiece": Case(
        lambda d: write_model(
            d, tokenizer=("tokenizer.model",), weights={"pytorch_model.bin": 2048}
        ),
        None,
        ALL_OK,
        detail={"weights": "1 files, 2.0 KiB", "tokenizer": "tokenizer.model"},
    ),
    "missing-config": Case(
        lambda d: write_model(d, config=False),
        "meta/llama",
        {**ALL_OK, "config.json": False},
        detail={"config.json": "no config.json at sub-path 'meta/llama'"},
        fix={"config.json": "the top level holds model-0000"},
    ),
    "missing-tokenizer": Case(
        lambda d: write_model(d, tokenizer=()),
        "meta/llama",
        {**ALL_OK, "tokenizer": False},
        fix={"tokenizer": "copy the tokenizer files"},
    ),
    "empty-directory": Case(
        _empty,
        "meta/llama",
        {
            "mount": False,
            "config.json": False,
            "tokenizer": False,
            "weights": False,
            "identity": True,
        },
        detail={"mount": "is empty", "config.json": "not checked", "weights": "not checked"},
        fix={"mount": "the kubelet creates a missing sub-path as an empty directory"},
    ),
    "model-one-level-too-high": Case(
        _nested,
        "models",
        {**ALL_OK, "config.json": False, "tokenizer": False, "weights": False},
        fix={
            "config.json": "use sub-path models/meta/llama-3-2-1b-instruct",
            "weights": "same cause as config.json",
        },
    ),
    "weights-in-a-nested-directory": Case(
        _weights_below,
        "llama",
        {**ALL_OK, "weights": False},
        detail={"weights": "no *.safetensors or *.bin files at sub-path 'llama'"},
        fix={"weights": "weight files are in weights/, not next to config.json"},
    ),
    "dangling-symlink": Case(
        _dangling_tokenizer,
        "llama",
        {**ALL_OK, "tokenizer": False},
        detail={"tokenizer": "tokenizer.json is not readable"},
        fix={"tokenizer": "symlink to ../../blobs/4f3a"},
    ),
    "config-is-a-directory": Case(
        _config_directory,
        "llama",
        {**ALL_OK, "config.json": False},
        fix={"config.json": "is a directory"},
    ),
    "mount-missing": Case(
        lambda d: d / "absent",
        "llama",
        {
            "mount": False,
            "config.json": False,
            "tokenizer": False,
            "weights": False,
            "identity": True,
        },
        detail={"mount": "is not a directory"},
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_script_on_a_directory(case: Case, shell: Shell, tmp_path: Path) -> None:
    mount = case.build(tmp_path / "model")
    checks = parse_verify_output(run_script(shell, mount), sub_path=case.sub_path)
    assert oks(checks) == case.ok
    named = by_name(checks)
    for name, text in case.detail.items():
        assert text in named[name].detail, named[name]
    for name, text in case.fix.items():
        assert text in (named[name].fix or ""), named[name]
    for check in checks:
        # A failure with a cause of its own says what to do; "not checked" points at the mount.
        if not check.ok and not check.detail.startswith("not checked"):
            assert check.fix, check
    assert named["identity"].detail.startswith(f"ran as uid {os.getuid()} gid {os.getgid()}")
    assert v.checks_passed(checks) is all(case.ok.values())


def test_script_sizes_weights(shell: Shell, tmp_path: Path) -> None:
    mount = write_model(tmp_path / "m", weights={"a.safetensors": 3 * 2**20, "b.bin": 2**20})
    weights = by_name(parse_verify_output(run_script(shell, mount)))["weights"]
    assert weights == Check("weights", True, "2 files, 4.0 MiB")


def test_script_lists_what_it_saw(shell: Shell, tmp_path: Path) -> None:
    mount = tmp_path / "m"
    (mount / "meta").mkdir(parents=True)
    (mount / "notes.txt").write_text("x")
    out = run_script(shell, mount)
    assert "ENTRY meta/" in out.splitlines()
    assert "ENTRY notes.txt" in out.splitlines()
    assert out.splitlines()[-1] == "DONE"


# Permission cases: what to break, which check fails, and what its fix must offer.
@dataclasses.dataclass(frozen=True)
class Denied:
    break_it: Callable[[Path], None]
    check: str
    fix: tuple[str, ...]
    not_in_fix: tuple[str, ...] = ()


def _chmod(
    relative: str, mode: int, owner: tuple[int, int] | None = None
) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        target = root / relative if relative else root
        if owner is not None:
            os.chown(target, *owner)
        target.chmod(mode)

    return apply


DENIED_AS_SELF = {
    "config-mode-000": Denied(
        _chmod("config.json", 0o000),
        "config.json",
        ("is ---------- owned by", "chmod -R a+rX"),
        ("--run-as-user",),
    ),
    "weight-mode-000": Denied(
        _chmod("model-00002-of-00002.safetensors", 0o000), "weights", ("chmod -R a+rX",)
    ),
    "directory-mode-000": Denied(_chmod("", 0o000), "mount", ("chmod -R a+rX",)),
}


def _restore(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755)


@pytest.mark.parametrize("case", DENIED_AS_SELF.values(), ids=DENIED_AS_SELF.keys())
def test_unreadable_as_the_current_user(case: Denied, shell: Shell, tmp_path: Path) -> None:
    if IS_ROOT and not os.access(SETPRIV, os.X_OK):
        pytest.fail("as root these cases need setpriv (util-linux) to drop privileges")
    # Root reads every file whatever its mode bits (CAP_DAC_OVERRIDE), so as root the script
    # runs as an unprivileged user; the base directory must then be open to that user.
    base = Path(tempfile.mkdtemp(prefix="ome-pvc-verify-")) if IS_ROOT else tmp_path
    try:
        base.chmod(0o755)
        mount = write_model(base / "m")
        case.break_it(mount)
        try:
            checks = parse_verify_output(
                run_script(shell, mount, as_user=NOBODY if IS_ROOT else None)
            )
        finally:
            _restore(mount)
    finally:
        if IS_ROOT:
            shutil.rmtree(base)
    _assert_denied(checks, case)


DENIED_AS_NOBODY = {
    "config-mode-000": Denied(
        _chmod("config.json", 0o000),
        "config.json",
        ("is ---------- owned by 0:0", "chmod"),
        ("--run-as-user", "fsGroup"),
    ),
    "weight-owner-and-group-only": Denied(
        _chmod("model-00001-of-00002.safetensors", 0o640, (1234, 5678)),
        "weights",
        ("-rw-r----- owned by 1234:5678", "--run-as-user 1234", "group 5678 (fsGroup"),
    ),
    "tokenizer-owner-only": Denied(
        _chmod("tokenizer.json", 0o600, (1234, 5678)),
        "tokenizer",
        ("--run-as-user 1234",),
        ("fsGroup",),
    ),
    "directory-owner-only": Denied(
        _chmod("", 0o700), "mount", ("drwx------ owned by 0:0", "--run-as-user 0")
    ),
}


@pytest.mark.skipif(
    not IS_ROOT or not os.access(SETPRIV, os.X_OK),
    reason="needs root and setpriv to run the script as an unprivileged user",
)
@pytest.mark.parametrize("case", DENIED_AS_NOBODY.values(), ids=DENIED_AS_NOBODY.keys())
def test_unreadable_as_an_unprivileged_user(case: Denied, shell: Shell) -> None:
    # Not under tmp_path: pytest's base directory is closed to other users.
    base = Path(tempfile.mkdtemp(prefix="ome-pvc-verify-"))
    try:
        base.chmod(0o755)
        mount = write_model(base / "m")
        _restore(mount)
        case.break_it(mount)
        out = run_script(shell, mount, as_user=NOBODY)
    finally:
        shutil.rmtree(base)
    checks = parse_verify_output(out)
    assert by_name(checks)["identity"].detail.startswith(f"ran as uid {NOBODY} gid {NOBODY}")
    _assert_denied(checks, case)


def _assert_denied(checks: list[Check], case: Denied) -> None:
    failed = [check.name for check in checks if not check.ok]
    if case.check == "mount":
        assert failed == ["mount", "config.json", "tokenizer", "weights"]
    else:
        assert failed == [case.check]
    check = by_name(checks)[case.check]
    assert check.fix is not None
    for text in case.fix:
        assert text in check.fix, check.fix
    for text in case.not_in_fix:
        assert text not in check.fix, check.fix


# --- parsing logs --------------------------------------------------------------------------------


def test_no_output_is_one_failed_check() -> None:
    checks = parse_verify_output("")
    assert checks == [
        Check(
            "output",
            False,
            "the pod printed no check results",
            "look at the pod's events and log (image pull, scheduling, mount errors)",
        )
    ]


def test_a_cut_off_log_says_so() -> None:
    log = "CHECK identity ok uid=0 gid=0 groups=0\nCHECK mount ok entries=3\nCHECK config.json ok\n"
    checks = by_name(parse_verify_output(log))
    assert checks["config.json"].ok
    assert checks["weights"] == Check("weights", False, "no result (the script stopped early)")
    assert checks["script"].ok is False
    assert "--timeout" in (checks["script"].fix or "")


def test_noise_and_crlf_are_tolerated() -> None:
    log = (
        "some warning from the runtime\r\n"
        "CHECK identity ok uid=1000 gid=1000 groups=1000,44\r\n"
        "DETAIL mount path /opt/ml/model\r\n"
        "CHECK mount ok entries=4\r\n"
        "CHECK config.json ok\r\n"
        "CHECK tokenizer ok files=tokenizer.json\r\n"
        "CHECK weights ok count=4 bytes=16060522496\r\n"
        "DONE\r\n"
    )
    assert parse_verify_output(log) == [
        Check("mount", True, "/opt/ml/model: 4 entries"),
        Check("config.json", True, "present and readable"),
        Check("tokenizer", True, "tokenizer.json"),
        Check("weights", True, "4 files, 15.0 GiB"),
        Check("identity", True, "ran as uid 1000 gid 1000 groups 1000,44"),
    ]


@pytest.mark.parametrize(
    ("mode", "offers", "withholds"),
    [
        ("-rw-r-----", ("--run-as-user 1000", "group 2000"), ()),
        ("-rw-------", ("--run-as-user 1000",), ("group 2000",)),
        ("----r-----", ("group 2000",), ("--run-as-user",)),
        ("----------", ("chmod -R a+rX",), ("--run-as-user", "group 2000")),
    ],
    ids=["owner-and-group", "owner", "group", "nobody"],
)
def test_permission_fix_offers_what_would_work(
    mode: str, offers: tuple[str, ...], withholds: tuple[str, ...]
) -> None:
    log = "\n".join(
        [
            "CHECK identity ok uid=65532 gid=65532 groups=65532",
            "CHECK mount ok entries=3",
            "CHECK config.json unreadable",
            "DETAIL config.json file config.json",
            f"DETAIL config.json mode {mode}",
            "DETAIL config.json owner 1000:2000",
            "DETAIL config.json reason unreadable",
            "CHECK tokenizer ok files=tokenizer.json",
            "CHECK weights ok count=1 bytes=10",
            "DONE",
        ]
    )
    config = by_name(parse_verify_output(log))["config.json"]
    assert config.ok is False
    assert config.detail == "config.json is not readable"
    fix = config.fix or ""
    assert f"is {mode} owned by 1000:2000 and the pod ran as uid 65532 gid 65532" in fix
    assert "chmod -R a+rX" in fix
    for text in offers:
        assert text in fix
    for text in withholds:
        assert text not in fix


@pytest.mark.parametrize(
    ("sub_path", "found", "below", "suggested"),
    [
        ("models", ["meta/llama", "meta"], "meta", "models/meta"),
        (None, ["a/b/c", "x/y"], "x/y", "x/y"),
        ("", ["llama"], "llama", "llama"),
    ],
    ids=["shallowest-wins", "no-sub-path", "empty-sub-path"],
)
def test_sub_path_suggestion(
    sub_path: str | None, found: list[str], below: str, suggested: str
) -> None:
    lines = ["CHECK mount ok entries=1", "ENTRY meta/", "CHECK config.json missing"]
    lines += [f"FOUND config.json {d}" for d in found]
    lines += ["CHECK tokenizer missing", "CHECK weights missing count=0", "DONE"]
    checks = by_name(parse_verify_output("\n".join(lines), sub_path=sub_path))
    assert checks["config.json"].fix == (
        f"config.json is in {below}/ below the mount: use sub-path {suggested}"
    )
    assert checks["weights"].fix == "same cause as config.json: check the sub-path"


def test_many_entries_are_summarised() -> None:
    lines = ["CHECK mount ok entries=14", *[f"ENTRY dir{i}/" for i in range(14)]]
    lines += [
        "CHECK config.json missing",
        "CHECK tokenizer missing",
        "CHECK weights missing",
        "DONE",
    ]
    fix = by_name(parse_verify_output("\n".join(lines)))["config.json"].fix or ""
    assert "dir0/, dir1/" in fix
    assert "dir9/ and 4 more" in fix
    assert "dir10/" not in fix


def test_empty_volume_without_sub_path() -> None:
    log = "CHECK mount empty\nCHECK config.json skipped\nCHECK tokenizer skipped\n"
    log += "CHECK weights skipped\nDONE\n"
    mount = parse_verify_output(log)[0]
    assert mount.ok is False
    assert mount.fix == "copy the model files to the PV root on every node the PV allows"


# --- the engine, the pod's state, the output ---------------------------------------------------


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        ({"storageUri": "hf://x", "path": "/raid/models/x"}, "/raid/models/x"),
        ({"storageUri": "pvc://ns:c/x"}, "/opt/ml/model"),
        ({"storageUri": "hf://x"}, None),
    ],
    ids=["host-path", "native-pvc", "unknown"],
)
def test_model_mount_path(storage: dict[str, str], expected: str | None) -> None:
    assert v.model_mount_path({"spec": {"storage": storage}}) == expected


def test_engine_identity() -> None:
    deployment = factories.engine_deployment("llama", "llama-1b", "/raid/models/meta/llama-1b")
    assert v.engine_identity(deployment) == ("/raid/models/meta/llama-1b", None)
    spec = deployment["spec"]["template"]["spec"]
    spec["securityContext"] = {"runAsUser": 1000}
    assert v.engine_identity(deployment)[1] == 1000
    spec["containers"][0]["securityContext"] = {"runAsUser": 2000}  # the container's wins
    assert v.engine_identity(deployment)[1] == 2000


def pod(status: dict[str, Any], node: str | None = None) -> dict[str, Any]:
    return {"spec": {"nodeName": node} if node else {}, "status": status}


UNSCHEDULED = {
    "phase": "Pending",
    "conditions": [{"type": "PodScheduled", "status": "False", "message": "0/3 nodes fit"}],
}
PULL_FAILED = {
    "phase": "Pending",
    "containerStatuses": [
        {"state": {"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}}}
    ],
}
CREATING = {
    "phase": "Pending",
    "containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}],
}


@pytest.mark.parametrize(
    ("obj", "state", "is_finished"),
    [
        (None, "the pod was deleted", True),
        (pod(UNSCHEDULED), "not scheduled: 0/3 nodes fit", False),
        (pod(PULL_FAILED, "n1"), "ImagePullBackOff: no such image", True),
        (pod(CREATING, "n1"), "ContainerCreating", False),
        (pod({"phase": "Running"}, "n1"), "still running on n1", False),
        (pod({"phase": "Succeeded"}, "n1"), "Succeeded on n1", True),
        (pod({"phase": "Failed"}, "n1"), "Failed on n1", True),
    ],
    ids=["deleted", "unscheduled", "pull", "creating", "running", "succeeded", "failed"],
)
def test_pod_states(obj: dict[str, Any] | None, state: str, is_finished: bool) -> None:
    assert v.pod_state(obj) == state
    assert v.finished(obj) is is_finished


def test_render_checks_lists_fixes_for_failures_only() -> None:
    checks = [
        Check("mount", True, "/m: 3 entries"),
        Check("config.json", False, "no config.json", "use sub-path meta/llama"),
    ]
    text = render_checks(checks, Palette(False))
    assert text.splitlines() == [
        "CHECK         RESULT   DETAIL",
        "mount         ok       /m: 3 entries",
        "config.json   FAILED   no config.json",
        "",
        "Fixes:",
        "  config.json: use sub-path meta/llama",
    ]


def test_verify_report_keeps_the_documented_keys_in_order() -> None:
    run = v.VerifyRun("c", "ns", "ome-pvc-verify-c-x", "n1", "meta/llama", "/m", "busybox", 1000)
    checks = [Check("mount", True, "ok"), Check("weights", False, "none", "copy them")]
    report = v.verify_report(run, checks)
    assert list(report) == [
        "claim", "namespace", "pod", "node", "subPath", "mountPath", "image", "runAsUser",
        "passed", "checks",
    ]  # fmt: skip
    assert report["passed"] is False
    assert report["checks"][1] == {
        "name": "weights",
        "ok": False,
        "detail": "none",
        "fix": "copy them",
    }


@pytest.mark.parametrize(
    ("pod", "said"),
    [
        ({"status": {"phase": "Pending"}}, "waiting to be scheduled"),
        (
            {"spec": {"nodeName": "n1", "containers": [{"image": "busybox:1.36"}]},
             "status": {"phase": "Pending"}},
            "scheduled on n1; pulling busybox:1.36 and mounting the claim",
        ),
        (
            {"spec": {"nodeName": "n1"}, "status": {"phase": "Pending", "containerStatuses": [
                {"state": {"waiting": {"reason": "ErrImagePull", "message": "no such image"}}}]}},
            "on n1: ErrImagePull: no such image",
        ),
        ({"spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}, "running the checks on n1"),
        ({"spec": {"nodeName": "n1"}, "status": {"phase": "Succeeded"}}, "finished on n1"),
    ],
    ids=["unscheduled", "pulling", "image-error", "running", "finished"],
)  # fmt: skip
def test_progress_of_the_pod(pod: dict[str, Any], said: str) -> None:
    assert v.progress(pod) == said
