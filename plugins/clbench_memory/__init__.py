"""clbench_memory: memory-augmented sequence models (DNC, NTM) and their LSTM/transformer swaps.

The classes are plain ``torch.nn.Module`` s, usable without clbench; each maps x [batch, steps,
input_size] to per-step outputs [batch, steps, output_size] from a fixed all-zero start::

    from clbench_memory import DNC, NTM
    dnc = DNC(input_size=9, output_size=8, memory_slots=128, word_size=64, read_heads=4,
              write_heads=1, hidden_size=64)
    y = dnc(x)                      # [B, T, 8]
    trace = dnc.trace(x)            # outputs, read_weights [B, T, R, N], write_weights, usage

Modules: :mod:`~clbench_memory.dnc`, :mod:`~clbench_memory.ntm`, :mod:`~clbench_memory.baselines`
(lstm, transformer), :mod:`~clbench_memory.addressing` (the DNC's mechanisms, one function each),
:mod:`~clbench_memory.fused`, :mod:`~clbench_memory.fused_write`, :mod:`~clbench_memory.fused_read`
(the same mechanisms as fused autograd nodes, for speed), :mod:`~clbench_memory.compiled` (the
DNC's memory step as a numba kernel, for evaluation without autograd), :mod:`~clbench_memory.sequence` (a
sample read as a sequence), :mod:`~clbench_memory.plugin` (registration with clbench) and
:mod:`~clbench_memory.tasks` (the copy task). Names are imported lazily (module ``__getattr__``),
so importing ``clbench_memory.plugin`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DNC": "clbench_memory.dnc",
    "NTM": "clbench_memory.ntm",
    "LSTMSequence": "clbench_memory.baselines",
    "TransformerSequence": "clbench_memory.baselines",
    "SequenceClassifier": "clbench_memory.sequence",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import an exported class on first access."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'clbench_memory' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Module attributes, including the lazily imported exports."""
    return sorted(set(globals()) | set(__all__))
