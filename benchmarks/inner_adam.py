"""Is MAML's weak showing with Adam in the inner loop the method or a defect? (issue 11)

Three checks, printed as a table:

1. The differentiable inner Adam (``clbench_meta.functional.InnerAdam``) against ``torch.optim.Adam``
   over 5 steps on the same gradients: the largest difference in the parameters.
2. Its derivative against finite differences (``torch.autograd.gradcheck`` in float64), through 2
   steps: what second-order MAML differentiates.
3. What one inner step does to the recipe's MLP on a shifting-linear support batch, for SGD and for
   Adam at the recipe's inner lr (0.01): the size of the step per weight and the query loss before
   and after. A fresh Adam's first step is ``lr * g / sqrt(g^2 + eps^2)``, i.e. ``lr * sign(g)``
   for every weight whatever its gradient.

Run: ``PYTHONPATH=.:plugins python benchmarks/inner_adam.py``
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from clbench_meta.functional import InnerAdam, InnerSGD


def against_torch_adam(steps: int = 5) -> float:
    """Largest |difference| between InnerAdam and torch.optim.Adam after ``steps`` steps."""
    g = torch.Generator().manual_seed(0)
    shapes = [(64, 32), (64,), (5, 64)]
    params = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    grads = [[torch.randn(s, generator=g, dtype=torch.float64) for s in shapes] for _ in range(steps)]
    ours = InnerAdam(0.01)
    state = ours.init(params)
    mine = list(params)
    leaves = [p.clone().requires_grad_(True) for p in params]
    ref = torch.optim.Adam(leaves, lr=0.01, eps=1e-8)
    for step in range(steps):
        mine, state = ours.update(mine, grads[step], state)
        for leaf, grad in zip(leaves, grads[step]):
            leaf.grad = grad.clone()
        ref.step()
    return max(float((a - b.detach()).abs().max()) for a, b in zip(mine, leaves))


def gradcheck_two_steps() -> bool:
    """gradcheck of (params -> loss after two differentiable Adam steps) in float64."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (16,), generator=g)

    def after_two_steps(w: torch.Tensor) -> torch.Tensor:
        inner, params = InnerAdam(0.01), (w,)
        state = inner.init(params)
        for _ in range(2):
            loss = F.cross_entropy(x @ params[0], y)
            grads = torch.autograd.grad(loss, params, create_graph=True)
            params, state = inner.update(params, grads, state)
        return F.cross_entropy(x @ params[0], y)

    w = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    return bool(torch.autograd.gradcheck(after_two_steps, (w,), eps=1e-6, atol=1e-5))


def one_inner_step() -> list[tuple[str, str, float, float, float, float]]:
    """For SGD and Adam (lr 0.01), at init and after training on task 0: median and max |step| per
    weight, and the query loss (task 1) before and after the step."""
    from clbench.components import BuildContext
    from clbench.config import RunConfig, resolve
    from clbench.plugins import make_plugin_host

    host = make_plugin_host()
    resolved = resolve(RunConfig(), host.registry)
    stream = resolved.components["benchmark"].factory(resolved.options["benchmark"], BuildContext(0, resolved.train))
    torch.manual_seed(0)
    model = resolved.components["model"].factory(resolved.options["model"], BuildContext(0, resolved.train, stream))
    task = stream.tasks[1]
    support_x, support_y = task.train_x[:16], task.train_y[:16]
    query_x, query_y = task.train_x[16:32], task.train_y[16:32]
    names = [n for n, _ in model.named_parameters()]

    def loss(ps: tuple[torch.Tensor, ...], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(torch.func.functional_call(model, dict(zip(names, ps)), (x,)), y)

    rows = []
    for when in ("init", "trained"):
        if when == "trained":  # 5 epochs of Adam 1e-3 on task 0, as the outer loop would
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            for _ in range(5):
                for start in range(0, 1000, 32):
                    opt.zero_grad()
                    F.cross_entropy(
                        model(stream.tasks[0].train_x[start : start + 32]), stream.tasks[0].train_y[start : start + 32]
                    ).backward()
                    opt.step()
        params = tuple(p.detach().clone().requires_grad_(True) for p in model.parameters())
        grads = torch.autograd.grad(loss(params, support_x, support_y), params)
        params = tuple(p.detach() for p in params)
        before = float(loss(params, query_x, query_y))
        for name, inner in (("sgd", InnerSGD(0.01)), ("adam", InnerAdam(0.01))):
            new, _ = inner.update(params, grads, inner.init(params))
            steps = torch.cat([(a - b).abs().flatten() for a, b in zip(new, params)])
            rows.append(
                (when, name, float(steps.median()), float(steps.max()), before, float(loss(new, query_x, query_y)))
            )
    return rows


def main() -> None:
    """Print the three checks."""
    torch.set_num_threads(1)
    print(f"1. InnerAdam vs torch.optim.Adam, 5 steps, max |difference|: {against_torch_adam():.2e}")
    print(
        f"2. gradcheck through two differentiable Adam steps (float64): {'passed' if gradcheck_two_steps() else 'FAILED'}"
    )
    print("3. one inner step (lr 0.01) of the default MLP on shifting-linear task 1 (support 16, query 16),")
    print("   at init and after 5 epochs on task 0:")
    print(
        f"   {'model':<8} {'inner':<6} {'median |step|':>14} {'max |step|':>11} {'query loss before':>18} {'after':>8}"
    )
    for when, name, median, largest, before, after in one_inner_step():
        print(f"   {when:<8} {name:<6} {median:>14.2e} {largest:>11.2e} {before:>18.4f} {after:>8.4f}")


if __name__ == "__main__":
    main()
