"""Shared pytest setup: CPU-only by default; GPU tests are marked ``gpu`` and skipped without CUDA."""

import os

# Software rendering on CPU machines; keep llvmpipe single-threaded so tests don't oversubscribe.
os.environ.setdefault("LP_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except Exception:  # pragma: no cover - torch missing is an install error elsewhere
        has_gpu = False
    if has_gpu:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
