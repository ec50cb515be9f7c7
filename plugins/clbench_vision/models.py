"""Image models: a small convnet and the reduced ResNet-18 of GEM, A-GEM and ER.

Both map images ``x`` [n, C, H, W] to logits [n, n_classes] and end in one ``nn.Linear`` over all
classes: in the task scenario the harness masks it per task, which makes it a multi-head output
(one head per task's classes), as in those papers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvNet(nn.Module):
    """Blocks of conv 3x3 (padding 1) -> ReLU -> max-pool 2x2, one per entry of ``channels``; then
    flatten -> Linear(``hidden``) -> ReLU -> (dropout) -> Linear(n_classes). ``hidden`` 0 drops the
    hidden layer. ``x`` [n, C, H, W] -> logits [n, n_classes]."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        n_classes: int,
        channels: tuple[int, ...] | list[int] = (32, 64),
        hidden: int = 256,
        dropout: float = 0.0,
    ):
        super().__init__()
        c, h, w = input_shape
        layers: list[nn.Module] = []
        for width in channels:
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c, h, w = width, h // 2, w // 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        head: list[nn.Module] = []
        width = c * h * w
        if hidden:
            head += [nn.Linear(width, hidden), nn.ReLU()]
            if dropout:
                head.append(nn.Dropout(dropout))
            width = hidden
        head.append(nn.Linear(width, n_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [n, C, H, W] -> logits [n, n_classes]."""
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 convolutions with batch norm, and a shortcut (a 1x1
    convolution with batch norm when the shape changes). [n, c_in, H, W] -> [n, c_out, H/s, W/s]."""

    def __init__(self, c_in: int, c_out: int, stride: int, batch_norm: bool):
        super().__init__()

        def norm(c: int) -> nn.Module:
            return nn.BatchNorm2d(c) if batch_norm else nn.Identity()

        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=not batch_norm)
        self.bn1 = norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=not batch_norm)
        self.bn2 = norm(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=not batch_norm), norm(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, c_in, H, W] -> [n, c_out, H', W']."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ReducedResNet18(nn.Module):
    """ResNet-18 with ``width`` initial filters (20 in GEM, A-GEM and ER, against 64): a 3x3 stem
    at stride 1 (no max-pool), four stages of two basic blocks with ``width`` x (1, 2, 4, 8)
    filters (stages 2-4 at stride 2), global average pooling and a linear layer.
    ``x`` [n, C, H, W] -> logits [n, n_classes]."""

    def __init__(self, input_shape: tuple[int, int, int], n_classes: int, width: int = 20, batch_norm: bool = True):
        super().__init__()
        c = input_shape[0]
        self.stem = nn.Sequential(
            nn.Conv2d(c, width, 3, stride=1, padding=1, bias=not batch_norm),
            nn.BatchNorm2d(width) if batch_norm else nn.Identity(),
            nn.ReLU(),
        )
        blocks: list[nn.Module] = []
        c_in = width
        for stage, mult in enumerate((1, 2, 4, 8)):
            for b in range(2):
                stride = 2 if stage > 0 and b == 0 else 1
                blocks.append(BasicBlock(c_in, width * mult, stride, batch_norm))
                c_in = width * mult
        self.blocks = nn.Sequential(*blocks)
        self.linear = nn.Linear(c_in, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [n, C, H, W] -> logits [n, n_classes]."""
        out = self.blocks(self.stem(x))  # [n, 8 * width, H / 8, W / 8]
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))
