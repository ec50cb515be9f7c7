"""A short copy-task run: the DNC and the NTM learn (the loss falls clearly), deterministically.

benchmarks/copy_task.py runs the full task to near-zero wrong bits; this only shows learning.
"""

from __future__ import annotations

import pytest
import torch

from clbench_memory import DNC, NTM
from clbench_memory.tasks import copy_batch, copy_loss, wrong_bits

BITS = 4


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/plugins/conftest.py


def train(cls, iterations: int, seed: int = 0) -> list[float]:
    """Train a small model on copy sequences of length 1..3; return the loss of every iteration."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = cls(input_size=BITS + 1, output_size=BITS, memory_slots=8, word_size=8, read_heads=1, hidden_size=32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(iterations):
        length = int(torch.randint(1, 4, (1,), generator=gen))
        x, target, mask = copy_batch(16, length, BITS, gen)
        loss = copy_loss(model(x), target, mask)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        losses.append(loss.item())
    return losses


def test_copy_batch_layout():
    x, target, mask = copy_batch(2, 3, BITS, torch.Generator().manual_seed(0))
    assert x.shape == (2, 7, BITS + 1) and target.shape == (2, 7, BITS) and mask.tolist() == [False] * 4 + [True] * 3
    assert torch.equal(target[:, 4:], x[:, :3, :BITS])  # recall the pattern after the delimiter
    assert x[:, 3, BITS].eq(1).all() and x[:, :, BITS].sum() == 2  # one delimiter per sequence
    assert x[:, 4:].abs().sum() == 0  # blank inputs while recalling
    assert wrong_bits(20 * (2 * target - 1), target, mask) == 0


@pytest.mark.parametrize("cls", [DNC, NTM])
def test_copy_loss_falls_and_training_is_deterministic(cls):
    losses = train(cls, 60)
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    print(f"{cls.__name__} copy loss: first 10 iterations {first:.3f}, last 10 {last:.3f}")
    assert last < 0.8 * first
    assert train(cls, 3) == losses[:3]  # same seed, same losses
