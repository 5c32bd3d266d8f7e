#!/usr/bin/env python3
"""Mutation score of the pure core, on demand (not in CI: minutes per module on 2 cores).

    python benchmarks/mutation.py                     every module of core/ and strategies/
    python benchmarks/mutation.py kubectl_omepvc/core/selectors.py ...
    python benchmarks/mutation.py --jobs 2 --keep DIR MODULE...   (run it with .venv/bin/python)

mutmut 3 (`pip install mutmut` into the venv) puts small changes into each module (`>` for
`>=`, a dropped condition, another constant) and runs the unit tests against each; a mutant
the tests still pass is a survivor. The run happens in a copy of the tree (git's files, plus a
`[mutmut]` section in the copy's setup.cfg), so the checkout stays clean. The unit tests run
without the krew archive tests (they build a zipapp and test packaging, not behaviour).

Prints, per module: mutants, killed, survived, others (timeouts, suspicious), and the score
(killed / (killed + survived)); then the survivors' names (`mutmut show NAME` in the copy, kept
with --keep, shows each diff).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT = ["kubectl_omepvc/core/*.py", "kubectl_omepvc/strategies/*.py"]
# Packaging tests: a zipapp build per session, nothing a mutant of the core could change.
DESELECT = ["tests/unit/test_dist.py", "tests/unit/test_krew_manifest.py"]


def config(modules: list[str]) -> str:
    """The `[mutmut]` section (setup.cfg lists: one value per line)."""

    def listed(key: str, values: list[str]) -> list[str]:
        return [f"{key} =", *(f"    {v}" for v in values)]

    lines = [
        "",
        "[mutmut]",
        "source_paths = kubectl_omepvc",
        *listed("only_mutate", modules),
        *listed("pytest_add_cli_args_test_selection", ["tests/unit"]),
        *listed(
            "pytest_add_cli_args", ["-p", "no:cacheprovider", *(f"--ignore={d}" for d in DESELECT)]
        ),
    ]
    return "\n".join(lines) + "\n"


def copy_tree(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO, check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    for name in files:
        source = REPO / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", help="globs of modules to mutate")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once (default 1)")
    parser.add_argument("--keep", type=Path, help="run in DIR and keep it (mutmut show ...)")
    args = parser.parse_args()
    modules = args.modules or DEFAULT
    work = args.keep or Path(tempfile.mkdtemp(prefix="omepvc-mutation-"))
    work.mkdir(parents=True, exist_ok=True)
    copy_tree(work)
    with (work / "setup.cfg").open("a") as cfg:
        cfg.write(config(modules))
    mutmut = Path(sys.executable).with_name("mutmut")
    env = {**os.environ, "PYTHONPATH": str(work)}
    try:
        subprocess.run(
            [str(mutmut), "run", "--max-children", str(args.jobs)], cwd=work, env=env, check=False
        )
        results = subprocess.run(
            [str(mutmut), "results", "--all", "true"],
            cwd=work, env=env, check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    report(results)
    return 0


def report(results: str) -> None:
    """`mutmut results --all true` lines are `    <module>.x_<function>__mutmut_<n>: <status>`."""
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    survivors: list[str] = []
    for line in results.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if not sep or "__mutmut_" not in name:
            continue
        module = name.split(".x")[0].split(".xǁ")[0]
        counts[module][status] += 1
        if status == "survived":
            survivors.append(name)
    total = collections.Counter[str]()
    print(f"{'module':48} {'mutants':>7} {'killed':>7} {'survived':>8} {'other':>6} {'score':>6}")
    for module in sorted(counts):
        c = counts[module]
        total.update(c)
        print(row(module, c))
    print(row("all", total))
    if survivors:
        print("\nsurvivors:")
        for name in survivors:
            print(f"  {name}")


def row(name: str, c: collections.Counter[str]) -> str:
    killed, survived = c["killed"], c["survived"]
    other = sum(c.values()) - killed - survived
    judged = killed + survived
    score = f"{100 * killed / judged:.0f}%" if judged else "-"
    return f"{name:48} {sum(c.values()):7} {killed:7} {survived:8} {other:6} {score:>6}"


if __name__ == "__main__":
    sys.exit(main())
