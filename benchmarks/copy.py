#!/usr/bin/env python3
"""The copy Job's script against `cp -r` and `rsync -a`, over a model-shaped directory.

Generates safetensors shards (random bytes), the index, tokenizer and config files, then times,
interleaved and on the same disk: `cp -r`, `rsync -a`, the copy script (in busybox sh, as in the
image, checksums included) onto an empty target, and the script again over its complete copy.
Each time includes `sync -f` of the target's file system: a copy is done when it is on disk, and
without it cp's number is a memory copy that the kernel finishes later. Goals (issue 15): a fresh
copy at >= 0.9x cp's throughput; a rerun rewrites no file (its time is shown against a fresh
copy). rsync is installed with apt-get when it is missing and this runs as root.

    benchmarks/copy.py [--shards 3] [--shard-mb 200] [--runs 3] [--parallel 2] [--dir DIR]
"""

from __future__ import annotations

import sys

# This file is named copy.py: drop its directory from the path before anything imports the
# standard library's `copy` (dataclasses does), and put the repository there instead.
sys.path.pop(0)
sys.path.insert(0, __file__.rsplit("/", 2)[0])

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kubectl_omepvc.core.copy import SOURCE_MOUNT, TARGET_MOUNT, copy_command

MB = 1 << 20


def make_model(root: Path, shards: int, shard_mb: int) -> int:
    """A model directory as the agent leaves it; its size in bytes."""
    root.mkdir(parents=True)
    block = os.urandom(MB)
    names = [f"model-{i:05d}-of-{shards:05d}.safetensors" for i in range(1, shards + 1)]
    for i, name in enumerate(names):
        with open(root / name, "wb") as f:
            for j in range(shard_mb):
                # a different first 16 bytes per MiB: no two blocks alike (no dedup, no holes)
                f.write(f"{i:08d}{j:08d}".encode() + block[16:])
    weight_map = {f"model.layers.{k}.weight": names[k % shards] for k in range(200)}
    (root / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (root / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 2048}))
    (root / "generation_config.json").write_text("{}\n")
    (root / "tokenizer.json").write_bytes(os.urandom(9 * MB // 2))
    (root / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 131072}))
    (root / "special_tokens_map.json").write_text("{}\n")
    return sum(p.stat().st_size for p in root.iterdir())


def ensure_rsync() -> str | None:
    found = shutil.which("rsync")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    print("installing rsync with apt-get ...", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-qq", "rsync"], capture_output=True, check=False)
    return shutil.which("rsync")


def shells() -> dict[str, tuple[list[str], dict[str, str]]]:
    """The image's shell: busybox sh with busybox's applets alone on PATH (its sha256sum), and
    the same with openssl added (an image that has it: the script then hashes with openssl)."""
    busybox = shutil.which("busybox")
    if busybox is None:
        print("busybox not found: timing the script in /bin/sh", file=sys.stderr)
        return {"sh": (["/bin/sh"], dict(os.environ))}
    out = {}
    for name, extra in (("busybox", None), ("busybox+openssl", shutil.which("openssl"))):
        if name != "busybox" and extra is None:
            continue
        applets = Path(tempfile.mkdtemp(prefix="ome-pvc-busybox-"))
        subprocess.run([busybox, "--install", "-s", str(applets)], check=True)
        if extra is not None:
            (applets / "openssl").symlink_to(extra)
        out[name] = ([str(applets / "sh")], {"PATH": str(applets)})
    return out


def timed(action: Callable[[], None], target: Path) -> float:
    start = time.perf_counter()
    action()
    subprocess.run(["sync", "-f", str(target)], check=True)
    return time.perf_counter() - start


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of every file: a rewritten or replaced file changes one of them."""
    return {
        str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".ome-pvc-copy")
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--shard-mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=2, help="the script's --parallel")
    parser.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    args = parser.parse_args()

    rsync = ensure_rsync()
    hashers = shells()
    work = Path(tempfile.mkdtemp(prefix="ome-pvc-copy-bench-", dir=args.dir))
    try:
        source = work / "node" / "llama"
        size = make_model(source, args.shards, args.shard_mb)
        subprocess.run(["sync", "-f", str(work)], check=True)
        command = copy_command("llama", "bench-node", str(source), args.parallel)
        assert command[4:6] == [SOURCE_MOUNT, TARGET_MOUNT]

        def target(name: str) -> Path:
            path = work / name
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir()
            return path

        def script(hasher: str) -> Callable[[Path], None]:
            sh, env = hashers[hasher]

            def run(dst: Path) -> None:
                argv = [*sh, *command[1:4], str(source), str(dst), *command[6:]]
                done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
                if done.returncode != 0 or "\nDONE " not in "\n" + done.stdout:
                    raise SystemExit(f"the copy script failed: {done.stdout[-500:]}{done.stderr}")

            return run

        def cp(dst: Path) -> None:
            subprocess.run(["cp", "-r", f"{source}/.", str(dst)], check=True)

        def rsync_a(dst: Path) -> None:
            assert rsync is not None
            subprocess.run([rsync, "-a", f"{source}/", f"{dst}/"], check=True)

        cases: dict[str, Callable[[Path], None]] = {"cp -r": cp}
        if rsync:
            cases["rsync -a"] = rsync_a
        for hasher in hashers:
            cases[f"script, {hasher}"] = script(hasher)
        times: dict[str, list[float]] = {name: [] for name in cases}
        reruns: dict[str, list[float]] = {hasher: [] for hasher in hashers}
        rewritten = 0
        for _ in range(args.runs):
            for i, (name, case) in enumerate(cases.items()):
                dst = target(f"t{i}")
                times[name].append(timed(lambda: case(dst), dst))  # noqa: B023
                hasher = name.removeprefix("script, ")
                if hasher in hashers:  # again over its own complete copy: nothing to write
                    before = snapshot(dst)
                    reruns[hasher].append(timed(lambda: script(hasher)(dst), dst))  # noqa: B023
                    after = snapshot(dst)
                    rewritten += sum(1 for k in before if after.get(k) != before[k])

        medians = {name: statistics.median(samples) for name, samples in times.items()}
        cp_s = medians["cp -r"]
        print(
            f"model: {args.shards} shards x {args.shard_mb} MiB + index, tokenizer, config"
            f" = {size / MB:.0f} MiB; {args.runs} run(s), median; --parallel {args.parallel};"
            f" {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}; times include sync -f"
        )
        print(f"{'case':<34} {'seconds':>8} {'MiB/s':>8} {'vs cp':>7} {'vs rsync':>9}")
        rows = list(medians.items())
        for hasher, samples in reruns.items():
            rows.append((f"script, {hasher}, rerun", statistics.median(samples)))
        for name, t in rows:
            vs_rsync = f"{medians['rsync -a'] / t:>8.2f}x" if rsync else ""
            print(f"{name:<34} {t:>8.2f} {size / MB / t:>8.0f} {cp_s / t:>6.2f}x {vs_rsync}")
        for hasher, samples in reruns.items():
            fresh = medians[f"script, {hasher}"]
            met = "met" if cp_s / fresh >= 0.9 else "NOT met"
            print(
                f"{hasher}: fresh copy {cp_s / fresh:.2f}x cp's throughput (goal 0.9x: {met});"
                f" rerun takes {statistics.median(samples) / fresh:.2f}x a fresh copy's time"
            )
        print(f"files rewritten by reruns: {rewritten}")
        return 0 if rewritten == 0 else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
