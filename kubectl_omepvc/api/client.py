"""A small REST client: plain dicts over urllib3, one request per call.

Credentials and TLS come from `transport` (kubeconfig rules from `kubeconfig`). Requests are
built here so that we control what generated API classes do not expose well: repeated
impersonation headers, the request timeout on every call, patch content types, and streaming
JSON without building model objects (a LIST of thousands of models stays cheap).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

from kubectl_omepvc import __version__, errors
from kubectl_omepvc.api import errors as api_errors
from kubectl_omepvc.api import kubeconfig, transport
from kubectl_omepvc.core.resources import ResourceRef
from kubectl_omepvc.options import ConnectionOptions

USER_AGENT = f"kubectl-ome-pvc/{__version__}"
MAX_RETRY_AFTER = 10  # client-go's limit
PAGE_SIZE = 500

JSON = "application/json"
APPLY_PATCH = "application/apply-patch+yaml"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
# A LIST answered with each item's metadata only (no spec or status): what a reader of labels
# needs, at a fraction of the bytes for objects such as Nodes (their status lists images).
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


class Client:
    """Talks to one API server as one user; every method returns plain dicts."""

    def __init__(self, opts: ConnectionOptions, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self.verbose = opts.verbose
        self.timeout = opts.request_timeout
        resolved = kubeconfig.resolve(opts, environ)
        self._transport = transport.from_kubeconfig(resolved.config, environ, resolved.user_origin)
        self.namespace = resolved.namespace
        self.context = resolved.context_name
        self.server = self._transport.server

    # -- plumbing --------------------------------------------------------------------------

    def _headers(self, content_type: str | None, accept: str, authorization: str | None) -> Any:
        from urllib3 import HTTPHeaderDict

        headers = HTTPHeaderDict()
        headers["Accept"] = accept
        headers["User-Agent"] = USER_AGENT
        if content_type:
            headers["Content-Type"] = content_type
        if authorization:
            headers["Authorization"] = authorization
        for key, value in self._transport.impersonation:
            headers.add(key, value)  # repeated header lines, as the server expects for groups
        return headers

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None,
        body: Any,
        content_type: str | None,
        stream: bool = False,
        timeout: float | None = None,
        accept: str = JSON,
    ) -> Any:
        import urllib3

        url = self.server + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None}, doseq=True)
        data: bytes | None = None
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        limit = timeout if timeout is not None else self.timeout
        if self.verbose:
            print(f"kubectl-ome-pvc: {method} {url}", file=sys.stderr)
        started = time.monotonic()

        def send() -> Any:
            pool, authorization, used = self._transport.connect()
            response = pool.request(
                method,
                url,
                body=data,
                headers=self._headers(
                    content_type if data is not None else None, accept, authorization
                ),
                timeout=urllib3.Timeout(total=limit) if limit else None,
                preload_content=not stream,
                retries=False,
                redirect=False,
            )
            return response, used

        try:
            response, used = send()
            if response.status == 401 and self._transport.unauthorized(used):
                response.release_conn()
                response, used = send()  # once, with credentials the exec plugin just renewed
            # Like client-go: a 429 or 5xx carrying Retry-After (a server starting up, or
            # priority-and-fairness throttling) is retried after the delay it asks for.
            for _ in range(MAX_RETRY_AFTER):
                delay = _retry_after(response)
                if delay is None:
                    break
                response.release_conn()
                time.sleep(delay)
                response, used = send()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise api_errors.from_transport(exc, self.server, limit) from exc
        if self.verbose >= 2:
            took = (time.monotonic() - started) * 1000
            print(f"kubectl-ome-pvc: {response.status} in {took:.0f} ms", file=sys.stderr)
        if 300 <= response.status < 400:
            # Not followed (credentials must not go elsewhere) and not a success either.
            response.release_conn()
            raise api_errors.redirect(response.status, response.headers.get("Location"), url)
        return response

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = JSON,
        verb: str | None = None,
        resource: str = "",
        namespace: str | None = None,
        name: str | None = None,
        accept: str = JSON,
    ) -> dict[str, Any]:
        """One request; the decoded JSON answer, or one of our errors."""
        data = self._body(
            method, path, query, body, content_type,
            verb or _VERBS.get(method, method.lower()), resource or path, namespace, name, accept,
        )  # fmt: skip
        if not data:
            return {}
        decoded: dict[str, Any] = json.loads(data)
        return decoded

    def _body(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None,
        body: Any,
        content_type: str | None,
        verb: str,
        resource: str,
        namespace: str | None,
        name: str | None,
        accept: str = JSON,
    ) -> bytes:
        """The answer's body, or the error the status code maps to."""
        response = self._send(method, path, query, body, content_type, accept=accept)
        if response.status >= 400:
            raise api_errors.from_http(
                response.status,
                response.data,
                verb=verb,
                resource=resource,
                namespace=namespace,
                name=name,
            )
        return bytes(response.data or b"")

    # -- verbs -----------------------------------------------------------------------------

    def get(self, ref: ResourceRef, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self.request(
            "GET",
            ref.path(namespace, name),
            verb="get",
            resource=ref.display,
            namespace=namespace,
            name=name,
        )

    def get_or_none(
        self, ref: ResourceRef, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        try:
            return self.get(ref, name, namespace)
        except errors.NotFound:
            return None

    def list(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> Iterator[dict[str, Any]]:
        """Every item, fetched page by page so memory stays flat in the number of objects."""
        for page in self.pages(
            ref, namespace, label_selector=label_selector, field_selector=field_selector,
            page_size=page_size,
        ):  # fmt: skip
            yield from page.get("items") or []

    def pages(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = PAGE_SIZE,
        accept: str = JSON,
    ) -> Iterator[dict[str, Any]]:
        """One LIST as its pages (each a List object), following continue tokens.

        `accept=METADATA_LIST`: each item with its metadata only.
        """
        token: str | None = None
        while True:
            page = self.request(
                "GET",
                ref.path(namespace),
                query={
                    "limit": page_size,
                    "continue": token,
                    "labelSelector": label_selector,
                    "fieldSelector": field_selector,
                },
                verb="list",
                resource=ref.display,
                namespace=namespace,
                accept=accept,
            )
            token = (page.get("metadata") or {}).get("continue")
            yield page
            if not token:
                return

    def create(
        self,
        ref: ResourceRef,
        obj: Mapping[str, Any],
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str = "kubectl-ome-pvc",
    ) -> dict[str, Any]:
        return self.request(
            "POST",
            ref.path(namespace),
            query={"dryRun": "All" if dry_run else None, "fieldManager": field_manager},
            body=obj,
            verb="create",
            resource=ref.display,
            namespace=namespace,
            name=(obj.get("metadata") or {}).get("name"),
        )

    def replace(
        self,
        ref: ResourceRef,
        obj: Mapping[str, Any],
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str = "kubectl-ome-pvc",
    ) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        return self.request(
            "PUT",
            ref.path(namespace, name),
            query={"dryRun": "All" if dry_run else None, "fieldManager": field_manager},
            body=obj,
            verb="update",
            resource=ref.display,
            namespace=namespace,
            name=name,
        )

    def patch(
        self,
        ref: ResourceRef,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        content_type: str = JSON_PATCH,
        dry_run: bool = False,
        field_manager: str = "kubectl-ome-pvc",
        force: bool = False,
    ) -> dict[str, Any]:
        return self.request(
            "PATCH",
            ref.path(namespace, name),
            query={
                "dryRun": "All" if dry_run else None,
                "fieldManager": field_manager,
                "force": "true" if force else None,
            },
            body=patch,
            content_type=content_type,
            verb="patch",
            resource=ref.display,
            namespace=namespace,
            name=name,
        )

    def apply(
        self,
        ref: ResourceRef,
        obj: Mapping[str, Any],
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        force: bool = False,
        field_manager: str = "kubectl-ome-pvc",
    ) -> dict[str, Any]:
        """Server-side apply, so re-running a command is a no-op and conflicts are reported."""
        return self.patch(
            ref,
            obj["metadata"]["name"],
            json.dumps(obj),
            namespace=namespace,
            content_type=APPLY_PATCH,
            dry_run=dry_run,
            field_manager=field_manager,
            force=force,
        )

    def delete(
        self,
        ref: ResourceRef,
        name: str,
        namespace: str | None = None,
        dry_run: bool = False,
        propagation: str | None = None,
    ) -> dict[str, Any] | None:
        try:
            return self.request(
                "DELETE",
                ref.path(namespace, name),
                query={"dryRun": "All" if dry_run else None, "propagationPolicy": propagation},
                verb="delete",
                resource=ref.display,
                namespace=namespace,
                name=name,
            )
        except errors.NotFound:
            return None

    def watch(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
    ) -> Iterator[dict[str, Any]]:
        """Watch events (`{"type", "object"}`) until the server closes the stream."""
        response = self._send(
            "GET",
            ref.path(namespace),
            {
                "watch": "true",
                "resourceVersion": resource_version,
                "allowWatchBookmarks": "true",
                "labelSelector": label_selector,
                "fieldSelector": field_selector,
                "timeoutSeconds": timeout_seconds,
            },
            None,
            None,
            stream=True,
            timeout=0,
        )
        try:
            if response.status >= 400:
                raise api_errors.from_http(
                    response.status,
                    response.read(),
                    verb="watch",
                    resource=ref.display,
                    namespace=namespace,
                )
            buffer = b""
            for chunk in response.stream(65536, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            # A watch left before the server ended it still has bytes in flight: that
            # connection must not go back to the pool, where the next request would read them.
            response.close()
            response.release_conn()

    def get_text(
        self,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        resource: str = "",
        namespace: str | None = None,
        name: str | None = None,
    ) -> str:
        """GET of a plain-text answer, such as `.../pods/<name>/log`; errors as for `request`."""
        data = self._body("GET", path, query, None, None, "get", resource or path, namespace, name)
        return data.decode("utf-8", "replace")

    def get_raw(self, path: str) -> dict[str, Any]:
        """GET of a non-resource path (`/version`, discovery documents)."""
        return self.request("GET", path, verb="get", resource=path)


def _retry_after(response: Any) -> float | None:
    """Seconds to wait before retrying, when the server asked for a retry; else None."""
    if response.status != 429 and response.status < 500:
        return None
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return min(max(float(value), 0.1), 10.0)
    except ValueError:
        return None


_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
