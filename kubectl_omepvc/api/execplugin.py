"""kubeconfig `exec` credential plugins, as client-go runs them (plugin/pkg/client/auth/exec).

- The plugin runs when credentials are first needed, again once they pass their
  `expirationTimestamp` (no margin), and again after a 401 answered to the credentials it
  gave last. One run at a time: threads that need credentials meanwhile wait for its answer.
- `interactiveMode`: `Never` (no stdin), `IfAvailable` (stdin when it is a terminal), `Always`
  (refused without a terminal). kubeconfig v1 requires the field; v1beta1 defaults it to
  `IfAvailable` (checked by `kubeconfig.validate_exec`).
- The reply must be an ExecCredential of the apiVersion asked for, with a token or a
  certificate and key (both).
- `provideClusterInfo` passes the cluster as client-go's `ConfigToExecCluster` builds it: the
  server, tls-server-name, insecure-skip-tls-verify, the CA as data (read from the file when
  the kubeconfig names one), proxy-url, and the cluster extension
  `client.authentication.k8s.io/exec` as `config`.
- A missing command shows the kubeconfig's whole `installHint`.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from kubectl_omepvc import errors

API_VERSIONS = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
)
INTERACTIVE_MODES = ("Never", "IfAvailable", "Always")
CLUSTER_EXTENSION = "client.authentication.k8s.io/exec"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


class Credential(NamedTuple):
    """One answer of the plugin: a token and/or a client certificate (cert and key PEM)."""

    token: str | None
    cert_pem: bytes | None
    expires: float | None


def cluster_info(cluster: Mapping[str, Any], ca_data: bytes | None) -> dict[str, Any]:
    """`spec.cluster` of the ExecCredential, as client-go's ConfigToExecCluster fills it."""
    info: dict[str, Any] = {"server": cluster.get("server", "")}
    if cluster.get("tls-server-name"):
        info["tls-server-name"] = cluster["tls-server-name"]
    if cluster.get("insecure-skip-tls-verify"):
        info["insecure-skip-tls-verify"] = True
    if ca_data:
        info["certificate-authority-data"] = base64.b64encode(ca_data).decode()
    if cluster.get("proxy-url"):
        info["proxy-url"] = cluster["proxy-url"]
    if cluster.get("disable-compression"):
        info["disable-compression"] = True
    for entry in cluster.get("extensions") or []:
        if isinstance(entry, Mapping) and entry.get("name") == CLUSTER_EXTENSION:
            info["config"] = entry.get("extension")
    return info


def _parse_time(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class ExecCredentials:
    """Runs the plugin and caches its answer; safe to share between threads."""

    def __init__(
        self,
        spec: Mapping[str, Any],
        cluster: dict[str, Any] | None,
        environ: Mapping[str, str],
        stdin_is_terminal: Callable[[], bool] = lambda: (
            sys.stdin is not None and sys.stdin.isatty()
        ),
    ) -> None:
        self.spec = spec
        self.command = str(spec.get("command") or "")
        self.api_version = str(spec.get("apiVersion") or "")
        self.mode = str(spec.get("interactiveMode") or "IfAvailable")
        self.cluster = cluster  # None unless provideClusterInfo
        self.environ = environ
        self.stdin_is_terminal = stdin_is_terminal
        self.current: Credential | None = None
        self.runs = 0
        self._lock = threading.Lock()

    def credential(self) -> Credential:
        """The cached answer, or a new one when there is none or it has expired."""
        with self._lock:
            current = self.current
            if current is None or (current.expires is not None and time.time() > current.expires):
                current = self._refresh_locked()
            return current

    def after_unauthorized(self, used: Credential) -> bool:
        """After a 401: a new answer unless another thread already got one; True if renewed."""
        with self._lock:
            if self.current is used:
                self._refresh_locked()
            return self.current is not used

    def _interactive(self) -> bool:
        if self.mode == "Never":
            return False
        terminal = self.stdin_is_terminal()
        if self.mode == "Always" and not terminal:
            raise errors.ConfigError(
                f"exec plugin {self.command} needs a terminal"
                " (interactiveMode: Always) and standard input is not one",
                "run the command from a terminal, or set interactiveMode: IfAvailable",
            )
        return terminal

    def _refresh_locked(self) -> Credential:
        interactive = self._interactive()
        spec: dict[str, Any] = {"interactive": interactive}
        if self.cluster is not None:
            spec["cluster"] = self.cluster
        request = {"apiVersion": self.api_version, "kind": "ExecCredential", "spec": spec}
        env = dict(self.environ)
        for item in self.spec.get("env") or []:
            env[str(item.get("name"))] = str(item.get("value", ""))
        env["KUBERNETES_EXEC_INFO"] = json.dumps(request)
        self.runs += 1
        try:
            done = subprocess.run(
                [self.command, *(str(a) for a in self.spec.get("args") or [])],
                env=env,
                stdin=None if interactive else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                check=False,
            )
        except OSError as exc:
            hint = _ANSI.sub("", str(self.spec.get("installHint") or "")).strip()
            raise errors.ConfigError(
                f"cannot run exec credential plugin {self.command} ({exc.strerror})",
                hint or "install it, or fix the kubeconfig user's exec command",
            ) from None
        if done.returncode != 0:
            raise errors.ConfigError(
                f"exec credential plugin {self.command} failed with exit code {done.returncode}"
            )
        self.current = self._parse(done.stdout)
        return self.current

    def _parse(self, stdout: bytes) -> Credential:
        def malformed(what: str) -> errors.ConfigError:
            return errors.ConfigError(
                f"exec credential plugin {self.command} printed {what}",
                "fix or update the plugin; it must print one ExecCredential as JSON",
            )

        try:
            answer = json.loads(stdout)
        except ValueError:
            raise malformed("no JSON") from None
        if not isinstance(answer, dict) or answer.get("kind") != "ExecCredential":
            raise malformed("something other than an ExecCredential")
        if answer.get("apiVersion") != self.api_version:
            raise errors.ConfigError(
                f"exec credential plugin {self.command} answered with apiVersion"
                f" {answer.get('apiVersion')!r}, not {self.api_version} as configured",
                "set the kubeconfig user's exec apiVersion to the one the plugin speaks",
            )
        status = answer.get("status")
        if not isinstance(status, dict):
            raise malformed("an ExecCredential without a status")
        token, cert, key = (
            status.get(k) for k in ("token", "clientCertificateData", "clientKeyData")
        )
        if not all(v is None or isinstance(v, str) for v in (token, cert, key)):
            raise malformed("an ExecCredential whose token or certificate is not a string")
        if not token and not cert and not key:
            raise malformed("an ExecCredential without a token or a certificate and key")
        if bool(cert) != bool(key):
            raise malformed("only a certificate or only a key, not both")
        expires = status.get("expirationTimestamp")
        if expires is not None and _parse_time(expires) is None:
            raise malformed(f"an expirationTimestamp that is not a time ({expires!r})")
        pem = f"{cert}\n{key}\n".encode() if cert and key else None
        return Credential(token or None, pem, _parse_time(expires))
