"""kubeconfig resolution exactly as kubectl does it.

The official Python client merges `KUBECONFIG` differently from kubectl (a later file's
`current-context` wins, and it reads the variable once at import), so we merge ourselves and
hand the client a single, already-resolved configuration dict.

kubectl's rules (client-go `clientcmd`):
- `--kubeconfig FILE`: that file only; it must exist.
- else `$KUBECONFIG`: a list split on `:`; missing files are skipped; for every map key and every
  named cluster/user/context, the first file that sets it wins (`current-context` included).
- else `~/.kube/config`.
Relative file references are resolved against the directory of the file that holds them, as
its path was given (a symlinked kubeconfig's own directory, not its target's).

An `oidc` auth-provider refreshes its tokens and, like kubectl, writes them back into the file
that defines the user (`persist_auth_provider_config`); `ResolvedConfig.user_origin` says which.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from kubectl_omepvc import errors
from kubectl_omepvc.options import ConnectionOptions

_NAMED_LISTS = ("clusters", "users", "contexts")
# Where a pod finds its service account (what kubectl falls back to with no kubeconfig).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# Keys inside cluster/user entries that name files, resolved like client-go's ResolvePaths.
_PATH_KEYS = {
    "cluster": ("certificate-authority",),
    "user": ("client-certificate", "client-key", "tokenFile"),
}


@dataclasses.dataclass(frozen=True)
class UserOrigin:
    """Where the user in force is defined: its kubeconfig file and its name there."""

    path: str
    name: str


@dataclasses.dataclass
class ResolvedConfig:
    """The merged kubeconfig, the context in force and its namespace."""

    config: dict[str, Any]
    context_name: str | None
    namespace: str
    sources: list[str]
    # None when the user is not from a file (--token replaces it, or the context names none).
    user_origin: UserOrigin | None = None


def kubeconfig_paths(flag: str | None, environ: Mapping[str, str]) -> tuple[list[Path], bool]:
    """Files to read, and whether they were named explicitly (then a missing file is an error)."""
    if flag:
        return [Path(flag).expanduser()], True
    env = environ.get("KUBECONFIG", "")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p], False
    home = environ.get("HOME") or str(Path.home())
    return [Path(home) / ".kube" / "config"], False


def _absolute(path: str, base: Path) -> str:
    # Lexical, as Go's filepath.Join: neither the file nor a symlink on the way is resolved.
    if not path or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(base, path))


def _resolve_paths(entry: dict[str, Any], kind: str, base: Path) -> dict[str, Any]:
    body = dict(entry.get(kind) or {})
    for key in _PATH_KEYS[kind]:
        if isinstance(body.get(key), str):
            body[key] = _absolute(body[key], base)
    if kind == "user" and isinstance(body.get("exec"), dict):
        exec_cfg = dict(body["exec"])
        command = exec_cfg.get("command")
        # client-go resolves an exec command relative to the file only when it contains a slash.
        if isinstance(command, str) and os.sep in command and not os.path.isabs(command):
            exec_cfg["command"] = _absolute(command, base)
        body["exec"] = exec_cfg
    return {**entry, kind: body}


def merge(documents: list[tuple[dict[str, Any], Path]]) -> dict[str, Any]:
    """Merges parsed kubeconfig files in order; the first file to set anything wins."""
    merged: dict[str, Any] = {"clusters": [], "users": [], "contexts": []}
    seen: dict[str, set[str]] = {key: set() for key in _NAMED_LISTS}
    for doc, base in documents:
        for key, value in doc.items():
            if key in _NAMED_LISTS:
                for entry in value or []:
                    name = entry.get("name") if isinstance(entry, dict) else None
                    if not isinstance(name, str) or name in seen[key]:
                        continue
                    seen[key].add(name)
                    kind = key[:-1]
                    resolved = _resolve_paths(entry, kind, base) if kind in _PATH_KEYS else entry
                    merged[key].append(resolved)
            elif key == "preferences" and isinstance(value, dict):
                merged.setdefault("preferences", {})
                for pkey, pvalue in value.items():
                    merged["preferences"].setdefault(pkey, pvalue)
            elif key not in merged and value not in (None, ""):
                merged[key] = value
    return merged


def load_documents(
    paths: list[Path], explicit: bool
) -> tuple[list[tuple[dict[str, Any], Path]], list[str]]:
    documents: list[tuple[dict[str, Any], Path]] = []
    sources: list[str] = []
    for path in paths:
        try:
            text = path.read_text()
        except FileNotFoundError:
            if explicit:
                raise errors.ConfigError(
                    f"kubeconfig {path} does not exist", "check the --kubeconfig path"
                ) from None
            continue
        except OSError as exc:
            raise errors.ConfigError(f"cannot read kubeconfig {path}: {exc.strerror}") from None
        try:
            doc = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise errors.ConfigError(
                f"kubeconfig {path} is not valid YAML ({exc.__class__.__name__})"
            ) from None
        if not isinstance(doc, dict):
            raise errors.ConfigError(f"kubeconfig {path} is not a kubeconfig (expected a mapping)")
        # The directory of the path as given, not of a symlink's target (client-go's rule).
        documents.append((doc, Path(os.path.abspath(path)).parent))
        sources.append(str(path))
    return documents, sources


def _named(config: dict[str, Any], key: str, name: str) -> dict[str, Any] | None:
    for entry in config.get(key, []):
        if entry.get("name") == name:
            return dict(entry)
    return None


def apply_overrides(config: dict[str, Any], opts: ConnectionOptions) -> tuple[dict[str, Any], str]:
    """Applies --context/--cluster/--user/--server/--token/... and returns (config, context name).

    The result always has a context named by the returned name, so the client can load it.
    """
    config = {**config, **{key: list(config.get(key, [])) for key in _NAMED_LISTS}}
    context_name = opts.context or config.get("current-context") or ""
    context: dict[str, Any] = {}
    if context_name:
        entry = _named(config, "contexts", context_name)
        if entry is None:
            if opts.context:
                raise errors.ConfigError(
                    f'context "{context_name}" does not exist in the kubeconfig',
                    "list contexts with `kubectl config get-contexts`",
                )
            if not (opts.server or opts.cluster):
                raise errors.ConfigError(
                    f'current-context "{context_name}" does not exist in the kubeconfig',
                    "pick one with --context or `kubectl config use-context`",
                )
        else:
            context = dict(entry.get("context") or {})
    if opts.cluster:
        if _named(config, "clusters", opts.cluster) is None:
            raise errors.ConfigError(f'cluster "{opts.cluster}" does not exist in the kubeconfig')
        context["cluster"] = opts.cluster
    if opts.user:
        if _named(config, "users", opts.user) is None:
            raise errors.ConfigError(f'user "{opts.user}" does not exist in the kubeconfig')
        context["user"] = opts.user

    cluster = dict(
        (_named(config, "clusters", context.get("cluster", "")) or {}).get("cluster") or {}
    )
    user = dict((_named(config, "users", context.get("user", "")) or {}).get("user") or {})
    cluster = override_cluster(cluster, opts)
    user = override_user(user, opts)
    validate_user(user, context.get("user") or "")
    if not cluster.get("server"):
        if not context_name and not config.get("clusters"):
            raise errors.ConfigError(
                "no kubeconfig found",
                "set KUBECONFIG, pass --kubeconfig, or create ~/.kube/config",
            )
        raise errors.ConfigError(
            f'no server found for context "{context_name or "(none)"}"',
            "set the cluster's server in the kubeconfig or pass --server",
        )

    name = "kubectl-ome-pvc"
    context["cluster"] = name
    context["user"] = name
    config["clusters"] = [{"name": name, "cluster": cluster}]
    config["users"] = [{"name": name, "user": user}]
    config["contexts"] = [{"name": name, "context": context}]
    config["current-context"] = name
    return config, context_name


def override_cluster(cluster: dict[str, Any], opts: ConnectionOptions) -> dict[str, Any]:
    """The connection flags over a kubeconfig cluster entry, as client-go's getCluster merges."""
    cluster = dict(cluster)
    if opts.server:
        cluster["server"] = opts.server
    if opts.certificate_authority or opts.insecure_skip_tls_verify:
        # Either flag replaces the kubeconfig's whole trust setting: a CA file clears its
        # insecure-skip-tls-verify, and insecure clears its CA.
        for key in ("certificate-authority", "certificate-authority-data"):
            cluster.pop(key, None)
        cluster["insecure-skip-tls-verify"] = opts.insecure_skip_tls_verify
        if opts.certificate_authority:
            cluster["certificate-authority"] = os.path.abspath(opts.certificate_authority)
    if opts.tls_server_name or opts.server:
        # --server drops the kubeconfig's tls-server-name unless --tls-server-name is given.
        cluster.pop("tls-server-name", None)
        if opts.tls_server_name:
            cluster["tls-server-name"] = opts.tls_server_name
    return cluster


