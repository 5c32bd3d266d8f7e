"""Test switches: e2e tests need the local control plane and run only with --e2e.

The tier in tests/ome (OME's real controllers, hack/ome) counts as e2e too.

Under --e2e a skipped e2e test counts as a failure: CI must not pass on a suite that did not run.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--e2e",
        action="store_true",
        default=False,
        help="run the e2e tests against the local control plane (hack/local-cluster)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if {"e2e", "ome"} & set(item.path.parts):
            item.add_marker(pytest.mark.e2e)
    if config.getoption("--e2e"):
        return
    skip = pytest.mark.skip(reason="e2e: pass --e2e (hack/test does) to run against a real server")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.skipped and "e2e" in item.keywords and item.config.getoption("--e2e"):
        report.outcome = "failed"
        report.longrepr = f"e2e test skipped under --e2e (not allowed): {report.longrepr}"
