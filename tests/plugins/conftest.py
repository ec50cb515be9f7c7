"""Fixtures shared by the plugin tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def one_thread():
    """Small tensors: one torch thread is far faster than several (and immune to busy cores)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
