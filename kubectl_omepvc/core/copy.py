"""`copy`: the Job that puts a model's files from a node's hostPath onto a claim, and its log.

The Job's pod runs on a node where the model is Ready, mounts the model's directory on the node
read-only at /source and the claim read-write at the sub-path at /target, and runs a POSIX `sh`
script (busybox is enough) that prints one line per event:

    TOTAL files=N bytes=B                      what the source holds (before any write)
    FILE <how> <size> <sha256> <path>          how: copied, replaced, skipped (already there)
    PARTIAL bytes=B                            bytes written so far to files still in flight
    ERROR <text>                               why it stopped (exit 1)
    DONE files=N bytes=B copied=C replaced=R skipped=S

Files already on the claim with the same size and sha256 are skipped, so a rerun after an
interruption copies only what is missing. Each file is written to a `.NAME.ome-pvc-part` next to
its place, hashed as it is read (tee into sha256sum), hashed again as written, and renamed over
the old file only when the two agree. The manifest `.ome-pvc-copy.json` (model, node, every
file's size and sha256) is written last, one file per line so `verify`'s script can read it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from kubectl_omepvc.core.manifests import (
    HOSTNAME_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    MODEL_LABEL,
    label_value,
    validate_absolute_path,
    validate_dns_label,
    validate_dns_subdomain,
    validate_sub_path,
)
from kubectl_omepvc.core.objects import dig
from kubectl_omepvc.errors import InputError

DEFAULT_IMAGE = "busybox:1.36"
COPY_LABEL = "ome-pvc.io/copy"
CONTAINER_NAME = "copy"
SOURCE_VOLUME = "source"
TARGET_VOLUME = "target"
SOURCE_MOUNT = "/source"
TARGET_MOUNT = "/target"
SOURCE_PATH_ANNOTATION = "ome-pvc.io/copy-source"
DEFAULT_PARALLEL = 2

# $1 source, $2 target, $3 model, $4 node, $5 node path of the source, $6 parallel copies.
# Every command exists in busybox and POSIX (find -L ... -exec {} + and stat -c, which busybox
# and GNU both have). Nothing is written before the checks that can refuse (config.json, free
# space, writable); nothing outside $2 is ever written.
COPY_SCRIPT = r"""
set -u
umask 022
src=$1 dst=$2 model=$3 node=$4 origin=$5 jobs=$6
M=.ome-pvc-copy.json
P=.ome-pvc-part
fail() { echo "ERROR $*"; exit 1; }
# openssl's sha256 uses the CPU's SHA instructions (several times busybox's speed) when the
# image has it; busybox's sha256sum otherwise. Both print the digest first.
if command -v openssl > /dev/null 2>&1; then hash() { openssl dgst -sha256 -r; }
else hash() { sha256sum; }
fi
sum() { h=$(hash < "$1") || return 1; echo "${h%% *}"; }
[ -d "$src" ] || fail "source $origin is not a directory on node $node"
[ -f "$src/config.json" ] || fail "source $origin on node $node has no config.json"
[ -d "$dst" ] || fail "target $dst is not a directory"
listing=$(cd "$src" && find -L . -type f ! -name "$M" ! -name "*$P" -exec stat -L -c '%s %n' {} + |
  sed 's|^\([0-9]*\) \./|\1 |' | LC_ALL=C sort -k 2) || fail "cannot list source $origin"
