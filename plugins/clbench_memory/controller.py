"""The LSTM controller shared by the DNC and the NTM, and the helpers both models use."""

from __future__ import annotations

import math

import torch
from torch import nn


class LSTMController(nn.Module):
    """One LSTM layer fed ``[x_t, previous read vectors]``, stepped by the memory model.

    The input part of the gates is computed for all steps at once (:meth:`input_gates`); each
    :meth:`step` adds the read-vector and recurrent parts. Gates are ordered input, forget,
    output, cell; the forget bias starts at 1.
    """

    def __init__(self, input_size: int, read_size: int, hidden_size: int):
        """``input_size`` features of x_t, ``read_size`` = read heads * word size, ``hidden_size``."""
        super().__init__()
        self.input_size, self.read_size, self.hidden_size = input_size, read_size, hidden_size
        self.weight_x = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_rh = nn.Parameter(torch.empty(4 * hidden_size, read_size + hidden_size))
        self.bias = nn.Parameter(torch.zeros(4 * hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(hidden), 1/sqrt(hidden)) weights, as ``torch.nn.LSTM``; forget bias 1."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            self.weight_x.uniform_(-bound, bound)
            self.weight_rh.uniform_(-bound, bound)
            self.bias.zero_()
            self.bias[self.hidden_size : 2 * self.hidden_size] = 1.0

    def input_gates(self, x: torch.Tensor) -> torch.Tensor:
        """Gate pre-activations from the inputs of every step: x [B, T, I] -> [T, B, 4H]."""
        return torch.nn.functional.linear(x.transpose(0, 1), self.weight_x, self.bias)

    def step(
        self,
        x_gates: torch.Tensor,
        reads: torch.Tensor,
        h: torch.Tensor,
        c: torch.Tensor,
        weight_rh_t: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: ``x_gates`` [B, 4H] (from :meth:`input_gates`), ``reads`` [B, R*W] from the
        previous step, ``h``, ``c`` [B, H] -> new ``(h, c)``, each [B, H]. ``weight_rh_t``:
        ``weight_rh.t()`` [R*W + H, 4H], taken once per sequence by the caller (optional)."""
        if weight_rh_t is None:
            weight_rh_t = self.weight_rh.t()
        gates = torch.addmm(x_gates, torch.cat([reads, h], dim=1), weight_rh_t)  # [B, 4H]
        hs = self.hidden_size
        sig, cell = torch.split(gates, [3 * hs, hs], dim=1)
        in_gate, forget_gate, out_gate = torch.sigmoid(sig).split(hs, dim=1)
        c = torch.addcmul(forget_gate * c, in_gate, torch.tanh(cell))
        h = out_gate * torch.tanh(c)
        return h, c


def clip(x: torch.Tensor, value: float | None) -> torch.Tensor:
    """Clamp ``x`` to [-value, value]; ``None`` or 0 means no clipping. Any shape."""
    if not value:
        return x
    return x.clamp(-value, value)


def clip_lstm_output(h: torch.Tensor, value: float | None) -> torch.Tensor:
    """:func:`clip` for an LSTM output ``h`` [B, H], which lies in (-1, 1): a ``value`` of 1 or
    more cannot change it, so that clamp (and its autograd node) is skipped."""
    return h if value is None or value >= 1 else clip(h, value)


def check_sizes(**sizes: int) -> None:
    """Raise ``ValueError`` naming the first size that is not a positive integer."""
    for name, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
