"""Fixtures for media tests on real links: a network namespace per test (see tests/netns.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import netns


@pytest.fixture
def namespace() -> Iterator[netns.Namespace]:
    """A fresh namespace with a veth pair to the root namespace; torn down after the test, also on failure.
    Fails (never skips) when namespaces cannot be made, e.g. without root."""
    with netns.namespace() as ns:
        yield ns
