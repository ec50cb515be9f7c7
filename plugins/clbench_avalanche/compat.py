"""Narrow fixes for Avalanche 0.6.0 bugs that make a strategy crash, hang, diverge or slow down here;
each changes nothing in the cases that already worked. Imports Avalanche: import only inside factories.

- BiC: ``MultiStepLR(verbose=...)`` raises on this torch (:func:`patch_bic_scheduler`).
- ER-AML: per-class memory loaders spin forever on small classes (:class:`ERAMLNoHang`).
- RWalk: 0/0 = NaN penalties after a task shorter than ``delta_t`` iterations (:class:`RWalkNoNaN`).
- CoPE: memory bookkeeping that grows with every online experience (:class:`CoPECompactMemory`).
- SI: on the CPU its weight snapshots alias the live weights, so SI is silently naive
  (:func:`patch_si_weight_snapshots`).

(FeatureReplay's shared default criterion is handled where it is built, in :mod:`~clbench_avalanche.specs`.)
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from avalanche.benchmarks.utils.classification_dataset import _make_taskaware_tensor_classification_dataset
from avalanche.training.plugins import CoPEPlugin, RWalkPlugin, SynapticIntelligencePlugin
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


def patch_bic_empty_distillation() -> None:
    """BiC's distillation loss is a cross-entropy over the logits of the *old* classes. In a
    domain-incremental stream (every task has all the classes, as shifting-linear and the digits
    streams) the old-class set is empty, the cross-entropy over zero logits is NaN, and BiC adds
    ``0 * NaN``: the loss it reports is NaN although no gradient changes (the empty slice passes
    none). Return a zero distillation loss when there are no old classes, so the reported loss is
    the classification loss that was trained on. Idempotent."""
    import avalanche.training.plugins.bic as bic

    original = bic.BiCPlugin.make_distillation_loss
    if getattr(original, "clbench_shim", False):
        return

    def make_distillation_loss(self: Any, strategy: Any) -> Any:
        """BiC's distillation loss; exactly 0 (not NaN) when no class is old."""
        initial, previous, _ = self._classes_groups(strategy)
        if not set(initial) | set(previous):
            return strategy.mb_output.new_zeros(())
        return original(self, strategy)

    make_distillation_loss.clbench_shim = True  # type: ignore[attr-defined]
    bic.BiCPlugin.make_distillation_loss = make_distillation_loss


def patch_si_weight_snapshots() -> None:
    """Make Synaptic Intelligence's weight snapshots copies.

    ``SynapticIntelligencePlugin.extract_weights`` stores ``param.detach().cpu().flatten()``: on a GPU
    that is a copy, on the CPU a view of the live parameter. The "old" weights then move with every
    optimiser step, so the path integral (grad x weight change) and the penalty's anchor difference
    are exactly 0, and SI trains exactly as naive (measured: identical accuracy matrices at any
    si_lambda). Snapshots are cloned here, which is what the GPU path already does. The method is
    replaced on the class because the plugin calls it by class name; idempotent.
    """
    if getattr(SynapticIntelligencePlugin.extract_weights, "clbench_fix", False):
        return

    def extract_weights(model: Any, target: Any, excluded_parameters: Any) -> None:
        """Copy the allowed parameters, flattened, into ``target`` (a dict of ParamData)."""
        for name, param in SynapticIntelligencePlugin.allowed_parameters(model, excluded_parameters):
            target[name].data = param.detach().cpu().flatten().clone()

    extract_weights.clbench_fix = True  # type: ignore[attr-defined]
    SynapticIntelligencePlugin.extract_weights = staticmethod(extract_weights)


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

    Avalanche's penalty is ``importance / max(importance) + relu(score) / max(score)``; when no
    path-integral score was accumulated (fewer than ``delta_t`` iterations in the first task) the
    second term is 0/0 = NaN, which turns the loss and then the weights into NaN. Here each term's
    0/0 counts as 0 (no score): the importance term is kept, and finite penalties are unchanged.
    """

    def after_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        """Avalanche's update, then the penalties recomputed with 0/0 = 0 where they were NaN."""
        super().after_training_exp(strategy, *args, **kwargs)
        if not any(torch.isnan(p.data).any() for p in self.exp_penalties.values()):
            return
        max_imp = max(x.data.max() for x in self.exp_importance.values())
        max_score = max(x.data.max() for x in self.exp_scores.values())
        for name, penalty in self.exp_penalties.items():
            imp = self.exp_importance[name].data
            score = torch.relu(self.exp_scores[name].data.expand(imp.shape))
            penalty.data = torch.nan_to_num(imp / max_imp, nan=0.0) + torch.nan_to_num(score / max_score, nan=0.0)


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
