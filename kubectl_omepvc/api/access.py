"""Permissions a command needs after its first write, checked before it (SelfSubjectAccessReview).

A dry run proves each write is allowed, but not what follows it: undoing a partial write, or
waiting for the result. A command asks here first, so a missing permission stops it with
nothing changed, and the error names that permission as the server's 403 would.
"""

from __future__ import annotations

from collections.abc import Iterable

from kubectl_omepvc import errors
from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core.resources import ResourceRef

REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


def require(client: Client, needs: Iterable[tuple[ResourceRef, str, str | None]]) -> None:
    """Each (resource, verb, namespace) allowed, or a Forbidden naming the first that is not."""
    for ref, verb, namespace in needs:
        resource, _, sub = ref.plural.partition("/")
        attributes = {"group": ref.group, "resource": resource, "verb": verb}
        if sub:
            attributes["subresource"] = sub
        if namespace and ref.namespaced:
            attributes["namespace"] = namespace
        review = client.request(
            "POST",
            REVIEWS,
            body={
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attributes},
            },
            verb="create",
            resource="selfsubjectaccessreviews.authorization.k8s.io",
        )
        if not (review.get("status") or {}).get("allowed"):
            scope = f' in the namespace "{namespace}"' if namespace and ref.namespaced else ""
            raise errors.Forbidden(
                f'forbidden: you cannot {verb} resource "{ref.plural}" in API group'
                f' "{ref.group}"{scope}, which this command needs after its first write;'
                " nothing was changed",
                f"ask an admin for '{verb}' on {ref.display} (`kubectl ome-pvc rbac` prints"
                " the roles)",
            )
