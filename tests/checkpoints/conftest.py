"""A real S3 server (SeaweedFS) for the object-storage tests, one per test session."""

from __future__ import annotations

import pytest

from tests.s3 import Seaweed, require_weed


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    server = Seaweed.start(tmp_path_factory.mktemp("seaweed"), require_weed())
    yield server
    server.stop()