def override_user(user: dict[str, Any], opts: ConnectionOptions) -> dict[str, Any]:
    """The credential and impersonation flags over a kubeconfig user entry (field by field)."""
    user = dict(user)
    if opts.token:
        user["token"] = opts.token  # the client certificate, if any, stays
    if opts.impersonate:
        user["as"] = opts.impersonate
    if opts.impersonate_groups:
        user["as-groups"] = list(opts.impersonate_groups)
    if opts.impersonate_uid:
        user["as-uid"] = opts.impersonate_uid
    return user


def validate_user(user: Mapping[str, Any], name: str) -> None:
    """client-go's validateAuthInfo checks that stop kubectl before it connects."""
    who = f'user "{name}"' if name else "the user"
    if (user.get("as-uid") or user.get("as-groups") or user.get("as-user-extra")) and not user.get(
        "as"
    ):
        raise errors.ConfigError(
            f"{who} asks to impersonate a uid, groups or extra without a user",
            "name the user to impersonate with --as (or `as:` in the kubeconfig)",
        )
    if user.get("token") and (user.get("username") or user.get("password")):
        raise errors.ConfigError(
            f"{who} has more than one authentication method (token and basic auth)",
            "keep only one of them",
        )
    spec = user.get("exec")
    if isinstance(spec, Mapping):
        validate_exec(spec, who)


