"""`verify`: a throwaway pod that looks at the claim as the engine will, and what its log means.

The pod mounts the claim read-only with the model's sub-path and runs a POSIX `sh` script
(busybox is enough) that prints one line per finding:

    CHECK <check> <status> [key=value ...]   status: ok, missing, unreadable, empty, skipped
    DETAIL <check> <key> <text to end of line>   (file names, modes, symlink targets)
    ENTRY <name>          a top-level entry of the mount (directories end in /)
    FOUND config.json <dir>   a config.json below the mount, relative to it
    DONE                  the script finished

`parse_verify_output` turns that into `Check`s, each failure with the fix to apply;
`verify_report` and the command's table are the two ways they are shown. Also here: where the
engine mounts the model and as whom (`engine_identity`, `model_mount_path`), and what the pod's
state means for the wait (`pod_state`, `hopeless`, `finished`).
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Mapping
from typing import Any

from kubectl_omepvc.core.manifests import (
    HOSTNAME_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    label_value,
    validate_absolute_path,
    validate_dns_label,
    validate_dns_subdomain,
    validate_sub_path,
)
from kubectl_omepvc.core.objects import dig
from kubectl_omepvc.core.served_model import MODEL_ANNOTATION
from kubectl_omepvc.errors import InputError

DEFAULT_MOUNT_PATH = "/mnt/models"
NATIVE_MOUNT_PATH = "/opt/ml/model"  # where OME from main mounts a pvc:// model
ENGINE_CONTAINER = "ome-container"
# Container states that do not get better by waiting: stop at once and say why.
HOPELESS_WAITING = frozenset(
    {
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
DEFAULT_IMAGE = "busybox:1.36"
VERIFY_LABEL = "ome-pvc.io/verify"
VOLUME_NAME = "model"
CONTAINER_NAME = "verify"
CHECK_NAMES = ("mount", "config.json", "tokenizer", "weights", "copy", "identity")
MANIFEST = ".ome-pvc-copy.json"  # what `copy` writes at the sub-path
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")

# $1 is the mount path. Every command used exists in busybox and in POSIX (find's -mindepth and
# -maxdepth excepted, which busybox and GNU both have). Reading one byte with dd is the real test
# of readability: `test -r` trusts mode bits that ACLs, root-squash NFS or SELinux may override.
VERIFY_SCRIPT = r"""
m=$1
echo "CHECK identity ok uid=$(id -u) gid=$(id -g) groups=$(id -G | tr ' ' ',')"
readable() { dd if="$1" of=/dev/null bs=1 count=1 2>/dev/null; }
state() {
  if [ -L "$1" ] && [ ! -e "$1" ]; then echo dangling
  elif [ ! -e "$1" ]; then echo missing
  elif [ -d "$1" ]; then echo directory
  elif readable "$1"; then echo ok
  else echo unreadable
  fi
}
perms() {
  ls -lndL "$2" 2>/dev/null |
    awk -v c="$1" '{print "DETAIL " c " mode " $1; print "DETAIL " c " owner " $3 ":" $4}'
}
describe() {
  echo "DETAIL $1 file ${2#"$m"/}"
  if [ "$3" = dangling ]; then
    echo "DETAIL $1 target $(readlink "$2" 2>/dev/null)"
  else
    perms "$1" "$2"
  fi
  echo "DETAIL $1 reason $3"
}
skip_rest() {
  for c in config.json tokenizer weights; do echo "CHECK $c skipped"; done
  echo DONE
  exit 0
}
echo "DETAIL mount path $m"
if [ ! -d "$m" ]; then echo "CHECK mount missing"; skip_rest; fi
if ! ls -A "$m" >/dev/null 2>&1 || ! (cd "$m") 2>/dev/null; then
  echo "CHECK mount unreadable"
  perms mount "$m"
  skip_rest
fi
entries=$(ls -A "$m" | wc -l | tr -d ' ')
if [ "$entries" -eq 0 ]; then echo "CHECK mount empty"; skip_rest; fi
echo "CHECK mount ok entries=$entries"
ls -Ap "$m" | head -n 50 | while IFS= read -r e; do echo "ENTRY $e"; done

s=$(state "$m/config.json")
case $s in
  ok) echo "CHECK config.json ok" ;;
  missing)
    echo "CHECK config.json missing"
    find "$m" -mindepth 2 -maxdepth 5 -name config.json 2>/dev/null | head -n 5 |
      while IFS= read -r f; do d=${f#"$m"/}; echo "FOUND config.json ${d%/config.json}"; done ;;
  *) echo "CHECK config.json unreadable"; describe config.json "$m/config.json" "$s" ;;
