"""Registers the memory models with clbench: ``dnc``, ``ntm`` and their swaps ``lstm``, ``transformer``.

Each reads a sample as a sequence of ``steps`` steps (default: the benchmark's ``sequence_steps``)
and classifies it at the last step, from a fixed initial state. This module imports no torch:
factories import the models when a run needs them.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from clbench import Options, hookimpl
from clbench.components import BuildContext

_STEPS = Field(None, ge=1, description="steps a sample is read in; null = the benchmark's sequence_steps")
_CLIP = Field(20.0, gt=0, description="clamp controller output and logits to [-clip, clip]; null = no clipping")
_TRACE = Field(
    0, ge=0, description="test samples per task whose memory traces the traces plugin records at the end; 0 = none"
)
#: Batch sizes the models evaluate fastest in on a CPU (measured: per-sample state that stays in
#: cache beats large batches for the memory models; ~2x for the DNC at 64 against 1024).
EVAL_BATCH_SIZE = {"dnc": 64, "ntm": 128, "lstm": 64, "transformer": None}


class _MemoryOptions(Options):
    """Options the two memory-augmented networks share (DNC defaults)."""

    memory_slots: int = Field(128, ge=1, description="memory rows N")
    word_size: int = Field(64, ge=1, description="memory word width W")
    read_heads: int = Field(4, ge=1, description="read heads R")
    write_heads: int = Field(1, ge=1, description="write heads (the DNC paper uses 1)")
    hidden_size: int = Field(64, ge=1, description="LSTM controller units")
    clip: float | None = _CLIP
    steps: int | None = _STEPS
    trace_samples: int = _TRACE


class DNCOptions(_MemoryOptions):
    """Options of the Differentiable Neural Computer (defaults: the article's 128 x 64 memory)."""


class NTMOptions(_MemoryOptions):
    """Options of the Neural Turing Machine (controller sized for a parameter count near the DNC's)."""

    read_heads: int = Field(1, ge=1, description="read heads R")
    hidden_size: int = Field(112, ge=1, description="LSTM controller units")
    shift_range: int = Field(1, ge=0, description="location shifts run over -shift_range..shift_range")


class LSTMOptions(Options):
    """Options of the LSTM swap (default size: a parameter count near the default DNC's)."""

    hidden_size: int = Field(160, ge=1, description="LSTM units per layer")
    layers: int = Field(1, ge=1, description="stacked LSTM layers")
    steps: int | None = _STEPS


class TransformerOptions(Options):
    """Options of the causal transformer swap (default size: a parameter count near the DNC's)."""

    d_model: int = Field(64, ge=2, description="model width (even, divisible by heads)")
    heads: int = Field(4, ge=1, description="attention heads")
    layers: int = Field(2, ge=1, description="transformer blocks")
    ff_size: int = Field(256, ge=1, description="feed-forward hidden units")
    steps: int | None = _STEPS

    @model_validator(mode="after")
    def _check_width(self) -> TransformerOptions:
        if self.d_model % 2 or self.d_model % self.heads:
            raise ValueError("d_model must be even and divisible by heads")
        return self


@hookimpl
def clbench_register_models(register: Any) -> None:
    """Register dnc, ntm, lstm and transformer."""
    register(
        "dnc",
        build_dnc,
        description="Differentiable Neural Computer (Graves et al. 2016): LSTM controller, 128x64 memory, 4 read heads",
        options=DNCOptions,
    )
    register(
        "ntm",
        build_ntm,
        description="Neural Turing Machine (Graves et al. 2014): content + shift addressing, LSTM controller",
        options=NTMOptions,
    )
    register(
        "lstm",
        build_lstm,
        description="LSTM reading the sample as a sequence (the DNC without memory)",
        options=LSTMOptions,
    )
    register(
        "transformer",
        build_transformer,
        description="small causal transformer reading the sample as a sequence",
        options=TransformerOptions,
    )


def _wrap(name: str, core_factory: Any, options: Any, build: BuildContext) -> Any:
    """Build ``core_factory(features_per_step)`` inside a :class:`SequenceClassifier` reading a
    sample [*build.input_shape] in ``options.steps`` steps (default: the stream's)."""
    from clbench_memory.sequence import SequenceClassifier, step_features

    n_steps = options.steps if options.steps is not None else build.sequence_steps
    core = core_factory(step_features(build.input_shape, n_steps))
    return SequenceClassifier(
        core,
        build.input_shape,
        n_steps,
        eval_batch_size=EVAL_BATCH_SIZE[name],
        samples_to_trace=getattr(options, "trace_samples", 0),
    )


#: Options that configure the wrapper, not the core model; and options the core names differently.
_WRAPPER_OPTIONS = {"steps", "trace_samples"}
_CORE_NAMES = {"clip": "clip_value"}


def core_kwargs(options: Options) -> dict[str, Any]:
    """The keyword arguments of a core model (DNC, NTM, LSTM, transformer) from its options: every
    option but the wrapper's, under the core's parameter names."""
    dumped = options.model_dump(exclude=_WRAPPER_OPTIONS)
    return {_CORE_NAMES.get(k, k): v for k, v in dumped.items()}


def build_dnc(options: DNCOptions, build: BuildContext) -> Any:
    """DNC classifier: x [batch, *input_shape] -> logits [batch, n_classes]."""
    from clbench_memory.dnc import DNC

    return _wrap(
        "dnc", lambda f: DNC(input_size=f, output_size=build.n_classes, **core_kwargs(options)), options, build
    )


def build_ntm(options: NTMOptions, build: BuildContext) -> Any:
    """NTM classifier: x [batch, *input_shape] -> logits [batch, n_classes]."""
    from clbench_memory.ntm import NTM

    return _wrap(
        "ntm", lambda f: NTM(input_size=f, output_size=build.n_classes, **core_kwargs(options)), options, build
    )


def build_lstm(options: LSTMOptions, build: BuildContext) -> Any:
    """LSTM classifier: x [batch, *input_shape] -> logits [batch, n_classes]."""
    from clbench_memory.baselines import LSTMSequence

    return _wrap("lstm", lambda f: LSTMSequence(f, build.n_classes, **core_kwargs(options)), options, build)


def build_transformer(options: TransformerOptions, build: BuildContext) -> Any:
    """Transformer classifier: x [batch, *input_shape] -> logits [batch, n_classes]."""
    from clbench_memory.baselines import TransformerSequence

    return _wrap(
        "transformer", lambda f: TransformerSequence(f, build.n_classes, **core_kwargs(options)), options, build
    )
