"""Shared set-up of the stardp tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread per test process: ``pytest -n 2`` already uses both cores, and
    oversubscribed torch thread pools make small ops orders of magnitude slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
