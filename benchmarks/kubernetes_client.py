#!/usr/bin/env python3
"""Checks each reason the README gives for keeping the official Kubernetes client out.

Installs `kubernetes` (the newest release, or --version) into a throwaway venv under /tmp, never
into the project's environment, and checks it against loopback servers, beside kubectl where
kubectl is on PATH:

    merge      KUBECONFIG=a:b: whose current-context wins (kubectl: the first file's)
    exec       an exec credential plugin that fails: is the request sent anyway, without
               credentials? (kubectl: the command fails, nothing is sent)
    oidc-tls   an oidc refresh with no IdP CA set: is the issuer's certificate checked?
    oidc-save  an oidc refresh with KUBECONFIG=a:b, the user in b: is the new token saved?
    compiled   does the release require a distribution with no pure-Python wheel?
    import     what importing it costs, above the bare interpreter (median of --runs)

One line per reason: `holds` or `does not hold`, and what was seen. Run on demand (a minute,
most of it pip):

    benchmarks/kubernetes_client.py [--version 37.0.2] [--venv DIR] [--runs 10]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Obj = dict[str, Any]


@dataclass
class Seen:
    """What a loopback server was asked: (method, path, Authorization header or None)."""

    url: str = ""
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)


@contextmanager
def serve(tls: ssl.SSLContext | None = None) -> Iterator[Seen]:
    """An API server and OIDC issuer in one: empty lists, discovery, a token endpoint."""
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, body: Obj) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            seen.requests.append(("GET", self.path, self.headers.get("Authorization")))
            if self.path == "/.well-known/openid-configuration":
                self._reply({"issuer": seen.url, "token_endpoint": seen.url + "/token"})
            else:
                self._reply({"kind": "NamespaceList", "apiVersion": "v1", "items": []})

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.requests.append(("POST", self.path, self.headers.get("Authorization")))
            self._reply(
                {
                    "id_token": NEW,
                    "refresh_token": "r2",
                    "access_token": "a",
                    "token_type": "Bearer",
                }
            )

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    seen.url = f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


def jwt(claims: Obj) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln"


EXPIRED = jwt({"sub": "alice", "exp": int(time.time()) - 600})
NEW = jwt({"sub": "alice", "exp": int(time.time()) + 3600})


def kubeconfig(context: str, server: str, user: Obj | None = None, with_user: bool = True) -> Obj:
    """One context `context` on cluster `context`, user `context` (defined here or not)."""
    config: Obj = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "users": [{"name": context, "user": user or {"token": f"token-{context}"}}],
    }
    if not with_user:
        config["users"] = []
    return config


def oidc_user(issuer: str) -> Obj:
    config = {
        "idp-issuer-url": issuer,
        "client-id": "kube",
        "client-secret": "secret",
        "id-token": EXPIRED,
        "refresh-token": "r1",
    }
    return {"auth-provider": {"name": "oidc", "config": config}}


def write(path: Path, config: Obj) -> str:
    path.write_text(json.dumps(config))
    return str(path)


# Run in the throwaway venv: load the kubeconfig as the client does by default, list once.
LIST_NAMESPACES = """
import logging
from kubernetes import client, config
logging.disable(logging.CRITICAL)
try:
    config.load_kube_config()
    print("host", client.Configuration.get_default_copy().host)
    client.CoreV1Api().list_namespace(_request_timeout=5)
except Exception as exc:
    print("error", type(exc).__name__)