esac

found=""; bad=""; first=""
for t in tokenizer.json tokenizer.model tokenizer_config.json; do
  s=$(state "$m/$t")
  case $s in
    ok) found="$found,$t" ;;
    missing) ;;
    *) bad="$bad,$t"; [ -n "$first" ] || { first=$t; fs=$s; } ;;
  esac
done
if [ -n "$bad" ]; then
  echo "CHECK tokenizer unreadable files=${bad#,}"; describe tokenizer "$m/$first" "$fs"
elif [ -n "$found" ]; then echo "CHECK tokenizer ok files=${found#,}"
else echo "CHECK tokenizer missing"
fi

count=0; bytes=0; bad=0; first=""
for f in "$m"/*.safetensors "$m"/*.bin; do
  [ -e "$f" ] || [ -L "$f" ] || continue
  count=$((count + 1))
  s=$(state "$f")
  if [ "$s" = ok ]; then
    n=$(ls -lnL "$f" | awk '{print $5}')
    bytes=$((bytes + n))
  else
    bad=$((bad + 1)); [ -n "$first" ] || { first=$f; fs=$s; }
  fi
done
if [ "$count" -eq 0 ]; then
  echo "CHECK weights missing count=0"
  f=$(find "$m" -mindepth 2 -maxdepth 5 \( -name '*.safetensors' -o -name '*.bin' \) \
    2>/dev/null | head -n 1)
  if [ -n "$f" ]; then d=${f#"$m"/}; echo "DETAIL weights nested ${d%/*}"; fi
elif [ "$bad" -gt 0 ]; then
  echo "CHECK weights unreadable count=$count unreadable=$bad bytes=$bytes"
  describe weights "$first" "$fs"
else
  echo "CHECK weights ok count=$count bytes=$bytes"
fi

# The manifest `kubectl ome-pvc copy` leaves: every listed file there, at its size (a full
# sha256 pass is the copy's own job; here it would take as long as the copy).
c=$m/.ome-pvc-copy.json
if [ -f "$c" ]; then
  for k in model sourceNode time; do
    echo "DETAIL copy $k $(sed -n "s/^  \"$k\": \"\(.*\)\",\$/\1/p" "$c")"
  done
  sed -n 's/^ *{"path": "\(.*\)", "size": \([0-9]*\), "sha256".*/\2 \1/p' "$c" | {
    n=0; bad=0; first=""
    while IFS= read -r line; do
      n=$((n + 1)); size=${line%% *}; f=${line#* }
      got=$(stat -L -c %s "$m/$f" 2>/dev/null || echo missing)
      if [ "$got" != "$size" ]; then
        bad=$((bad + 1)); [ -n "$first" ] || first="$f (manifest $size bytes, found $got)"
      fi
    done
    if [ "$n" -eq 0 ]; then echo "CHECK copy unreadable files=0"
    elif [ "$bad" -gt 0 ]; then
      echo "CHECK copy mismatch files=$n bad=$bad"; echo "DETAIL copy file $first"
    else echo "CHECK copy ok files=$n"
    fi
  }
