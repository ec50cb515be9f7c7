"""The table of Avalanche strategies that clbench exposes: options (validated) and how to build each.

This module imports neither torch nor Avalanche: the registration hook reads the table cheaply, and
each ``build`` function imports Avalanche only when a run needs it. One generic adapter
(:mod:`clbench_avalanche.adapter`) runs every entry.

Defaults policy: regularisation strengths and other method hyperparameters come from Avalanche's
reproduction scripts (ContinualAI/continual-learning-baselines, "CLB" below, with the experiment
named) where they exist, else from the paper or Avalanche's own default (said in each description).
Memory sizes of the replay methods default to Avalanche's 200 samples so that their rows compare at
equal memory; GEM and A-GEM keep CLB's per-experience memories (their paper protocol).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, PositiveInt, model_validator

from clbench import Options


class AvalancheOptions(Options):
    """Options every ``avalanche.*`` strategy has."""

    crosscheck: bool = Field(
        False,
        description="also run Avalanche's own evaluation (accuracy, forgetting, BWT) after each task and keep "
        "its metrics in the record's extras.avalanche_crosscheck (slower)",
    )


class JointOptions(AvalancheOptions):
    """Options of ``avalanche.joint``."""

    mode: Literal["retrain", "final"] = Field(
        "retrain",
        description="retrain: after each task a fresh model is trained jointly on all tasks so far (as clbench's "
        "joint); "
        "final: one JointTraining on the whole stream at the last task (Avalanche's intended use)",
    )


class FromScratchOptions(AvalancheOptions):
    """Options of ``avalanche.from_scratch``."""

    reset_optimizer: bool = Field(True, description="also reset the optimiser state each task (Avalanche default)")


class EWCOptions(AvalancheOptions):
    """Options of ``avalanche.ewc``."""

    ewc_lambda: float = Field(1.0, ge=0, description="penalty strength (CLB permuted-MNIST)")
    mode: Literal["separate", "online"] = Field("separate", description="one penalty per task, or online EWC (CLB)")
    decay_factor: float | None = Field(
        None, gt=0, le=1, description="importance decay of online EWC; needed when mode=online"
    )
    keep_importance_data: bool = Field(False, description="keep every task's importances (separate mode)")

    @model_validator(mode="after")
    def _online_needs_decay(self) -> EWCOptions:
        if self.mode == "online" and self.decay_factor is None:
            raise ValueError("mode=online needs decay_factor")
        return self


class SIOptions(AvalancheOptions):
    """Options of ``avalanche.si``."""

    si_lambda: float = Field(10.0, ge=0, description="penalty strength (CLB permuted-MNIST)")
    eps: float = Field(0.1, gt=0, description="damping of the importance denominator (CLB permuted-MNIST)")


class LwFOptions(AvalancheOptions):
    """Options of ``avalanche.lwf``."""

    alpha: float = Field(1.0, ge=0, description="distillation weight (CLB split-TinyImageNet)")
    temperature: float = Field(2.0, gt=0, description="softmax temperature (CLB; Hinton et al. 2015)")


class MASOptions(AvalancheOptions):
    """Options of ``avalanche.mas``."""

    lambda_reg: float = Field(1.0, ge=0, description="penalty strength (CLB split-TinyImageNet)")
    alpha: float = Field(0.5, ge=0, le=1, description="moving-average factor of the importances (CLB)")


class RWalkOptions(AvalancheOptions):
    """Options of ``avalanche.rwalk``."""

    ewc_lambda: float = Field(0.1, ge=0, description="penalty strength (CLB split-MNIST)")
    ewc_alpha: float = Field(0.9, ge=0, le=1, description="moving average of the Fisher (CLB split-MNIST)")
    delta_t: PositiveInt = Field(10, description="iterations between path-integral updates (CLB split-MNIST)")


class GEMOptions(AvalancheOptions):
    """Options of ``avalanche.gem``."""

    patterns_per_exp: PositiveInt = Field(256, description="samples kept per task (CLB split-CIFAR100)")
    memory_strength: float = Field(0.5, ge=0, description="margin added to the QP solution (GEM paper; CLB)")


class AGEMOptions(AvalancheOptions):
    """Options of ``avalanche.agem``."""

    patterns_per_exp: PositiveInt = Field(250, description="samples kept per task (CLB permuted-MNIST)")
    sample_size: PositiveInt = Field(
        256, description="memory samples drawn for the reference gradient (CLB permuted-MNIST)"
    )


class MemoryOptions(AvalancheOptions):
    """Options of replay strategies that only take a memory size."""

    mem_size: PositiveInt = Field(200, description="replay memory, in samples (Avalanche default)")


class MemoryBatchOptions(MemoryOptions):
    """Options of replay strategies with a memory batch size."""

    batch_size_mem: PositiveInt = Field(10, description="memory samples per training batch (Avalanche default; CLB)")


class GSSOptions(MemoryOptions):
    """Options of ``avalanche.gss_greedy``."""

    mem_strength: PositiveInt = Field(
        10, description="memory samples used to score gradient diversity (CLB split-MNIST)"
    )


class MIROptions(MemoryBatchOptions):
    """Options of ``avalanche.mir``."""

    subsample: PositiveInt = Field(50, description="memory candidates scored per step (CLB permuted-MNIST)")


class DEROptions(MemoryOptions):
    """Options of ``avalanche.der``."""

    batch_size_mem: PositiveInt | None = Field(
        None, description="memory batch size; null = train.batch_size (Avalanche default)"
    )
    alpha: float = Field(0.1, ge=0, description="weight of the logit-matching (MSE) term (Avalanche default)")
    beta: float = Field(0.5, ge=0, description="weight of the memory CE term; > 0 is DER++ (Avalanche default)")


class ERAMLOptions(MemoryBatchOptions):
    """Options of ``avalanche.er_aml``."""

    temp: float = Field(0.1, gt=0, description="supervised-contrastive temperature (CLB split-CIFAR10)")
    base_temp: float = Field(0.07, gt=0, description="base temperature (Avalanche default)")
    same_task_neg: bool = Field(True, description="take negatives from the same task only (Avalanche default)")


class BiCOptions(MemoryOptions):
    """Options of ``avalanche.bic``."""

    val_percentage: float = Field(
        0.1, gt=0, lt=1, description="share of the memory held out to fit the bias layer (paper)"
    )
    T: float = Field(2.0, gt=0, description="distillation temperature (paper)")
    stage_2_epochs: PositiveInt = Field(200, description="epochs fitting the bias layer (paper; Avalanche default)")
    lamb: float = Field(-1.0, description="distillation weight; -1 = seen/total classes ratio (paper)")
    lr: float = Field(0.1, gt=0, description="learning rate of the bias-layer stage (paper)")


class MEROptions(MemoryBatchOptions):
    """Options of ``avalanche.mer``."""

    n_inner_steps: PositiveInt = Field(5, description="inner Reptile steps per batch (Avalanche default)")
    beta: float = Field(0.1, gt=0, le=1, description="within-batch Reptile rate (Avalanche default)")
    gamma: float = Field(0.1, gt=0, le=1, description="across-batch Reptile rate (Avalanche default)")


class LFLOptions(AvalancheOptions):
    """Options of ``avalanche.lfl``."""

    lambda_e: float = Field(0.0001, ge=0, description="feature-distance penalty (CLB permuted-MNIST)")


class CoPEOptions(MemoryOptions):
    """Options of ``avalanche.cope``."""

    alpha: float = Field(0.99, ge=0, le=1, description="prototype momentum (paper; CLB split-MNIST)")
    T: float = Field(0.1, gt=0, description="softmax temperature of the PPP loss (paper; CLB)")


class SLDAOptions(AvalancheOptions):
    """Options of ``avalanche.slda``."""

    shrinkage_param: float = Field(1e-4, ge=0, description="covariance shrinkage (paper; CLB CORe50)")
    streaming_update_sigma: bool = Field(True, description="update the covariance while streaming (paper; CLB CORe50)")


class SCROptions(MemoryOptions):
    """Options of ``avalanche.scr``."""

    temperature: float = Field(0.1, gt=0, description="supervised-contrastive temperature (CLB split-CIFAR10)")
    batch_size_mem: PositiveInt = Field(100, description="memory samples per batch (CLB split-CIFAR10)")
    projection_size: PositiveInt = Field(128, description="output size of the projection head (SupCon paper's 128)")


@dataclass(frozen=True)
class StrategySpec:
    """One ``avalanche.<name>`` strategy.

    ``build(options, kit)`` returns the Avalanche strategy (``kit`` is the adapter's
    :class:`~clbench_avalanche.adapter.Kit`: the model, train settings and helpers). ``mode`` is how
    a clbench task is fed to it: ``task`` (one ``strategy.train(experience)`` per task), ``joint``
    (see :class:`JointOptions`) or ``online`` (the task is cut into experiences of ``train.batch_size``
    samples, Avalanche's online protocol). ``output`` is the test-time decision rule when it is not
    the model's logits: ``logits``, ``cope`` (nearest prototype), ``bic`` (bias-corrected logits),
    ``slda`` (streaming LDA on the features), ``ncm`` (nearest class mean of the features).
    """

    name: str
    description: str
    options: type[AvalancheOptions]
    build: Callable[[Any, Any], Any]
    mode: Literal["task", "joint", "online"] = "task"
    output: Literal["logits", "cope", "bic", "slda", "ncm"] = "logits"


def _kwargs(options: AvalancheOptions, *drop: str) -> dict[str, Any]:
    """The strategy's keyword arguments: every option except crosscheck (and ``drop``)."""
    return options.model_dump(exclude={"crosscheck", *drop})


def generic(cls_name: str) -> Callable[[Any, Any], Any]:
    """A build function for strategies whose options are exactly their keyword arguments."""

    def build(options: AvalancheOptions, kit: Any) -> Any:
        """Build the Avalanche strategy with the options as keyword arguments."""
        return kit.make(cls_name, **_kwargs(options))

    return build


def _build_joint(options: JointOptions, kit: Any) -> Any:
    return kit.make("JointTraining")


def _build_rwalk(options: RWalkOptions, kit: Any) -> Any:
    from clbench_avalanche.compat import RWalkNoNaN

    return kit.make("Naive", plugins=[RWalkNoNaN(**_kwargs(options))])


def _build_si(options: SIOptions, kit: Any) -> Any:
    from clbench_avalanche.compat import patch_si_weight_snapshots

    patch_si_weight_snapshots()
    return kit.make("SynapticIntelligence", **_kwargs(options))


def _build_gss(options: GSSOptions, kit: Any) -> Any:
    return kit.make("GSS_greedy", input_size=list(kit.input_shape), **_kwargs(options))


def _build_er_aml(options: ERAMLOptions, kit: Any) -> Any:
    from clbench_avalanche.compat import ERAMLNoHang

    split = kit.split_model()
    return kit.make(ERAMLNoHang, model=split, feature_extractor=split.body, **_kwargs(options))


def _build_bic(options: BiCOptions, kit: Any) -> Any:
    from clbench_avalanche.compat import patch_bic_empty_distillation, patch_bic_scheduler

    patch_bic_scheduler()
    patch_bic_empty_distillation()
    return kit.make("BiC", **_kwargs(options))


def _build_lfl(options: LFLOptions, kit: Any) -> Any:
    return kit.make("LFL", model=kit.split_model(), **_kwargs(options))


def _build_cope(options: CoPEOptions, kit: Any) -> Any:
    # p_size is the width of the model's last layer: clbench models end in n_classes outputs. CoPE
    # appends an L2 normalisation to the last Linear by setattr on the top module, which only works
    # for a top-level layer (Avalanche's swap_last_fc_layer): hence the split model, whose head is one.
    # Avalanche's CoPE is a SupervisedTemplate with a CoPEPlugin: the same here, with the plugin's
    # memory kept compact (see clbench_avalanche.compat.CoPECompactMemory).
    from clbench_avalanche.compat import CoPECompactMemory

    plugin = CoPECompactMemory(n_classes=kit.n_classes, p_size=kit.n_classes, **_kwargs(options))
    return kit.make("Naive", model=kit.split_model(), plugins=[plugin])


def _build_cwr(options: AvalancheOptions, kit: Any) -> Any:
    split = kit.split_model()
    return kit.make("CWRStar", model=split, cwr_layer_name="head")


def _build_slda(options: SLDAOptions, kit: Any) -> Any:
    split = kit.split_model()
    return kit.make(
        "StreamingLDA",
        model=None,
        slda_model=split.body,
        input_size=split.features,
        num_classes=kit.n_classes,
        **_kwargs(options),
    )


def _build_scr(options: SCROptions, kit: Any) -> Any:
    import torch
    from avalanche.models import SCRModel

    split = kit.split_model()
    width = split.features
    projection = torch.nn.Sequential(
        torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, options.projection_size)
    )  # [n, features] -> [n, projection_size]
    return kit.make("SCR", model=SCRModel(split.body, projection), **_kwargs(options, "projection_size"))


