"""The multi-layer perceptron."""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "elu": nn.ELU}


class MLP(nn.Module):
    """Flattens ``x`` [n, *input_shape] and maps it through hidden layers to logits [n, n_classes]."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        n_classes: int,
        hidden_sizes: list[int] | tuple[int, ...] = (128, 128),
        activation: str = "relu",
        dropout: float = 0.0,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        width = math.prod(input_shape)
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), ACTIVATIONS[activation]()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)
        self.flatten = len(input_shape) != 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [n, *input_shape] -> logits [n, n_classes]."""
        if self.flatten:
            x = x.flatten(1)
        return self.net(x)
