"""Use-case tests run against the in-memory store (tests/unit/fake_store.py)."""

from __future__ import annotations

import pytest

from tests.unit.use_case_kit import World


@pytest.fixture
def world() -> World:
    return World()