def _build_feature_replay(options: MemoryBatchOptions, kit: Any) -> Any:
    from avalanche.training.losses import MaskedCrossEntropy

    # Avalanche's default criterion is one MaskedCrossEntropy() instance shared by every FeatureReplay
    # (a default argument) that remembers the classes it saw: each run needs its own, fresh one.
    criterion = MaskedCrossEntropy()
    return kit.make(
        "FeatureReplay", model=kit.split_model(), criterion=criterion, last_layer_name="head", **_kwargs(options)
    )


_S = StrategySpec
_LAST = "features = input of the model's last Linear"

SPECS: tuple[StrategySpec, ...] = (
    _S("naive", "fine-tunes on each task in turn (lower bound)", AvalancheOptions, generic("Naive")),
    _S("cumulative", "retrains on the union of all tasks so far", AvalancheOptions, generic("Cumulative")),
    _S("joint", "offline upper bound (Avalanche's JointTraining)", JointOptions, _build_joint, mode="joint"),
    _S("from_scratch", "re-initialises the model before each task", FromScratchOptions, generic("FromScratchTraining")),
    _S("ewc", "Elastic Weight Consolidation (Kirkpatrick et al. 2017)", EWCOptions, generic("EWC")),
    _S("si", "Synaptic Intelligence (Zenke et al. 2017)", SIOptions, _build_si),
    _S("lwf", "Learning without Forgetting (Li & Hoiem 2017)", LwFOptions, generic("LwF")),
    _S("mas", "Memory Aware Synapses (Aljundi et al. 2018)", MASOptions, generic("MAS")),
    _S("rwalk", "Riemannian Walk (Chaudhry et al. 2018): Naive + RWalkPlugin", RWalkOptions, _build_rwalk),
    _S("gem", "Gradient Episodic Memory (Lopez-Paz & Ranzato 2017), QP by quadprog", GEMOptions, generic("GEM")),
    _S("agem", "Averaged GEM (Chaudhry et al. 2019)", AGEMOptions, generic("AGEM")),
    _S("replay", "experience replay, experience-balanced memory", MemoryOptions, generic("Replay")),
    _S(
        "gdumb",
        "GDumb (Prabhu et al. 2020): retrains from scratch on a class-balanced memory",
        MemoryOptions,
        generic("GDumb"),
    ),
    _S("gss_greedy", "Gradient-based Sample Selection, greedy (Aljundi et al. 2019)", GSSOptions, _build_gss),
    _S("mir", "Maximally Interfered Retrieval (Aljundi et al. 2019)", MIROptions, generic("MIR")),
    _S("der", "Dark Experience Replay / DER++ (Buzzega et al. 2020)", DEROptions, generic("DER")),
    _S("er_ace", "ER with asymmetric cross-entropy (Caccia et al. 2022)", MemoryBatchOptions, generic("ER_ACE")),
    _S("er_aml", f"ER with asymmetric metric learning (Caccia et al. 2022); {_LAST}", ERAMLOptions, _build_er_aml),
    _S(
        "bic",
        "Bias Correction (Wu et al. 2019): replay, distillation, bias layer",
        BiCOptions,
        _build_bic,
        output="bic",
    ),
    _S("mer", "Meta-Experience Replay (Riemer et al. 2019)", MEROptions, generic("MER")),
    _S("lfl", f"Less-Forgetful Learning (Jung et al. 2016); {_LAST}", LFLOptions, _build_lfl),
    _S(
        "cope",
        "Continual Prototype Evolution (De Lange & Tuytelaars 2021); online: one batch per experience",
        CoPEOptions,
        _build_cope,
        mode="online",
        output="cope",
    ),
    _S("cwr_star", "CWR* (Lomonaco et al. 2020) on the model's last Linear", AvalancheOptions, _build_cwr),
    _S(
        "slda",
        f"Deep Streaming LDA (Hayes & Kanan 2020) on the frozen, untrained model; {_LAST}",
        SLDAOptions,
        _build_slda,
        output="slda",
    ),
    _S(
        "scr",
        f"Supervised Contrastive Replay (Mai et al. 2021), no augmentations, nearest-mean classifier; {_LAST}",
        SCROptions,
        _build_scr,
        output="ncm",
    ),
    _S(
        "feature_replay",
        f"feature replay, PR-ACE protocol (Magistri et al. 2024); {_LAST}",
        MemoryBatchOptions,
        _build_feature_replay,
    ),
)