[ -n "$listing" ] || fail "source $origin holds no files"
total=$(printf '%s\n' "$listing" | awk '{s += $1} END {printf "%.0f", s}')
count=$(printf '%s\n' "$listing" | wc -l | tr -d ' ')
echo "TOTAL files=$count bytes=$total"
need=$(printf '%s\n' "$listing" | while IFS= read -r line; do
  size=${line%% *} rel=${line#* }
  if [ -f "$dst/$rel" ] && [ "$(stat -c %s "$dst/$rel")" = "$size" ]; then :; else echo "$size"; fi
done | awk '{s += $1} END {printf "%.0f", s}')
free=$(df -Pk "$dst" | awk 'NR == 2 {printf "%.0f", $4 * 1024}')
if [ -n "$free" ] && awk -v n="$need" -v f="$free" 'BEGIN {exit !(n > f)}'; then
  fail "the claim has $free bytes free and the copy needs $need"
fi
probe=$dst/.ome-pvc-copy.probe
( : > "$probe" ) 2>/dev/null ||
  fail "cannot write to the claim at $dst (read-only, or owned by another user)"
rm -f "$probe" "$dst"/.ome-pvc-copy.*.rec

one() {
  rel=$1 size=$2 s=$src/$1 d=$dst/$1 hs=""
  dir=${d%/*}; base=${d##*/}; t=$dir/.$base$P
  if [ -f "$d" ] && [ ! -L "$d" ] && [ "$(stat -c %s "$d")" = "$size" ]; then
    # Both hashes at once (the node's file and the claim's read in parallel), no temp file.
    both=$( { h=$(sum "$d") && echo "d $h"; } & { h=$(sum "$s") && echo "s $h"; }; wait )
    hs=$(printf '%s\n' "$both" | sed -n 's/^s //p')
    hd=$(printf '%s\n' "$both" | sed -n 's/^d //p')
    [ -n "$hs" ] || { echo "ERROR cannot read $rel on the node"; return 1; }
    if [ "$hd" = "$hs" ]; then echo "FILE skipped $size $hs $rel"; return 0; fi
    how=replaced
  elif [ -e "$d" ] || [ -L "$d" ]; then how=replaced
  else how=copied
  fi
  mkdir -p "$dir" || { echo "ERROR cannot create ${dir#"$dst"/}"; return 1; }
  h=$(tee "$t" < "$s" | hash) || { echo "ERROR cannot read $rel on the node"; return 1; }
  h=${h%% *}
  wrote=$(stat -c %s "$t" 2>/dev/null || echo 0)
  if [ "$wrote" != "$size" ]; then
    rm -f "$t"; echo "ERROR wrote $wrote of $size bytes of $rel (is the claim full?)"; return 1
  fi
  if [ -n "$hs" ] && [ "$hs" != "$h" ]; then
    rm -f "$t"; echo "ERROR $rel changed on the node during the copy"; return 1
  fi
  if [ "$(sum "$t")" != "$h" ]; then
    rm -f "$t"; echo "ERROR $rel differs from the source after the copy (sha256)"; return 1
  fi
  mv -f "$t" "$d" || { echo "ERROR cannot rename $rel into place"; return 1; }
  echo "FILE $how $size $h $rel"
}

# Largest file first, each to the least loaded lane: the shards spread evenly over the lanes.
plan=$(printf '%s\n' "$listing" | sort -k 1,1nr | awk -v j="$jobs" '{
  b = 0; for (k = 1; k < j; k++) if (load[k] < load[b]) b = k
  load[b] += $1; print b " " $0 }')
lane() {
  printf '%s\n' "$plan" | while IFS= read -r line; do
    [ "${line%% *}" = "$1" ] || continue
    line=${line#* }
    out=$(one "${line#* }" "${line%% *}") || { echo "$out"; exit 1; }
    echo "$out"
    echo "${out#FILE }" >> "$dst/.ome-pvc-copy.$1.rec"
  done
}

( while sleep 5 > /dev/null 2>&1; do
    b=$(find "$dst" -type f -name "*$P" -exec stat -c %s {} + 2> /dev/null |
      awk '{s += $1} END {printf "%.0f", s}')
    echo "PARTIAL bytes=${b:-0}"
  done ) &
ticker=$!
pids="" k=0
while [ "$k" -lt "$jobs" ]; do lane "$k" & pids="$pids $!"; k=$((k + 1)); done
status=0
for p in $pids; do wait "$p" || status=1; done
kill "$ticker" 2> /dev/null
[ "$status" -eq 0 ] || { rm -f "$dst"/.ome-pvc-copy.*.rec; exit 1; }

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cat "$dst"/.ome-pvc-copy.*.rec | LC_ALL=C sort -k 4 | awk -v model="$model" -v node="$node" \
  -v origin="$origin" -v now="$now" '
  function q(s) {
    gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\t/, "\\t", s); return "\"" s "\""
  }
  { size[NR] = $2; sha[NR] = $3; p = $0; sub(/^[^ ]* [^ ]* [^ ]* /, "", p); path[NR] = p
    bytes += $2 }
  END {
    print "{"
    print "  \"kind\": \"ome-pvc-copy\","
    print "  \"version\": 1,"
    print "  \"model\": " q(model) ","
    print "  \"sourceNode\": " q(node) ","
    print "  \"sourcePath\": " q(origin) ","
    print "  \"time\": " q(now) ","
    printf "  \"count\": %d,\n  \"bytes\": %.0f,\n", NR, bytes
    print "  \"files\": ["
    for (i = 1; i <= NR; i++)
      printf "    {\"path\": %s, \"size\": %s, \"sha256\": \"%s\"}%s\n",
        q(path[i]), size[i], sha[i], (i < NR ? "," : "")
    print "  ]"
    print "}"
  }' > "$dst/$M$P" && mv -f "$dst/$M$P" "$dst/$M" || fail "cannot write the manifest $M"
cat "$dst"/.ome-pvc-copy.*.rec | awk '{s += $2; n[$1]++}
  END {printf "DONE files=%d bytes=%.0f copied=%d replaced=%d skipped=%d\n",
    NR, s, n["copied"], n["replaced"], n["skipped"]}'
rm -f "$dst"/.ome-pvc-copy.*.rec
"""


def copy_command(model: str, node: str, origin: str, parallel: int = DEFAULT_PARALLEL) -> list[str]:
    """The container command: the script, then its arguments (no quoting to get wrong)."""
    return [
        "/bin/sh",
        "-c",
        COPY_SCRIPT,
        "ome-pvc-copy",
        SOURCE_MOUNT,
        TARGET_MOUNT,
        model,
        node,
        origin,
        str(parallel),
    ]


def job_name(claim: str) -> str:
    """`ome-pvc-copy-<claim>`: one copy per claim at a time (a second create is a conflict)."""
    return f"ome-pvc-copy-{claim}"[:63].rstrip("-.")


def copy_job(
    *,
    name: str,
    namespace: str,
    claim: str,
    sub_path: str,
    model: str,
    node: str,
    host_path: str,
    image: str = DEFAULT_IMAGE,
    run_as_user: int | None = None,
    parallel: int = DEFAULT_PARALLEL,
    ttl_s: int | None = None,
) -> dict[str, Any]:
    """The copy Job: pinned to `node`, the model's node directory read-only, the claim at
    `sub_path` read-write, one attempt (a rerun resumes, so retries are the user's call)."""
    validate_dns_subdomain(name, "job name")
    validate_dns_label(namespace, "namespace")
    validate_dns_subdomain(claim, "claim name")
    validate_dns_subdomain(node, "node")
    validate_absolute_path(host_path, "source path")
    validate_sub_path(sub_path)
    if not image.strip():
        raise InputError("the image is empty", f"pass --image, such as {DEFAULT_IMAGE}")
    if run_as_user is not None and run_as_user < 0:
        raise InputError(f"user id {run_as_user} is negative", "pass --run-as-user UID >= 0")
    if parallel < 1:
        raise InputError(f"--parallel {parallel} is below 1", "pass --parallel 1 or more")
    labels = {
        MANAGED_BY_LABEL: MANAGED_BY,
        COPY_LABEL: label_value(claim),
        MODEL_LABEL: label_value(model),
    }
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": image,
        "command": copy_command(model, node, host_path, parallel),
        "volumeMounts": [
            {"name": SOURCE_VOLUME, "mountPath": SOURCE_MOUNT, "readOnly": True},
            {"name": TARGET_VOLUME, "mountPath": TARGET_MOUNT, "subPath": sub_path},
        ],
        # No CPU limit: hashing is the work, and a throttled copy of 100 GiB takes hours.
        "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True},
    }
    pod_security: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if run_as_user is not None:
        pod_security["runAsUser"] = run_as_user
        pod_security["runAsNonRoot"] = run_as_user != 0
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 5,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security,
        # Affinity, not nodeName: the scheduler still checks the claim's PV can be used there.
        "affinity": {
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
        },
        "containers": [container],
        "volumes": [
            {
                "name": SOURCE_VOLUME,
                "hostPath": {"path": host_path, "type": "Directory"},
            },
            {"name": TARGET_VOLUME, "persistentVolumeClaim": {"claimName": claim}},
        ],
    }
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": {"metadata": {"labels": dict(labels)}, "spec": spec},
    }
    if ttl_s is not None:
        job_spec["ttlSecondsAfterFinished"] = ttl_s
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {SOURCE_PATH_ANNOTATION: f"{node}:{host_path}"},
        },
        "spec": job_spec,
    }