fi
echo DONE
"""


def verify_command(mount_path: str) -> list[str]:
    """The container command: the script with the mount path as `$1` (no quoting to get wrong)."""
    return ["/bin/sh", "-c", VERIFY_SCRIPT, "ome-pvc-verify", mount_path]


def verify_pod_name(claim: str, token: str) -> str:
    """`ome-pvc-verify-<claim>-<token>`, kept to 63 characters (the pod's host name)."""
    head = f"ome-pvc-verify-{claim}"[: 62 - len(token)].rstrip("-.")
    return f"{head}-{token}"


def verify_pod(
    name: str,
    namespace: str,
    claim: str,
    sub_path: str | None,
    mount_path: str,
    node: str | None,
    image: str = DEFAULT_IMAGE,
    run_as_user: int | None = None,
    timeout_s: int = 120,
) -> dict[str, Any]:
    """The verification pod: read-only claim at `mount_path`, one run, deleted by the caller."""
    validate_dns_subdomain(name, "pod name")
    validate_dns_label(namespace, "namespace")
    validate_dns_subdomain(claim, "claim name")
    validate_absolute_path(mount_path, "mount path")
    if sub_path:
        validate_sub_path(sub_path)
    if node is not None:
        validate_dns_subdomain(node, "node")
    if not image.strip():
        raise InputError("the image is empty", f"pass --image, such as {DEFAULT_IMAGE}")
    if timeout_s <= 0:
        raise InputError(f"timeout {timeout_s}s is not positive", "pass --timeout such as 2m")
    if run_as_user is not None and run_as_user < 0:
        raise InputError(f"user id {run_as_user} is negative", "pass --run-as-user UID >= 0")

    mount: dict[str, Any] = {"name": VOLUME_NAME, "mountPath": mount_path, "readOnly": True}
    if sub_path:
        mount["subPath"] = sub_path
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": image,
        "command": verify_command(mount_path),
        "volumeMounts": [mount],
        "resources": {
            "requests": {"cpu": "10m", "memory": "16Mi"},
            "limits": {"cpu": "200m", "memory": "64Mi"},
        },
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True},
    }
    pod_security: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if run_as_user is not None:
        pod_security["runAsUser"] = run_as_user
        pod_security["runAsNonRoot"] = run_as_user != 0
        if run_as_user != 0:
            # Harmless for a non-root user (it has no effective capabilities) and lets the pod
            # pass the "restricted" Pod Security level. A root run keeps the default set, so it
            # reads what a root engine reads (CAP_DAC_OVERRIDE), no less.
            container["securityContext"]["capabilities"] = {"drop": ["ALL"]}
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": int(timeout_s),
        "terminationGracePeriodSeconds": 1,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security,
        "containers": [container],
        "volumes": [
            {
                "name": VOLUME_NAME,
                "persistentVolumeClaim": {"claimName": claim, "readOnly": True},
            }
        ],
    }
    if node is not None:
        # Affinity rather than nodeName: the scheduler still checks the PV's node affinity
        # and binds a WaitForFirstConsumer claim, which nodeName would bypass.
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": HOSTNAME_LABEL, "operator": "In", "values": [node]}
                            ]
                        }
                    ]
                }
            }
        }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, VERIFY_LABEL: label_value(claim)},
        },
        "spec": spec,
    }


# --- reading the log ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None


@dataclasses.dataclass
class _Finding:
    """One CHECK line and the DETAIL lines about the same check."""

    status: str
    fields: dict[str, str] = dataclasses.field(default_factory=dict)
    details: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class _Log:
    findings: dict[str, _Finding] = dataclasses.field(default_factory=dict)
    mount_path: str = "the mount path"
    entries: list[str] = dataclasses.field(default_factory=list)
    configs: list[str] = dataclasses.field(default_factory=list)
    done: bool = False


_KEY_VALUE = re.compile(r"([A-Za-z_]+)=(\S*)")


def _read_log(log: str) -> _Log:
    out = _Log()
    details: dict[str, dict[str, str]] = {}
    for raw in log.splitlines():
        line = raw.rstrip("\r")
        word, _, rest = line.partition(" ")
        if word == "CHECK":
            name, _, tail = rest.partition(" ")
            status, _, fields = tail.partition(" ")
            if name and status:
                out.findings[name] = _Finding(status, dict(_KEY_VALUE.findall(fields)))
        elif word == "DETAIL":
            check, _, tail = rest.partition(" ")
            key, _, value = tail.partition(" ")
            details.setdefault(check, {})[key] = value
        elif word == "ENTRY":
            out.entries.append(rest)
        elif word == "FOUND":
            out.configs.append(rest.partition(" ")[2])
        elif line == "DONE":
            out.done = True
    for name, finding in out.findings.items():
        finding.details = details.get(name, {})
    out.mount_path = details.get("mount", {}).get("path", out.mount_path)
    return out


def _human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    units = ("KiB", "MiB", "GiB", "TiB")
    value, index = n / 1024, 0
    while value >= 1024 and index < len(units) - 1:
        value, index = value / 1024, index + 1
    return f"{value:.1f} {units[index]}"


def _join_sub_path(sub_path: str | None, below: str) -> str:
    return posixpath.join(sub_path, below) if sub_path else below


def _entries_text(entries: list[str], limit: int = 10) -> str:
    shown = ", ".join(entries[:limit])
    return shown + (f" and {len(entries) - limit} more" if len(entries) > limit else "")


