#!/usr/bin/env python3
"""`kubectl ome-pvc status` against `kubectl get clusterbasemodels` on a seeded control plane.

Seeds the cluster with ClusterBaseModels (status written through the status subresource), fake
nodes (tainted, so no one's pods land there) split into pools, each with the model labels of
its pool's models, and one model-agent ConfigMap per node with an entry per model of its pool.
Then reports the median wall time and the peak RSS of each command, and their ratios. Seeding is
idempotent (server-side apply; models beyond --models are deleted), so runs at several sizes
reuse the objects. Everything seeded carries the label `ome-pvc.io/bench=true`.

    benchmarks/status.py --kubeconfig .local-cluster/kubeconfig [--models 500,2000]
                         [--nodes 200] [--pools 20] [--runs 7] [--cleanup]

Not part of the test suite: it takes a minute and loads the shared control plane.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kubectl_omepvc.api.client import APPLY_PATCH, MERGE_PATCH, Client  # noqa: E402
from kubectl_omepvc.core import naming  # noqa: E402
from kubectl_omepvc.core import resources as r  # noqa: E402
from kubectl_omepvc.options import ConnectionOptions  # noqa: E402

Obj = dict[str, Any]
BENCH_LABEL = "ome-pvc.io/bench"
POOL_LABEL = "ome-pvc.io/bench-pool"
MANAGER = "ome-pvc-bench"
WORKERS = 10  # the client's connection pool holds 5 per CPU; more threads only churn sockets
NODE_SIZE = {"cpu": "64", "memory": "512Gi", "pods": "110", "nvidia.com/gpu": "8"}
TAINT = {"key": BENCH_LABEL, "value": "true", "effect": "NoSchedule"}


def node_name(i: int) -> str:
    return f"bench-node-{i:03d}"


def model_name(i: int) -> str:
    return f"bench-model-{i:04d}"


def pool_of_model(i: int, pools: int) -> int:
    return i % pools


def nodes_of_pool(pool: int, nodes: int, pools: int) -> list[int]:
    return [n for n in range(nodes) if n % pools == pool]


def node_state(model: int, node: int) -> str:
    """A mix: most Ready, every tenth downloading, a few failed on one node."""
    if model % 10 == 3:
        return "Updating"
    if model % 25 == 7 and node % 3 == 0:
        return "Failed"
    return "Ready"


def ts(minutes_ago: float) -> str:
    moment = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def entry(name: str, state: str) -> str:
    value: Obj = {"name": name, "status": state}
    if state == "Updating":
        value["progress"] = {
            "phase": "downloading",
            "totalBytes": 16 * 2**30,
            "completedBytes": 4 * 2**30,
            "totalFiles": 20,
            "completedFiles": 5,
            "speedBytesPerSec": 100 * 2**20,
            "lastUpdated": ts(1),
        }
    return json.dumps(value, separators=(",", ":"))


# -- seeding -----------------------------------------------------------------------------------


def apply(client: Client, ref: r.ResourceRef, obj: Obj, namespace: str | None = None) -> None:
    client.patch(
        ref,
        obj["metadata"]["name"],
        json.dumps(obj),
        namespace=namespace,
        content_type=APPLY_PATCH,
        field_manager=MANAGER,
        force=True,
    )


def apply_status(client: Client, ref: r.ResourceRef, name: str, status: Obj) -> None:
    body = {"apiVersion": ref.api_version, "kind": ref.kind, "metadata": {"name": name}}
    client.request(
        "PATCH",
        ref.path(None, name) + "/status",
        query={"fieldManager": MANAGER, "force": "true"},
        body=json.dumps({**body, "status": status}),
        content_type=APPLY_PATCH,
        verb="patch",
        resource=ref.display,
    )


def run_all(jobs: Iterable[Callable[[], None]]) -> int:
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(job) for job in jobs]
        for future in futures:
            future.result()
    return len(futures)


def seed(client: Client, models: int, nodes: int, pools: int) -> None:
    start = time.monotonic()
    pool_models: dict[int, list[int]] = {}
    for i in range(models):
        pool_models.setdefault(pool_of_model(i, pools), []).append(i)

    def node_job(n: int) -> Callable[[], None]:
        def job() -> None:
            pool = n % pools
            labels = {
                "kubernetes.io/hostname": node_name(n),
                "type": "kwok",
                BENCH_LABEL: "true",
                POOL_LABEL: f"p{pool:02d}",
            }
            for i in pool_models.get(pool, []):
                labels[naming.cluster_model_label_key(model_name(i))] = node_state(i, n)
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                # Not kwok-managed: status reads only node labels, and 200 fake kubelets
                # renewing leases would load the machine that runs both server and clients.
                "metadata": {"name": node_name(n), "labels": labels},
                "spec": {"taints": [TAINT]},
                "status": {"allocatable": NODE_SIZE, "capacity": NODE_SIZE},
            }
            apply(client, r.NODES, node)  # labels of models no longer seeded go too
            # The API server taints new nodes not-ready; no node lifecycle controller lifts it.
            client.patch(
                r.NODES,
                node_name(n),
                {"spec": {"taints": [TAINT]}},
                content_type=MERGE_PATCH,
                field_manager=MANAGER,
            )
            data = {
                naming.cluster_model_configmap_key(model_name(i)): entry(
                    model_name(i), node_state(i, n)
                )
                for i in pool_models.get(pool, [])
            }
            cm = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": node_name(n),
                    "namespace": naming.AGENT_NAMESPACE,
                    "labels": {
                        naming.AGENT_CONFIGMAP_LABEL: "true",
                        "node": node_name(n),
                        BENCH_LABEL: "true",
                    },
                },
                "data": data,
            }
            apply(client, r.CONFIG_MAPS, cm, naming.AGENT_NAMESPACE)

        return job

    def model_job(i: int) -> Callable[[], None]:
        def job() -> None:
            name = model_name(i)
            pool = pool_of_model(i, pools)
            model = {
                "apiVersion": "ome.io/v1beta1",
                "kind": "ClusterBaseModel",
                "metadata": {"name": name, "labels": {BENCH_LABEL: "true"}},
                "spec": {
                    "vendor": "meta",
                    "modelFormat": {"name": "safetensors"},
                    "storage": {
                        "storageUri": f"hf://meta-llama/{name}",
                        "path": f"/raid/models/bench/{name}",
                        "nodeSelector": {POOL_LABEL: f"p{pool:02d}"},
                    },
                },
            }
            apply(client, r.CLUSTER_BASE_MODELS, model)
            members = nodes_of_pool(pool, nodes, pools)
            ready = sorted(node_name(n) for n in members if node_state(i, n) == "Ready")
            failed = sorted(node_name(n) for n in members if node_state(i, n) == "Failed")
            state = "Ready" if ready else ("Failed" if failed else "In_Transit")
            apply_status(
                client,
                r.CLUSTER_BASE_MODELS,
                name,
                {"state": state, "nodesReady": ready, "nodesFailed": failed},
            )

        return job

    namespace = {"apiVersion": "v1", "kind": "Namespace"}
    apply(client, r.NAMESPACES, {**namespace, "metadata": {"name": naming.AGENT_NAMESPACE}})
    count = run_all(model_job(i) for i in range(models))
    extra = [
        m["metadata"]["name"]
        for m in client.list(r.CLUSTER_BASE_MODELS, label_selector=f"{BENCH_LABEL}=true")
        if int(m["metadata"]["name"].rsplit("-", 1)[1]) >= models
    ]
    run_all(functools.partial(_delete, client, r.CLUSTER_BASE_MODELS, name) for name in extra)
    count += run_all(node_job(n) for n in range(nodes))
    print(
        f"seeded {models} models ({len(extra)} removed), {nodes} nodes and their ConfigMaps "
        f"({count} objects) in {time.monotonic() - start:.1f}s",
        file=sys.stderr,
    )


def _delete(client: Client, ref: r.ResourceRef, name: str, namespace: str | None = None) -> None:
    client.delete(ref, name, namespace)


def cleanup(client: Client) -> None:
    selector = f"{BENCH_LABEL}=true"
    jobs: list[Callable[[], None]] = []
    for ref, ns in (
        (r.CLUSTER_BASE_MODELS, None),
        (r.CONFIG_MAPS, naming.AGENT_NAMESPACE),
        (r.NODES, None),
    ):
        for obj in client.list(ref, ns, label_selector=selector):
            name = obj["metadata"]["name"]
            jobs.append(functools.partial(_delete, client, ref, name, ns))
    print(f"deleted {run_all(jobs)} objects", file=sys.stderr)


# -- measuring ---------------------------------------------------------------------------------


def measure(commands: list[list[str]], runs: int) -> list[tuple[float, float]]:
    """Per command, median wall seconds and the median of per-run peak RSS (MiB) over `runs`
    runs. The commands take turns, so a change in the machine's load hits all of them alike.

    The first, unmeasured run also leaves the plugin's bytecode cached, as an installed plugin
    has it: with PYTHONDONTWRITEBYTECODE set (as in some dev shells) every run would compile
    each module edited since the cache was last written, tens of milliseconds.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out = subprocess.DEVNULL
    for argv in commands:
        subprocess.run(argv, stdout=out, stderr=out, env=env, check=True)
    times: list[list[float]] = [[] for _ in commands]
    peaks: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for i, argv in enumerate(commands):
            start = time.perf_counter()
            proc = subprocess.Popen(argv, stdout=out, stderr=out, env=env)
            _, status, usage = os.wait4(proc.pid, 0)
            times[i].append(time.perf_counter() - start)
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                raise SystemExit(f"{' '.join(argv)} failed (exit {proc.returncode})")
            peaks[i].append(usage.ru_maxrss / 1024)  # KiB on Linux
    return [(statistics.median(t), statistics.median(m)) for t, m in zip(times, peaks, strict=True)]


