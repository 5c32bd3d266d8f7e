"""OME's admission webhooks are in the path, as in a real installation (hack/ome up).

The manager serves them (--webhook) on loopback; the API server calls them through OME's own
webhook configurations, failurePolicy Fail. Every other test in this tier therefore runs with
the isvc defaulter and validator and the pod mutator in front of each write; this one shows
that they answer.
"""

from __future__ import annotations

import pytest

from kubectl_omepvc import errors
from kubectl_omepvc.api.client import Client
from tests.ome import real


def test_the_isvc_validator_answers(admin: Client, namespace: str, runtime: str) -> None:
    """The CRD's schema accepts an isvc naming no existing model; OME's validator does not."""
    with pytest.raises(errors.PluginError) as refused:
        real.create_isvc(admin, namespace, "ghost", "no-such-model", runtime)
    assert "referenced model" in str(refused.value)
    assert "not found" in str(refused.value)