# --- reading the log ---------------------------------------------------------------------------


@dataclasses.dataclass
class CopyProgress:
    """What the copy script's log says so far."""

    total_files: int | None = None
    total_bytes: int | None = None
    files: int = 0  # files done (copied, replaced or skipped)
    bytes: int = 0  # bytes of the files done
    written: int = 0  # bytes of files copied or replaced (not skipped)
    partial: int = 0  # bytes written to files still in flight
    copied: int = 0
    replaced: int = 0
    skipped: int = 0
    error: str | None = None
    done: bool = False

    @property
    def bytes_so_far(self) -> int:
        return self.bytes + self.partial


_FIELDS = re.compile(r"([a-z]+)=(\d+)")


def parse_copy_log(log: str) -> CopyProgress:
    """The script's log → progress; unknown lines (a shell's own messages) are ignored."""
    out = CopyProgress()
    for raw in log.splitlines():
        line = raw.rstrip("\r")
        word, _, rest = line.partition(" ")
        if word == "TOTAL":
            fields = dict(_FIELDS.findall(rest))
            out.total_files = int(fields.get("files", 0))
            out.total_bytes = int(fields.get("bytes", 0))
        elif word == "FILE":
            parts = rest.split(" ", 3)
            if len(parts) < 4 or not parts[1].isdigit():
                continue
            how, size = parts[0], int(parts[1])
            out.files += 1
            out.bytes += size
            out.partial = 0
            if how == "skipped":
                out.skipped += 1
            else:
                out.written += size
                if how == "replaced":
                    out.replaced += 1
                else:
                    out.copied += 1
        elif word == "PARTIAL":
            out.partial = int(dict(_FIELDS.findall(rest)).get("bytes", 0))
        elif word == "ERROR":
            out.error = out.error or rest
        elif word == "DONE":
            out.done = True
    return out