TABLE_COST = """
import sys, time
start = time.perf_counter()
from kubectl_omepvc import printers
from kubectl_omepvc.core import status
headers = status.overview_headers(False)
size = int(sys.argv[1])
rows = [[f"bench-model-{i:04d}", *(f"cell-{i}-{c}" for c in headers[1:])] for i in range(size)]
begin = time.perf_counter()
printers.table(headers, rows)
print(begin - start, time.perf_counter() - begin)
"""


def table_cost(size: int, runs: int) -> tuple[float, float]:
    """Median seconds of the overview's table at `size` rows, in a fresh interpreter each run:
    (importing printers and core.status, then printers.table including its tabulate import)."""
    samples = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", TABLE_COST, str(size)],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(tuple(float(x) for x in done.stdout.split()))
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def default_plugin() -> str:
    # The console script beside this interpreter (a pyenv shim would add a shell's start-up).
    beside = Path(sys.executable).parent / "kubectl-ome_pvc"
    return str(beside) if beside.exists() else shutil.which("kubectl-ome_pvc") or "kubectl-ome_pvc"


def default_kubectl() -> str:
    cached = sorted(Path.home().glob(".cache/kubectl-ome-pvc/bin/v*/kubectl"))
    return str(cached[-1]) if cached else shutil.which("kubectl") or "kubectl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kubeconfig", default=str(REPO / ".local-cluster" / "kubeconfig"))
    parser.add_argument("--context", default="local-admin")
    parser.add_argument("--models", default="2000", help="comma-separated sizes, e.g. 500,2000")
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--pools", type=int, default=20, help="node pools models select")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--kubectl", default=default_kubectl())
    parser.add_argument("--plugin", default=default_plugin())
    parser.add_argument("--no-seed", action="store_true", help="measure what is there")
    parser.add_argument("--cleanup", action="store_true", help="delete the seeded objects")
    args = parser.parse_args()

    client = Client(ConnectionOptions(kubeconfig=args.kubeconfig, context=args.context))
    if args.cleanup:
        cleanup(client)
        return 0
    where = ["--kubeconfig", args.kubeconfig, "--context", args.context]
    print(
        f"{'models':>6} {'command':<36} {'median':>9} {'peak RSS':>10} {'time ratio':>11} "
        f"{'RSS ratio':>10}"
    )
    for size in [int(s) for s in args.models.split(",")]:
        if not args.no_seed:
            seed(client, size, args.nodes, args.pools)
        (base_t, base_m), (t, m) = measure(
            [[args.kubectl, *where, "get", "clusterbasemodels"], [args.plugin, "status", *where]],
            args.runs,
        )
        print(f"{size:>6} {'kubectl get clusterbasemodels':<36} {base_t * 1000:>7.0f}ms "
              f"{base_m:>7.1f}MiB {1.0:>10.2f}x {1.0:>9.2f}x")  # fmt: skip
        print(f"{size:>6} {'kubectl ome-pvc status':<36} {t * 1000:>7.0f}ms {m:>7.1f}MiB "
              f"{t / base_t:>10.2f}x {m / base_m:>9.2f}x")  # fmt: skip
        _, table_t = table_cost(size, args.runs)
        print(f"{size:>6} {'  of which the table (tabulate)':<36} {table_t * 1000:>7.0f}ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
