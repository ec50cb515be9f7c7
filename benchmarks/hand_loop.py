"""A hand-written PyTorch loop doing the work of the default ``clbench run``; the peer of
``harness_overhead.py``.

Same stream (built by the same generator), same MLP, Adam lr 1e-3, 5 epochs of batch 32 per task,
one thread, and the same evaluations: every task's test split before training and after each task.
Prints the accuracy matrix's final row mean and the seconds spent after imports.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

from clbench.streams.shifting_linear import ShiftingLinearOptions, generate


def main() -> None:
    """Train and evaluate like the harness, printing a JSON summary."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    t0 = time.perf_counter()
    torch.set_num_threads(1)
    stream = generate(ShiftingLinearOptions(), seed=args.seed)
    torch.manual_seed(args.seed)
    model = nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 5))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(args.seed)

    def evaluate() -> list[float]:
        model.eval()
        with torch.inference_mode():
            return [float((model(t.test_x).argmax(1) == t.test_y).float().mean()) for t in stream.tasks]

    init = evaluate()
    rows = []
    for task in stream.tasks:
        model.train()
        n = task.train_x.shape[0]
        for _ in range(args.epochs):
            order = torch.randperm(n, generator=g)
            total = 0.0
            for start in range(0, n, args.batch_size):
                idx = order[start : start + args.batch_size]
                loss = F.cross_entropy(model(task.train_x[idx]), task.train_y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item()
        rows.append(evaluate())
    seconds = time.perf_counter() - t0
    print(json.dumps({"avg_accuracy": sum(rows[-1]) / len(rows[-1]), "init": init, "seconds": seconds}))


if __name__ == "__main__":
    main()
