"""Narrow fixes for Avalanche 0.6.0 bugs that make a strategy crash, hang, diverge or slow down here;
each changes nothing in the cases that already worked. Imports Avalanche: import only inside factories.

- BiC: ``MultiStepLR(verbose=...)`` raises on this torch (:func:`patch_bic_scheduler`).
- ER-AML: per-class memory loaders spin forever on small classes (:class:`ERAMLNoHang`).
- RWalk: 0/0 = NaN penalties after a task shorter than ``delta_t`` iterations (:class:`RWalkNoNaN`).
- CoPE: memory bookkeeping that grows with every online experience (:class:`CoPECompactMemory`).

(FeatureReplay's shared default criterion is handled where it is built, in :mod:`~clbench_avalanche.specs`.)
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from avalanche.benchmarks.utils.classification_dataset import _make_taskaware_tensor_classification_dataset
from avalanche.training.plugins import CoPEPlugin, RWalkPlugin
from avalanche.training.supervised import ER_AML
from avalanche.training.utils import cycle
from torch.utils.data import DataLoader


def patch_bic_scheduler() -> None:
    """BiC's bias-correction stage calls ``MultiStepLR(..., verbose=False)``; torch removed that
    argument, so the call raises TypeError. Give BiC's module a MultiStepLR that drops it (the value
    was False: no printing). Idempotent; a no-op on torch versions that still accept it."""
    import avalanche.training.plugins.bic as bic
    from torch.optim.lr_scheduler import MultiStepLR

    accepts_verbose = "verbose" in inspect.signature(MultiStepLR.__init__).parameters
    if getattr(bic.MultiStepLR, "clbench_shim", False) or accepts_verbose:
        return

    def multistep_lr(optimizer: Any, milestones: Any, gamma: float = 0.1, verbose: bool = False, **kw: Any) -> Any:
        """torch's MultiStepLR, ignoring ``verbose``."""
        return MultiStepLR(optimizer, milestones, gamma=gamma, **kw)

    multistep_lr.clbench_shim = True  # type: ignore[attr-defined]
    bic.MultiStepLR = multistep_lr


class ERAMLNoHang(ER_AML):
    """ER-AML whose per-class memory loaders cannot spin forever.

    Avalanche builds one loader per class of the memory with ``batch_size=train_mb_size`` and
    ``drop_last=True`` and cycles it; a class holding fewer samples than a batch yields no batch, so
    ``cycle`` loops forever (e.g. 200 samples of memory over 10 classes with batches of 32). Here
    such a class's loader keeps its last, smaller batch; classes with enough samples are unchanged.
    """

    def _before_training_exp(self, **kwargs: Any) -> None:
        """Avalanche's set-up, then the per-class loaders rebuilt so that small classes yield."""
        super()._before_training_exp(**kwargs)
        if self.replay_loader is not None:  # the loaders were built (lazily, nothing drawn yet)
            self.pos_neg_loaders = [
                cycle(
                    DataLoader(
                        group.buffer,
                        batch_size=self.train_mb_size,
                        shuffle=True,
                        drop_last=len(group.buffer) >= self.train_mb_size,
                    )
                )
                for group in self.storage_policy.buffer_groups.values()
            ]


class RWalkNoNaN(RWalkPlugin):
    """RWalk whose penalties stay finite when a task is shorter than ``delta_t`` iterations.

    Avalanche scales the path-integral scores by their maximum; when no score was accumulated (fewer
    than ``delta_t`` iterations in the first task) that maximum is 0 and the penalties become 0/0 =
    NaN, which turns the loss and then the weights into NaN. Here 0/0 counts as 0 (no score), the
    value the formula tends to; finite penalties are unchanged.
    """

    def after_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        """Avalanche's update, then NaN penalties (0/0) set to 0."""
        super().after_training_exp(strategy, *args, **kwargs)
        for penalty in (self.exp_penalties or {}).values():
            penalty.data = torch.nan_to_num(penalty.data, nan=0.0)


class CoPECompactMemory(CoPEPlugin):
    """CoPE whose per-class memories are re-packed into flat tensors after each experience.

    Avalanche's reservoir update (``concat`` then ``subset``) keeps a lazy index over every dataset a
    memory sample ever came from; under CoPE's online protocol (one experience per batch) that
    bookkeeping grows with each task, so each later experience costs more (measured: 7, 15, 26 s for
    the first three permuted-digits tasks). Re-packing the same samples, in the same order (so the
    reservoir weights stay aligned), as a tensor dataset keeps every experience at the first one's
    cost and changes no result.
    """

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        """Avalanche's prototype and memory update, then the memories re-packed."""
        super().after_training_exp(strategy, **kwargs)
        for group in self.storage_policy.buffer_groups.values():
            items = [group.buffer[i] for i in range(len(group.buffer))]  # (x [*input_shape], y, task)
            x = torch.stack([item[0] for item in items])  # [n, *input_shape]
            y = torch.tensor([int(item[1]) for item in items])  # [n]
            group.buffer = _make_taskaware_tensor_classification_dataset(x, y, task_labels=[int(i[2]) for i in items])