def progress_line(p: CopyProgress, elapsed_s: float) -> str:
    """`12/40 files, 3.1 GiB/14.9 GiB (21%), 310.2 MiB/s, ETA 39s` (what is known so far)."""
    from kubectl_omepvc.core.durations import human_age
    from kubectl_omepvc.core.sizes import human_bytes

    if p.total_bytes is None:
        return "listing the source ..."
    done = min(p.bytes_so_far, p.total_bytes)
    percent = 100 * done // p.total_bytes if p.total_bytes else 100
    text = (
        f"{p.files}/{p.total_files} files, {human_bytes(done)}/{human_bytes(p.total_bytes)}"
        f" ({percent}%)"
    )
    if elapsed_s > 0 and done:
        rate = done / elapsed_s
        text += f", {human_bytes(rate)}/s"
        if not p.done and done < p.total_bytes:
            text += f", ETA {human_age((p.total_bytes - done) / rate)}"
    return text


def progress_report(p: CopyProgress) -> dict[str, Any]:
    """`copy --status -o json|yaml` and the end of a copy: the counts, nothing derived."""
    return {
        "files": {"done": p.files, "total": p.total_files},
        "bytes": {
            "done": min(p.bytes_so_far, p.total_bytes or p.bytes_so_far),
            "total": p.total_bytes,
        },
        "copied": p.copied,
        "replaced": p.replaced,
        "skipped": p.skipped,
        "done": p.done,
        "error": p.error,
    }