@dataclasses.dataclass(frozen=True)
class _Context:
    """What every check's fix may need to know about the whole run."""

    where: str  # "sub-path 'meta/llama'" or "the volume root"
    sub_path: str | None
    identity: _Finding | None
    mount_failed: bool
    config_missing: bool
    wrong_sub_path_fix: str | None


def _access_fix(finding: _Finding, ctx: _Context) -> str:
    """How to make an unreadable file readable for the pod's user."""
    details = finding.details
    file = details.get("file", "the file")
    reason = details.get("reason")
    if reason == "dangling":
        return (
            f"{file} is a symlink to {details.get('target') or '?'}, which does not resolve "
            "inside the mounted sub-path (a Hugging Face cache links into ../../blobs): copy "
            "real files into the model directory (cp -L, or download with --local-dir)"
        )
    if reason == "directory":
        return f"{file} is a directory, not a file: point the sub-path at the model's directory"
    ids = ctx.identity.fields if ctx.identity else {}
    mode = details.get("mode", "?")
    owner = details.get("owner", "?:?")
    owner_uid, _, owner_gid = owner.partition(":")
    # Offer only what would work: running as the owner helps when the owner may read, and a
    # supplemental group only when the group may read.
    ways = ["make the files readable on the node (chmod -R a+rX on the model directory)"]
    if len(mode) >= 5 and mode[1] == "r" and owner_uid:
        ways.append(f"run as the owner (--run-as-user {owner_uid})")
    if len(mode) >= 5 and mode[4] == "r" and owner_gid:
        ways.append(f"give the pod group {owner_gid} (fsGroup or supplementalGroups)")
    return (
        f"{file} is {mode} owned by {owner} and the pod ran as uid {ids.get('uid', '?')} "
        f"gid {ids.get('gid', '?')}: " + ", or ".join(ways)
    )


def _mount_check(log: _Log, ctx: _Context) -> Check:
    mount = log.findings.get("mount")
    path = log.mount_path
    if mount is None:
        return Check("mount", False, "no result (the script did not start)")
    if mount.status == "ok":
        entries = mount.fields.get("entries", "?")
        noun = "entry" if entries == "1" else "entries"
        return Check("mount", True, f"{path}: {entries} {noun}")
    if mount.status == "empty":
        if ctx.sub_path:
            fix = (
                f"nothing is at {ctx.where} on this node: the kubelet creates a missing "
                "sub-path as an empty directory, so compare the sub-path with the files under "
                "the PV root, and check the files are on every node the PV allows"
            )
        else:
            fix = "copy the model files to the PV root on every node the PV allows"
        return Check("mount", False, f"{path} is empty", fix)
    if mount.status == "unreadable":
        mount.details.setdefault("file", path)
        return Check("mount", False, f"cannot list {path}", _access_fix(mount, ctx))
    return Check(
        "mount",
        False,
        f"{path} is not a directory in the pod",
        "look at the pod's events: the volume did not mount",
    )


def _file_check(
    name: str, finding: _Finding | None, ctx: _Context, ok_detail: str, missing: str
) -> Check:
    if finding is None:
        return Check(name, False, "no result (the script stopped early)")
    if finding.status == "ok":
        return Check(name, True, ok_detail)
    if finding.status == "skipped" or ctx.mount_failed:
        return Check(name, False, "not checked: the mount check failed")
    if finding.status == "missing":
        if ctx.config_missing and name != "config.json":
            return Check(name, False, missing, "same cause as config.json: check the sub-path")
        return Check(name, False, missing, ctx.wrong_sub_path_fix)
    return Check(
        name,
        False,
        f"{finding.details.get('file', name)} is not readable",
        _access_fix(finding, ctx),
    )


def _wrong_sub_path_fix(log: _Log, sub_path: str | None) -> str:
    if log.configs:
        below = min(log.configs, key=lambda d: (d.count("/"), d))
        return (
            f"config.json is in {below}/ below the mount: "
            f"use sub-path {_join_sub_path(sub_path, below)}"
        )
    if log.entries:
        return (
            f"no config.json within 4 levels below; the top level holds "
            f"{_entries_text(log.entries)}: point the sub-path at the model's own directory "
            "(the one holding config.json)"
        )
    return "point the sub-path at the model's own directory (the one holding config.json)"