def validate_exec(spec: Mapping[str, Any], who: str) -> None:
    from kubectl_omepvc.api.execplugin import API_VERSIONS, INTERACTIVE_MODES

    if not spec.get("command"):
        raise errors.ConfigError(f"the exec plugin of {who} has no command")
    version = spec.get("apiVersion")
    if version not in API_VERSIONS:
        raise errors.ConfigError(
            f"the exec plugin of {who} has apiVersion {version!r}",
            f"use one of {', '.join(API_VERSIONS)}",
        )
    mode = spec.get("interactiveMode")
    if not mode and version == API_VERSIONS[0]:
        raise errors.ConfigError(
            f"the exec plugin of {who} must set interactiveMode under {version}",
            f"add interactiveMode: one of {', '.join(INTERACTIVE_MODES)}",
        )
    if mode and mode not in INTERACTIVE_MODES:
        raise errors.ConfigError(
            f"the exec plugin of {who} has an unknown interactiveMode {mode!r}",
            f"use one of {', '.join(INTERACTIVE_MODES)}",
        )


def _user_name(config: dict[str, Any], context_name: str, opts: ConnectionOptions) -> str | None:
    """The kubeconfig name of the user `apply_overrides` picked (before it renamed it)."""
    if opts.user:
        return opts.user
    entry = _named(config, "contexts", context_name) if context_name else None
    user = ((entry or {}).get("context") or {}).get("user")
    return user if isinstance(user, str) and user else None


def user_origin(
    documents: list[tuple[dict[str, Any], Path]], sources: list[str], name: str
) -> UserOrigin | None:
    """The first file (in merge order) that defines user `name`: the one whose entry won."""
    for (doc, _), source in zip(documents, sources, strict=True):
        users = doc.get("users")
        for entry in users if isinstance(users, list) else []:
            if isinstance(entry, dict) and entry.get("name") == name:
                return UserOrigin(os.path.abspath(source), name)
    return None


def resolve(opts: ConnectionOptions, environ: Mapping[str, str] | None = None) -> ResolvedConfig:
    """The configuration the command will use, or a ConfigError saying why there is none."""
    environ = os.environ if environ is None else environ
    paths, explicit = kubeconfig_paths(opts.kubeconfig, environ)
    documents, sources = load_documents(paths, explicit)
    merged = merge(documents)
    if _is_empty(merged) and not opts.server and in_cluster(environ):
        return _in_cluster(opts, environ)
    config, context_name = apply_overrides(merged, opts)
    context = config["contexts"][0]["context"]
    namespace = opts.namespace or context.get("namespace") or "default"
    user = _user_name(merged, context_name, opts)
    origin = user_origin(documents, sources, user) if user else None
    return ResolvedConfig(config, context_name or None, namespace, sources, origin)


def _is_empty(config: Mapping[str, Any]) -> bool:
    return not any(config.get(key) for key in (*_NAMED_LISTS, "current-context"))


