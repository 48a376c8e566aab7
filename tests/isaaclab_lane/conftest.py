"""The Python 3.12 Isaac Lab lane (scripts/isaaclab_lane/run.sh): skipped where isaaclab is not installed."""

import importlib.util

import pytest

HAS_ISAACLAB = importlib.util.find_spec("isaaclab") is not None


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs isaaclab (run: bash scripts/isaaclab_lane/run.sh)")
    for item in items:
        if "isaaclab_lane" in str(item.fspath):
            item.add_marker(pytest.mark.isaaclab)
            if not HAS_ISAACLAB:
                item.add_marker(skip)
