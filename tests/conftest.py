"""Shared fixtures for the akida test suite."""

import os
import sys
import zlib

import numpy as np
import pytest

# Make ``import oracle`` work whatever the rootdir / import mode.
sys.path.insert(0, os.path.dirname(__file__))

BASE_SEED = int(os.environ.get("AKIDA_TEST_SEED", "20240601"))


def seeded_rng(*keys) -> np.random.Generator:
    """A numpy Generator seeded from BASE_SEED and any hashable keys (stable across runs)."""
    material = repr((BASE_SEED,) + tuple(keys)).encode()
    return np.random.default_rng(zlib.crc32(material))


@pytest.fixture
def rng(request):
    """A Generator seeded from the test's node id, so each test gets its own stable stream."""
    return seeded_rng(request.node.nodeid)


@pytest.fixture
def make_rng():
    """Factory for extra seeded generators: ``make_rng("case", 3)``."""
    return seeded_rng


def pytest_terminal_summary(terminalreporter):
    helpers = sys.modules.get("helpers")
    if helpers is not None and helpers.COMPARISONS["count"]:
        terminalreporter.write_line(
            f"engine-vs-oracle comparisons: {helpers.COMPARISONS['count']} (AKIDA_TEST_SEED={BASE_SEED})"
        )
