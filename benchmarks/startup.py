#!/usr/bin/env python3
"""Start-up cost of the plugin against kubectl's own, on this machine.

Prints the median wall time of each command over N runs and the ratio to
`kubectl version --client`. Goal (issue 2): `kubectl ome-pvc --help` within 1.5x kubectl.

    benchmarks/startup.py [--runs 20] [--kubectl PATH] [--plugin PATH]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def median_seconds(argv: list[str], runs: int) -> float:
    subprocess.run(argv, capture_output=True, check=True)  # warm the page cache first
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--kubectl", default=shutil.which("kubectl") or "kubectl")
    parser.add_argument("--plugin", default=shutil.which("kubectl-ome_pvc") or "kubectl-ome_pvc")
    args = parser.parse_args()

    baseline = median_seconds([args.kubectl, "version", "--client"], args.runs)
    cases = {
        # The floor: the interpreter alone, with the same site-packages start-up.
        "python3 -c pass": [sys.executable, "-c", "pass"],
        # What the first table costs: printers.table imports tabulate only then (issue 17).
        "python3 -c 'import tabulate'": [sys.executable, "-c", "import tabulate"],
        "kubectl ome-pvc --help": [args.plugin, "--help"],
        "kubectl ome-pvc version --client": [args.plugin, "version", "--client"],
        "kubectl ome-pvc status --help": [args.plugin, "status", "--help"],
    }
    # "above python3": what the plugin adds to the interpreter's own start (the part it controls;
    # the floor varies with the machine's site-packages, e.g. .pth hooks that import modules).
    print(f"{'command':<36} {'median':>9} {'vs kubectl':>11} {'above python3':>14}")
    print(f"{'kubectl version --client':<36} {baseline * 1000:>7.1f}ms {1.0:>10.2f}x")
    floor: float | None = None
    for label, argv in cases.items():
        try:
            t = median_seconds(argv, args.runs)
        except subprocess.CalledProcessError:
            print(f"{label:<36} {'failed':>9}")
            continue
        above = "" if floor is None else f"{(t - floor) * 1000:>12.1f}ms"
        floor = t if floor is None else floor
        print(f"{label:<36} {t * 1000:>7.1f}ms {t / baseline:>10.2f}x {above}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
