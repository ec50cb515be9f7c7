"""The shifting-linear benchmark: one labelling rule, a new linear view of the input per task.

A latent vector ``z`` [latent_dim] ~ N(0, I) is labelled by one fixed rule shared by every task:
``y = argmax(W z + c)`` with a random teacher ``W`` [n_classes, latent_dim]. Task t observes
``x = A_t z + b_t + noise`` [input_dim]: a task-specific linear map ``A_t`` [input_dim, latent_dim]
(Gaussian, or orthonormal columns) and an offset ``b_t`` (the affine part, which keeps tasks
distinguishable to a joint learner). Everything is derived from the seed.

Why it forgets: each task needs its own read-out of ``z`` from ``x``, so fitting task t moves the
network away from the read-outs of earlier tasks; why it can be learnt jointly: the offsets and the
distinct column spaces tell the tasks apart.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from clbench import Options, hookimpl
from clbench.components import BuildContext, Task, TaskStream, derive_seed

NAME = "shifting-linear"


class ShiftingLinearOptions(Options):
    """Options of the shifting-linear stream (defaults calibrated, see README)."""

    n_tasks: int = Field(20, ge=1, le=1000, description="number of tasks")
    train_size: int = Field(1000, ge=1, description="training samples per task")
    test_size: int = Field(1000, ge=1, description="test samples per task")
    input_dim: int = Field(32, ge=1, description="observed input features")
    latent_dim: int = Field(4, ge=1, description="latent features the label is defined on")
    n_classes: int = Field(5, ge=2, description="number of classes")
    transform: Literal["gaussian", "orthogonal"] = Field(
        "gaussian", description="family of A_t: i.i.d. Gaussian entries, or orthonormal columns (a rotation)"
    )
    offset_scale: float = Field(1.0, ge=0, description="std of the per-task offset b_t; 0 = purely linear")
    noise: float = Field(0.05, ge=0, description="std of Gaussian noise added to x")
    margin: float = Field(
        0.25, ge=0, description="drop latents whose two best teacher scores differ by less (a margin between classes)"
    )
    sequence_steps: int = Field(8, ge=1, description="default steps a memory model reads a sample in")
    seed: int | None = Field(None, ge=0, description="stream seed; null = the run's seed")
    tasks: list[int] | None = Field(
        None, description="train on only these task indices, in this order (e.g. [7] = task 7 alone); null = all"
    )

    @model_validator(mode="after")
    def _check_dims(self) -> ShiftingLinearOptions:
        if self.transform == "orthogonal" and self.latent_dim > self.input_dim:
            raise ValueError("orthogonal transforms need latent_dim <= input_dim")
        if self.tasks is not None:
            if (
                not self.tasks
                or any(t < 0 or t >= self.n_tasks for t in self.tasks)
                or len(set(self.tasks)) != len(self.tasks)
            ):
                raise ValueError(f"tasks must be distinct indices in 0..{self.n_tasks - 1}")
        return self


#: Salt of the stream's generator (see :func:`clbench.components.derive_seed`).
STREAM_SALT = 17


def build_stream(options: ShiftingLinearOptions, build: BuildContext) -> TaskStream:
    """The benchmark's factory: :func:`generate` from the ``seed`` option, else the run seed."""
    return generate(options, build.seed)


def generate(options: ShiftingLinearOptions, seed: int) -> TaskStream:
    """Generate the stream from ``seed`` (the ``seed`` option, when set, wins); the same options and
    seed give the same tensors on any machine."""
    import torch

    o = options
    g = torch.Generator().manual_seed(derive_seed(o.seed if o.seed is not None else seed, STREAM_SALT))
    teacher = torch.randn(o.n_classes, o.latent_dim, generator=g)  # [C, d]
    teacher_bias = 0.1 * torch.randn(o.n_classes, generator=g)  # [C]

    def _latents(n: int) -> torch.Tensor:
        kept, have = [], 0
        while have < n:  # rejection sampling keeps a margin around class boundaries
            z = torch.randn(max(2 * (n - have), 64), o.latent_dim, generator=g)  # [m, d]
            top2 = (z @ teacher.T + teacher_bias).topk(2, dim=1).values  # [m, 2]
            z = z[top2[:, 0] - top2[:, 1] >= o.margin]
            kept.append(z)
            have += z.shape[0]
        return torch.cat(kept)[:n]

    def draw(n: int, A: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = _latents(n)  # [n, d]
        y = (z @ teacher.T + teacher_bias).argmax(dim=1)  # [n]
        x = z @ A.T + b + o.noise * torch.randn(n, o.input_dim, generator=g)  # [n, D]
        return x.float(), y.long()

    tasks = []
    for t in range(o.n_tasks):
        if o.transform == "gaussian":
            A = torch.randn(o.input_dim, o.latent_dim, generator=g) / o.latent_dim**0.5  # [D, d]
        else:
            q, r = torch.linalg.qr(torch.randn(o.input_dim, o.latent_dim, generator=g))
            A = q * torch.sign(torch.diagonal(r))  # [D, d], orthonormal columns
        b = o.offset_scale * torch.randn(o.input_dim, generator=g)  # [D]
        train_x, train_y = draw(o.train_size, A, b)
        test_x, test_y = draw(o.test_size, A, b)
        tasks.append(Task(t, train_x, train_y, test_x, test_y, name=f"task-{t}"))
    if o.tasks is not None:
        tasks = [tasks[i] for i in o.tasks]
    return TaskStream(
        name=NAME,
        tasks=tasks,
        n_classes=o.n_classes,
        input_shape=(o.input_dim,),
        sequence_steps=o.sequence_steps,
        info={"stream_seed": o.seed if o.seed is not None else seed},
    )


@hookimpl
def clbench_register_benchmarks(register):
    """Register the core's shifting-linear benchmark."""
    register(
        NAME,
        build_stream,
        description="T tasks, each a different linear (affine) view of one latent labelling rule",
        options=ShiftingLinearOptions,
    )
