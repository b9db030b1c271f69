"""Fixtures of the resilience unit tests."""

import pytest

from tests.unit_tests.resilience.fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
