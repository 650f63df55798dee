"""Fixtures shared by the end-to-end modules (the session's ``bridge`` is in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.e2e.test_instances import World


@pytest.fixture(scope="module")
def world(bridge):
    """The session's simulator, reached on the bridge's loop (``World``)."""
    return World(bridge)