# --- the Job's state ---------------------------------------------------------------------------


def job_finished(job: Mapping[str, Any] | None) -> str | None:
    """ "Complete" or "Failed" once the Job controller says so; None while it runs."""
    for condition in dig(job, "status", "conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return str(condition["type"])
    return None


# --- the checks before any write -----------------------------------------------------------------


def choose_node(
    model: str,
    nodes_ready: list[str],
    nodes: Mapping[str, Mapping[str, Any]],
    label_key: str,
    from_node: str | None,
) -> str:
    """The source node: `from_node`, or the first Ready, schedulable node OME reports Ready for
    the model. Both OME's `status.nodesReady` and the agent's node label must say Ready (the
    label is cleared when the agent removes the files; the status lags)."""
    from kubectl_omepvc.core import selectors

    if not nodes_ready:
        raise InputError(
            f"model {model} is Ready on no node (status.nodesReady is empty)",
            "wait until the model-agent has downloaded it (`kubectl ome-pvc status`)",
        )

    def why_not(name: str) -> str | None:
        node = nodes.get(name)
        if node is None:
            return f"node {name} does not exist"
        label = (dig(node, "metadata", "labels") or {}).get(label_key)
        if label != "Ready":
            return f"node {name}'s label {label_key} is {label or 'absent'}, not Ready"
        if not selectors.schedulable(node):
            return f"node {name} is not Ready or is cordoned"
        return None

    if from_node is not None:
        if from_node not in nodes_ready:
            raise InputError(
                f"node {from_node} does not hold model {model} (Ready on {', '.join(nodes_ready)})",
                "pass --from-node with one of those nodes",
            )
        problem = why_not(from_node)
        if problem:
            raise InputError(f"cannot copy from {from_node}: {problem}", "pick another node")
        return from_node
    problems = []
    for name in sorted(nodes_ready):
        problem = why_not(name)
        if problem is None:
            return name
        problems.append(problem)
    raise InputError(
        f"no node can serve as the source of model {model}: {'; '.join(problems)}",
        "wait for the model-agent, or uncordon a node that holds it",
    )


def claim_problem(claim: Mapping[str, Any]) -> str | None:
    """Why the copy cannot write to this claim, or None."""
    phase = dig(claim, "status", "phase")
    if phase != "Bound":
        return f"it is {phase or 'in no phase'}, not Bound"
    modes = dig(claim, "status", "accessModes") or dig(claim, "spec", "accessModes") or []
    if modes and all(mode == "ReadOnlyMany" for mode in modes):
        return "it is ReadOnlyMany: no pod may write to it"
    return None


def size_problem(claim: Mapping[str, Any], model_bytes: int | None) -> str | None:
    """Why the claim cannot hold a model of `model_bytes` (the agent's report), or None.

    The claim's capacity as bound (else as requested) is what it holds at most; the copy's own
    first step still compares the space left with what it will write (an NFS export ignores
    the claim's size, and files may be there already).
    """
    from kubectl_omepvc.core.quantity import QuantityError, parse_bytes
    from kubectl_omepvc.core.sizes import human_bytes

    if not model_bytes:
        return None
    size = dig(claim, "status", "capacity", "storage") or dig(
        claim, "spec", "resources", "requests", "storage"
    )
    try:
        capacity = parse_bytes(str(size)) if size else None
    except QuantityError:
        return None
    if capacity is None or capacity >= model_bytes:
        return None
    return f"it holds {size} and the model is {human_bytes(model_bytes)} (the model-agent's report)"