def _tokenizer_check(finding: _Finding | None, ctx: _Context) -> Check:
    files = (finding.fields.get("files", "") if finding else "").replace(",", ", ")
    check = _file_check(
        "tokenizer", finding, ctx, files, f"none of {', '.join(TOKENIZER_FILES)} at {ctx.where}"
    )
    if finding is not None and finding.status == "missing" and check.fix is None:
        return dataclasses.replace(
            check,
            fix="copy the tokenizer files (" + ", ".join(TOKENIZER_FILES) + ") next to config.json",
        )
    return check


def _weights_check(finding: _Finding | None, ctx: _Context) -> Check:
    fields = finding.fields if finding else {}
    count = int(fields.get("count") or 0)
    size = int(fields.get("bytes") or 0)
    check = _file_check(
        "weights",
        finding,
        ctx,
        f"{count} files, {_human_bytes(size)}",
        f"no *.safetensors or *.bin files at {ctx.where}",
    )
    if finding is None or check.ok or check.detail.startswith("not checked"):
        return check
    if finding.status == "unreadable":
        bad = fields.get("unreadable", "?")
        return dataclasses.replace(check, detail=f"{bad} of {count} weight files unreadable")
    if check.fix is not None:  # config.json is missing too: the sub-path is the cause
        return check
    nested = finding.details.get("nested")
    if nested:
        fix = (
            f"weight files are in {nested}/, not next to config.json: move them up, or if "
            f"{nested}/ is the model's directory use sub-path "
            f"{_join_sub_path(ctx.sub_path, nested)}"
        )
    else:
        fix = "no weight files below the mount at all: the copy or download may be incomplete"
    return dataclasses.replace(check, fix=fix)


def _copy_check(finding: _Finding) -> Check:
    """The manifest `copy` wrote: each file it lists is there at the size it lists."""
    files = finding.fields.get("files", "0")
    origin = finding.details.get("sourceNode") or "?"
    when = finding.details.get("time") or "?"
    if finding.status == "ok":
        return Check("copy", True, f"{files} files as copied from {origin} at {when}")
    rerun = "rerun `kubectl ome-pvc copy` for this claim: it replaces what differs"
    if finding.status == "mismatch":
        bad = finding.fields.get("bad", "?")
        first = finding.details.get("file", "?")
        detail = f"{bad} of {files} files differ from the copy's manifest (first: {first})"
        return Check("copy", False, detail, rerun)
    return Check("copy", False, f"cannot read the copy's manifest {MANIFEST}", rerun)


def parse_verify_output(log: str, *, sub_path: str | None = None) -> list[Check]:
    """The verification pod's log → one Check per check, each failure with its fix.

    `sub_path` is the sub-path the pod mounted, so a fix can name the corrected one.
    """
    parsed = _read_log(log)
    if not parsed.findings:
        return [
            Check(
                "output",
                False,
                "the pod printed no check results",
                "look at the pod's events and log (image pull, scheduling, mount errors)",
            )
        ]
    mount = parsed.findings.get("mount")
    config = parsed.findings.get("config.json")
    config_missing = config is not None and config.status == "missing"
    ctx = _Context(
        where=f"sub-path {sub_path!r}" if sub_path else "the volume root",
        sub_path=sub_path,
        identity=parsed.findings.get("identity"),
        mount_failed=mount is None or mount.status != "ok",
        config_missing=config_missing,
        wrong_sub_path_fix=_wrong_sub_path_fix(parsed, sub_path) if config_missing else None,
    )
    checks = [
        _mount_check(parsed, ctx),
        _file_check(
            "config.json", config, ctx, "present and readable", f"no config.json at {ctx.where}"
        ),
        _tokenizer_check(parsed.findings.get("tokenizer"), ctx),
        _weights_check(parsed.findings.get("weights"), ctx),
    ]
    copied = parsed.findings.get("copy")
    if copied is not None:
        checks.append(_copy_check(copied))
    if ctx.identity is not None:
        ids = ctx.identity.fields
        checks.append(
            Check(
                "identity",
                True,
                f"ran as uid {ids.get('uid', '?')} gid {ids.get('gid', '?')} "
                f"groups {ids.get('groups', '?')}",
            )
        )
    if not parsed.done:
        checks.append(
            Check(
                "script",
                False,
                "the script did not finish",
                "raise --timeout, or read the pod's log for what stopped it",
            )
        )
    return checks


def checks_passed(checks: list[Check]) -> bool:
    return all(check.ok for check in checks)


