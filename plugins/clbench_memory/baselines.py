"""The memory-free swaps for the DNC: an LSTM and a small causal transformer.

Both map x [B, T, input_size] to per-step outputs [B, T, output_size], as the DNC and NTM do, and
start every forward call from the same state. Their default sizes give parameter counts close to
the default DNC's (about 0.1 M for a few input features per step).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from clbench_memory.controller import check_sizes


class LSTMSequence(nn.Module):
    """``layers`` stacked LSTM layers (``torch.nn.LSTM``) and a linear read-out at every step."""

    def __init__(self, input_size: int, output_size: int, hidden_size: int = 160, layers: int = 1):
        """An LSTM of ``hidden_size`` units per layer; zero initial state."""
        super().__init__()
        check_sizes(input_size=input_size, output_size=output_size, hidden_size=hidden_size, layers=layers)
        self.input_size, self.output_size = input_size, output_size
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=layers, batch_first=True)
        self.output = nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, input_size] -> outputs [B, T, output_size]."""
        hidden, _ = self.lstm(x)  # [B, T, hidden]
        return self.output(hidden)


def sinusoidal_positions(steps: int, dim: int, like: torch.Tensor) -> torch.Tensor:
    """Fixed sine/cosine position codes (Vaswani et al. 2017): [steps, dim]."""
    position = torch.arange(steps, dtype=like.dtype, device=like.device).unsqueeze(1)  # [T, 1]
    rate = torch.exp(torch.arange(0, dim, 2, dtype=like.dtype, device=like.device) * (-math.log(10000.0) / dim))
    codes = like.new_zeros(steps, dim)
    codes[:, 0::2] = torch.sin(position * rate)
    codes[:, 1::2] = torch.cos(position * rate[: dim // 2])
    return codes


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where step t sees steps <= t, written out in plain operations
    (no fused kernel), so it can be differentiated twice."""

    def __init__(self, d_model: int, heads: int):
        """``d_model`` must be divisible by ``heads``."""
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads})")
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, D] -> [B, T, D]."""
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # each [B, h, T, d_h]
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(d // self.heads)  # [B, h, T, T]
        future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        attention = torch.softmax(scores.masked_fill(future, float("-inf")), dim=3)
        out = torch.matmul(attention, v).transpose(1, 2).reshape(b, t, d)  # [B, T, D]
        return self.proj(out)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(LN(x))``, then ``x + FF(LN(x))`` with GELU."""

    def __init__(self, d_model: int, heads: int, ff_size: int):
        """Sizes of the block."""
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attention = CausalSelfAttention(d_model, heads)
        self.ff1, self.ff2 = nn.Linear(d_model, ff_size), nn.Linear(ff_size, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, D] -> [B, T, D]."""
        x = x + self.attention(self.norm1(x))
        return x + self.ff2(F.gelu(self.ff1(self.norm2(x))))


class TransformerSequence(nn.Module):
    """A causal transformer encoder: input projection + sine positions, pre-norm blocks, read-out."""

    def __init__(
        self,
        input_size: int,
        output_size: int,
        d_model: int = 64,
        heads: int = 4,
        layers: int = 2,
        ff_size: int = 256,
    ):
        """``layers`` blocks of width ``d_model`` with ``heads`` heads and ``ff_size`` hidden units."""
        super().__init__()
        check_sizes(
            input_size=input_size, output_size=output_size, d_model=d_model, heads=heads, layers=layers, ff_size=ff_size
        )
        if d_model % 2:
            raise ValueError(f"d_model must be even (sine/cosine positions), got {d_model}")
        self.input_size, self.output_size = input_size, output_size
        self.embed = nn.Linear(input_size, d_model)
        self.blocks = nn.ModuleList(Block(d_model, heads, ff_size) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.output = nn.Linear(d_model, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, input_size] -> outputs [B, T, output_size]; step t depends on steps <= t."""
        h = self.embed(x)  # [B, T, D]
        h = h + sinusoidal_positions(x.shape[1], h.shape[2], h)
        for block in self.blocks:
            h = block(h)
        return self.output(self.norm(h))
