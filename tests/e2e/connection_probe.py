"""The plugin's side of a conformance case, run as its own process like kubectl.

`python -m tests.e2e.connection_probe [kubectl connection flags] [--probe-namespace]` parses the
flags with the plugin's own options, connects with the plugin's client from this process's
environment, and prints one JSON line: the outcome, the identity the server saw (a
SelfSubjectReview) and, with --probe-namespace, the namespace of a GET that the server answered
or refused.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import click

from kubectl_omepvc import errors, options
from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import resources as r

REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
NAMESPACE_IN_MESSAGE = re.compile(r'in the namespace "([^"]+)"')


def outcome_of(exc: errors.PluginError) -> str:
    if isinstance(exc, errors.ConfigError):
        return "config"
    if isinstance(exc, errors.Unauthorized):
        return "unauthorized"
    if isinstance(exc, errors.Forbidden):
        return "forbidden"
    if isinstance(exc, errors.ConnectionFailed):
        return "tls" if "TLS handshake" in exc.message else "connection"
    return "server-error"


def probe(opts: options.ConnectionOptions, namespace: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"outcome": "ok", "user": None, "namespace": None}
    try:
        client = Client(opts)
        review = client.request(
            "POST",
            REVIEWS,
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
            verb="create",
            resource="selfsubjectreviews",
        )
        result["user"] = review["status"]["userInfo"]
        if namespace:
            try:
                found = client.get(r.CONFIG_MAPS, "kube-root-ca.crt", client.namespace)
                result["namespace"] = found["metadata"]["namespace"]
            except errors.Forbidden as exc:
                match = NAMESPACE_IN_MESSAGE.search(exc.message)
                result["namespace"] = match.group(1) if match else None
    except errors.PluginError as exc:
        result["outcome"] = outcome_of(exc)
        result["error"] = exc.format_message()
    return result


@click.command()
@options.connection_options
@click.option("--probe-namespace", is_flag=True)
@options.pass_connection
def main(opts: options.ConnectionOptions, probe_namespace: bool) -> None:
    print(json.dumps(probe(opts, probe_namespace)))


if __name__ == "__main__":
    sys.exit(main())