@dataclasses.dataclass(frozen=True)
class VerifyRun:
    """Where and how the verify pod looked at the claim."""

    claim: str
    namespace: str
    pod: str
    node: str | None
    sub_path: str | None
    mount_path: str
    image: str
    run_as_user: int | None


def verify_report(run: VerifyRun, checks: list[Check]) -> dict[str, Any]:
    """`-o json|yaml`: what ran where, whether every check passed, and each check."""
    return {
        "claim": run.claim,
        "namespace": run.namespace,
        "pod": run.pod,
        "node": run.node,
        "subPath": run.sub_path,
        "mountPath": run.mount_path,
        "image": run.image,
        "runAsUser": run.run_as_user,
        "passed": checks_passed(checks),
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail, "fix": c.fix} for c in checks],
    }


# -- the engine and the pod ---------------------------------------------------------------------


def model_mount_path(model: Mapping[str, Any] | None) -> str | None:
    """Where OME mounts this model in the engine: storage.path, or OME's default for pvc://."""
    storage = dig(model, "spec", "storage") or {}
    if storage.get("path"):
        return str(storage["path"])
    if str(storage.get("storageUri") or "").startswith("pvc://"):
        return NATIVE_MOUNT_PATH
    return None


def engine_identity(deployment: Mapping[str, Any]) -> tuple[str | None, int | None]:
    """(mount path of the model, user id) of an OME engine Deployment's serving container."""
    template = dig(deployment, "spec", "template") or {}
    spec = template.get("spec") or {}
    model = dig(deployment, "metadata", "annotations", MODEL_ANNOTATION) or dig(
        template, "metadata", "annotations", MODEL_ANNOTATION
    )
    containers = spec.get("containers") or []
    container = next((c for c in containers if c.get("name") == ENGINE_CONTAINER), None)
    if container is None and containers:
        container = containers[0]
    container = container or {}
    mount_path = next(
        (
            str(mount.get("mountPath"))
            for mount in container.get("volumeMounts") or []
            if model and mount.get("name") == model
        ),
        None,
    )
    user = dig(container, "securityContext", "runAsUser")
    if user is None:
        user = dig(spec, "securityContext", "runAsUser")
    return mount_path, int(user) if isinstance(user, int) else None


def pod_state(pod: Mapping[str, Any] | None) -> str:
    """Why a pod has not finished, in one phrase."""
    if pod is None:
        return "the pod was deleted"
    status = pod.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return f"not scheduled: {condition.get('message') or condition.get('reason')}"
    for container in status.get("containerStatuses") or []:
        waiting = dig(container, "state", "waiting")
        if waiting:
            detail = waiting.get("message") or ""
            return f"{waiting.get('reason') or 'waiting'}{': ' + detail if detail else ''}"
    phase = status.get("phase") or "Pending"
    node = dig(pod, "spec", "nodeName")
    if phase == "Running":
        return f"still running on {node}"
    return f"{phase}{' on ' + node if node else ''}"


def progress(pod: Mapping[str, Any] | None) -> str:
    """Where the verify pod is on its way: scheduled, pulling and starting, running, done."""
    status = (pod or {}).get("status") or {}
    phase = status.get("phase") or "Pending"
    node = dig(pod, "spec", "nodeName")
    if phase in ("Succeeded", "Failed"):
        return f"finished on {node}"
    if phase == "Running":
        return f"running the checks on {node}"
    if not node:
        return pod_state(pod) if status.get("conditions") else "waiting to be scheduled"
    for container in status.get("containerStatuses") or []:
        reason = dig(container, "state", "waiting", "reason")
        if reason and reason != "ContainerCreating":
            return f"on {node}: {pod_state(pod)}"
    image = next((c.get("image") for c in dig(pod, "spec", "containers") or []), "the image")
    return f"scheduled on {node}; pulling {image} and mounting the claim"


def hopeless(pod: Mapping[str, Any] | None) -> str | None:
    """A container state that waiting will not fix, as `reason: message`."""
    for container in dig(pod, "status", "containerStatuses") or []:
        waiting = dig(container, "state", "waiting") or {}
        if waiting.get("reason") in HOPELESS_WAITING:
            return f"{waiting['reason']}: {waiting.get('message') or ''}".rstrip(": ")
    return None


def finished(pod: Mapping[str, Any] | None) -> bool:
    return (
        pod is None or dig(pod, "status", "phase") in ("Succeeded", "Failed") or bool(hopeless(pod))
    )
