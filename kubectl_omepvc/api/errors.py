"""The one place where transport and HTTP failures become the plugin's own errors."""

from __future__ import annotations

import json
import ssl
from typing import Any

from kubectl_omepvc import errors


def _status_message(body: bytes) -> tuple[str, dict[str, Any]]:
    """The Status object's message, or a short safe excerpt of a non-Status body."""
    try:
        status = json.loads(body or b"{}")
    except ValueError:
        return body[:256].decode("utf-8", "replace").strip(), {}
    if isinstance(status, dict) and status.get("kind") == "Status":
        return str(status.get("message") or status.get("reason") or ""), status
    return "", {}


def describe(verb: str, resource: str, namespace: str | None, name: str | None) -> str:
    """How kubectl users would name a request: `get deployments/x -n ns`."""
    what = f"{resource}/{name}" if name else resource
    where = f" -n {namespace}" if namespace else ""
    return f"{verb} {what}{where}"


def from_http(
    status: int,
    body: bytes,
    *,
    verb: str,
    resource: str,
    namespace: str | None = None,
    name: str | None = None,
) -> errors.PluginError:
    """Maps an HTTP error answer to one of our errors, keeping the server's own message."""
    message, detail = _status_message(body)
    request = describe(verb, resource, namespace, name)
    if status == 401:
        return errors.Unauthorized(
            f"the server rejected the credentials ({request}: Unauthorized)",
            "log in again or check the user in your kubeconfig",
        )
    if status == 403:
        scope = f" in namespace {namespace}" if namespace else ""
        return errors.Forbidden(
            f"forbidden: cannot {verb} {resource}{scope} ({message or 'RBAC denied the request'})",
            f"ask an admin for '{verb}' on {resource}; check with "
            f"`kubectl auth can-i {verb} {resource}{f' -n {namespace}' if namespace else ''}`",
        )
    if status == 404:
        if name:
            return errors.NotFound(f'{resource} "{name}" not found{_in(namespace)}')
        return errors.NotFound(f"{message or 'not found'} ({request})")
    if status == 409:
        return errors.Conflict(
            f"conflict on {request}: {message}",
            "the object changed meanwhile; run the command again",
        )
    if status in (400, 422):
        causes = (detail.get("details") or {}).get("causes") or []
        extra = "; ".join(str(c.get("message", "")) for c in causes if c.get("message"))
        text = message if not extra or extra in message else f"{message} ({extra})"
        return errors.Invalid(f"the server rejected {request}: {text}")
    if status == 504 or (status == 500 and "timeout" in message.lower()):
        return errors.ConnectionFailed(f"the server timed out on {request}: {message}")
    return errors.ServerError(f"{request} failed: HTTP {status} {message}".rstrip())


def redirect(status: int, location: str | None, url: str) -> errors.PluginError:
    """A 3xx answer: an API server never redirects, so the address points elsewhere."""
    where = f" to {location}" if location else ""
    return errors.ConnectionFailed(
        f"{url} answered HTTP {status} (a redirect{where}), not the Kubernetes API",
        "point the kubeconfig's server (or --server) at the API server itself",
    )


def _in(namespace: str | None) -> str:
    return f" in namespace {namespace}" if namespace else ""


def from_transport(exc: BaseException, server: str, timeout: float | None) -> errors.PluginError:
    """Maps a urllib3/socket failure to a one-line error naming the server."""
    import urllib3.exceptions as u3

    reason: BaseException = exc
    if isinstance(exc, u3.MaxRetryError) and exc.reason is not None:
        reason = exc.reason
    if isinstance(reason, u3.SSLError | ssl.SSLError):
        return errors.ConnectionFailed(
            f"TLS handshake with {server} failed ({_short(reason)})",
            "check certificate-authority in the kubeconfig, or --tls-server-name",
        )
    # NewConnectionError subclasses ConnectTimeoutError in urllib3, so test it first.
    if isinstance(reason, u3.NewConnectionError | ConnectionRefusedError):
        return errors.ConnectionFailed(
            f"cannot reach the server at {server} ({_short(reason)})",
            "check the cluster is up and the kubeconfig's server address",
        )
    if isinstance(reason, u3.TimeoutError | TimeoutError):
        limit = f" after {timeout:g}s" if timeout else ""
        return errors.ConnectionFailed(
            f"the server at {server} did not answer{limit}",
            "check that the cluster is reachable or raise --request-timeout",
        )
    return errors.ConnectionFailed(
        f"cannot reach the server at {server} ({_short(reason)})",
        "check the cluster is up and the kubeconfig's server address",
    )


def _short(exc: BaseException) -> str:
    text = str(exc)
    # urllib3 wraps messages as "<object at 0x...>: Failed to establish...: [Errno 111] ..."
    if "[Errno" in text:
        text = text[text.index("[Errno") :]
    return text.split("\n")[0][:200]