"""


@dataclass
class Check:
    tmp: Path
    python: str
    kubectl: str | None

    def client(self, kubeconfig_env: str, **env: str) -> str:
        done = subprocess.run(
            [self.python, "-c", LIST_NAMESPACES],
            env={**os.environ, "KUBECONFIG": kubeconfig_env, "HOME": str(self.tmp), **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return done.stdout.strip()

    def merge(self) -> tuple[bool, str]:
        with serve() as first, serve() as second:
            a = write(self.tmp / "a", kubeconfig("ctx-a", first.url))
            b = write(self.tmp / "b", kubeconfig("ctx-b", second.url))
            out = self.client(f"{a}:{b}")
            used = "b" if second.requests else "a" if first.requests else "neither"
        seen = f"the client used {used}'s current-context ({out.splitlines()[0]})"
        if self.kubectl:
            current = subprocess.run(
                [self.kubectl, "config", "current-context"],
                env={**os.environ, "KUBECONFIG": f"{a}:{b}"},
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            seen += f"; kubectl: {current}"
        return used == "b", seen

    def exec_plugin(self) -> tuple[bool, str]:
        failing = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "false",
                "interactiveMode": "Never",
            }
        }
        with serve() as api:
            path = write(self.tmp / "exec", kubeconfig("exec", api.url, failing))
            self.client(path)
            sent = [r for r in api.requests if r[1].startswith("/api")]
            seen = f"the client sent {len(sent)} request(s), Authorization {[r[2] for r in sent]}"
            if self.kubectl:
                before = len(api.requests)
                done = subprocess.run(
                    [self.kubectl, "get", "namespaces", "--kubeconfig", path],
                    capture_output=True,
                    check=False,
                    timeout=60,
                )
                headers = [r[2] for r in api.requests[before:]]
                seen += f"; kubectl (exit {done.returncode}) sent {len(headers)}: {headers}"
        return any(r[2] is None for r in sent), seen

    def certificate(self) -> ssl.SSLContext:
        subprocess.run(
            [
                "openssl", "req", "-x509", "-nodes", "-days", "1", "-subj", "/CN=idp",
                "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", str(self.tmp / "idp.key"), "-out", str(self.tmp / "idp.crt"),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.tmp / "idp.crt", self.tmp / "idp.key")
        return context

    def oidc_tls(self) -> tuple[bool, str]:
        """The issuer's certificate is self-signed and trusted nowhere: a client that checks it
        never gets as far as sending a request."""
        with serve(self.certificate()) as issuer, serve() as api:
            path = write(self.tmp / "oidc", kubeconfig("oidc", api.url, oidc_user(issuer.url)))
            self.client(path)
            asked = [r[1] for r in issuer.requests]
        seen = f"an issuer with an untrusted certificate was asked {asked or 'nothing'}"
        return "/.well-known/openid-configuration" in asked, seen

    def oidc_save(self) -> tuple[bool, str]:
        """The token endpoint's certificate is made trusted (REQUESTS_CA_BUNDLE), so the refresh
        succeeds; then: was the new id-token written to b, the file defining the user?"""
        results = {}
        with serve(self.certificate()) as issuer, serve() as api:
            user = oidc_user(issuer.url)
            for how in ("one file", "KUBECONFIG=a:b"):
                folder = self.tmp / how.replace(" ", "-").replace(":", "-")
                folder.mkdir()
                b = write(folder / "b", kubeconfig("oidc", api.url, user))
                if how == "one file":
                    env = b
                else:
                    a = write(folder / "a", kubeconfig("oidc", api.url, with_user=False))
                    env = f"{a}:{b}"
                before = len([r for r in issuer.requests if r[0] == "POST"])
                self.client(env, REQUESTS_CA_BUNDLE=str(self.tmp / "idp.crt"))
                refreshed = len([r for r in issuer.requests if r[0] == "POST"]) > before
                saved = NEW in Path(b).read_text()
                results[how] = (refreshed, saved)
        seen = "; ".join(f"{k}: refreshed {r}, saved {s}" for k, (r, s) in results.items())
        merged_refreshed, merged_saved = results["KUBECONFIG=a:b"]
        return merged_refreshed and not merged_saved, seen

    def compiled(self) -> tuple[bool, str]:
        code = (
            "import importlib.metadata as m\n"
            "reqs = m.requires('kubernetes') or []\n"
            "print(m.version('kubernetes'), m.version('pydantic-core'))\n"
            "print(any(r.startswith('pydantic') and 'extra' not in r for r in reqs))\n"
        )
        out = subprocess.run(
            [self.python, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
        version, core_version, required = out[0], out[1], out[2] == "True"
        download = subprocess.run(
            [
                self.python, "-m", "pip", "download", "--quiet", "--no-deps",
                "--only-binary=:all:", "--platform", "any", "--implementation", "py",
                "--abi", "none", "--dest", str(self.tmp / "pure"),
                f"pydantic-core=={core_version}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        pure = download.returncode == 0
        if not pure and "No matching distribution" not in download.stderr:
            return False, f"pip could not tell: {download.stderr.strip().splitlines()[-1:]}"
        seen = (
            f"kubernetes {version} requires pydantic: {required}; pydantic-core {core_version} "
            f"has a pure-Python wheel: {pure}"
        )
        return required and not pure, seen

    def import_cost(self, runs: int) -> tuple[bool, str]:
        """Above each interpreter's bare start, beside the plugin's whole `version --client`
        (this interpreter's console script), measured turn about so load hits both alike."""
        plugin = Path(sys.executable).parent / "kubectl-ome_pvc"
        argvs = [
            [self.python, "-c", "pass"],
            [self.python, "-c", "import kubernetes.client, kubernetes.config"],
            [sys.executable, "-c", "pass"],
            [str(plugin), "version", "--client"],
        ]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        samples: list[list[float]] = [[] for _ in argvs]
        for turn in range(runs + 1):
            for argv, times in zip(argvs, samples, strict=True):
                start = time.perf_counter()
                subprocess.run(argv, check=True, capture_output=True, env=env)
                if turn:  # the first turn writes bytecode
                    times.append(time.perf_counter() - start)
        floor, client, own_floor, own = (statistics.median(t) for t in samples)
        cost, ours = client - floor, own - own_floor
        seen = f"importing kubernetes.client and .config: {cost * 1000:.0f} ms"
        if plugin.exists():
            seen += f"; the plugin's whole `version --client`: {ours * 1000:.0f} ms"
        return cost > 0.1, seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--version", help="a kubernetes release (default: the newest)")
    parser.add_argument("--venv", type=Path, help="reuse this venv (default: a new one in /tmp)")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kubernetes-client-") as scratch:
        tmp = Path(scratch)
        venv = args.venv or tmp / "venv"
        python = str(venv / "bin" / "python")
        if not Path(python).exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            spec = f"kubernetes=={args.version}" if args.version else "kubernetes"
            pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            subprocess.run([*pip, spec], check=True)
        check = Check(tmp, python, shutil.which("kubectl"))
        for name, run in (
            ("merge", check.merge),
            ("exec", check.exec_plugin),
            ("oidc-tls", check.oidc_tls),
            ("oidc-save", check.oidc_save),
            ("compiled", check.compiled),
            ("import", lambda: check.import_cost(args.runs)),
        ):
            holds, seen = run()
            print(f"{name:<10} {'holds' if holds else 'does not hold':<14} {seen}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
