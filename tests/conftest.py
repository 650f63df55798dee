import pytest

from tests.bridge_server import start_bridge


@pytest.fixture(scope="session")
def bridge(tmp_path_factory):
    """One bridge on the embedded simulator for the whole session."""
    server = start_bridge(tmp_path_factory.mktemp("bridge"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ec2(bridge):
    return bridge.client()