def _in_cluster(opts: ConnectionOptions, environ: Mapping[str, str]) -> ResolvedConfig:
    """The pod's own cluster and service account, with the flags kubectl applies there.

    client-go's inClusterClientConfig takes only --token and --certificate-authority over the
    service account (--server leaves the pod's cluster: `resolve` then reads no service
    account); -n, else POD_NAMESPACE, else the service account's namespace names the namespace.
    Flags naming kubeconfig entries fail as they do with an empty kubeconfig.
    """
    for flag, value, what in (
        ("--context", opts.context, "context"),
        ("--cluster", opts.cluster, "cluster"),
        ("--user", opts.user, "user"),
    ):
        if value:
            raise errors.ConfigError(
                f'{what} "{value}" does not exist: there is no kubeconfig, only the pod\'s'
                " service account",
                f"drop {flag}, or pass --kubeconfig",
            )
    host = environ.get("KUBERNETES_SERVICE_HOST", "")
    port = environ.get("KUBERNETES_SERVICE_PORT", "")
    if ":" in host:
        host = f"[{host}]"
    cluster: dict[str, Any] = {
        "server": f"https://{host}:{port}",
        "certificate-authority": str(SERVICE_ACCOUNT_DIR / "ca.crt"),
    }
    if opts.certificate_authority:
        cluster["certificate-authority"] = os.path.abspath(opts.certificate_authority)
    user: dict[str, Any] = {"tokenFile": str(SERVICE_ACCOUNT_DIR / "token")}
    if opts.token:
        user = {"token": opts.token}
    user = override_user(
        {k: v for k, v in user.items()},
        ConnectionOptions(
            impersonate=opts.impersonate,
            impersonate_groups=opts.impersonate_groups,
            impersonate_uid=opts.impersonate_uid,
        ),
    )
    validate_user(user, "")
    namespace = opts.namespace or environ.get("POD_NAMESPACE") or _service_account_namespace()
    name = "in-cluster"
    config = {
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }
    return ResolvedConfig(config, None, namespace, [])


def _service_account_namespace() -> str:
    try:
        return (SERVICE_ACCOUNT_DIR / "namespace").read_text().strip() or "default"
    except OSError:
        return "default"


# How long to wait for another kubectl's lock on a kubeconfig before giving up.
LOCK_WAIT = 2.0


def persist_auth_provider_config(origin: UserOrigin, values: Mapping[str, str]) -> None:
    """Sets `values` in the user's `auth-provider.config` in its file; nothing else changes.

    The file is read again (it may have changed since we loaded it), locked the way client-go
    locks it (`<path as given>.lock`, created exclusively) and rewritten in place, as Go's
    os.WriteFile does: the same inode, so a bind-mounted file, its owner, its mode, its hard
    links and a symlink pointing at it all survive.
    """
    target = origin.path
    try:
        with _locked(target):
            with open(target, encoding="utf-8") as handle:
                doc = yaml.safe_load(handle) or {}
            config = _auth_provider_config(doc, origin.name)
            if config is None:
                raise errors.ConfigError(
                    f'user "{origin.name}" in {origin.path} no longer has an auth-provider',
                    "the refreshed OIDC tokens were not saved; log in again",
                )
            config.update(values)
            text = yaml.safe_dump(
                doc, default_flow_style=False, sort_keys=False, allow_unicode=True, width=1 << 20
            )
            _replace(target, text)
    except (OSError, yaml.YAMLError) as exc:
        detail = getattr(exc, "strerror", None) or exc.__class__.__name__
        raise errors.ConfigError(
            f"cannot save the refreshed OIDC tokens to {origin.path} ({detail})",
            "fix the file's permissions, then log in again with your OIDC login tool",
        ) from None


def _auth_provider_config(doc: Any, name: str) -> dict[str, Any] | None:
    users = doc.get("users") if isinstance(doc, dict) else None
    for entry in users if isinstance(users, list) else []:
        if isinstance(entry, dict) and entry.get("name") == name:
            provider = (entry.get("user") or {}).get("auth-provider")
            if not isinstance(provider, dict):
                return None
            if not isinstance(provider.get("config"), dict):
                provider["config"] = {}
            config: dict[str, Any] = provider["config"]
            return config
    return None


class _locked:
    """`<file>.lock`, as client-go takes it before it writes a kubeconfig."""

    def __init__(self, path: str) -> None:
        self.lock = path + ".lock"

    def __enter__(self) -> None:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                os.close(os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                return
            except FileExistsError:
                if time.monotonic() >= deadline:
                    raise errors.ConfigError(
                        f"cannot save the refreshed OIDC tokens: {self.lock} exists",
                        "remove it if no kubectl is running, then log in again",
                    ) from None
                time.sleep(0.05)

    def __exit__(self, *_: object) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.lock)


def _replace(target: str, text: str) -> None:
    """Writes `text` over `target` in place (truncate, write, sync), keeping its inode."""
    with open(target, "r+b") as handle:
        handle.truncate(0)
        handle.write(text.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())


def in_cluster(environ: Mapping[str, str]) -> bool:
    """True when running in a pod, where kubectl falls back to the service account."""
    return (
        bool(environ.get("KUBERNETES_SERVICE_HOST"))
        and bool(environ.get("KUBERNETES_SERVICE_PORT"))
        and (SERVICE_ACCOUNT_DIR / "token").is_file()
    )
