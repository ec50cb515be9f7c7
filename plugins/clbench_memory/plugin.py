"""Registers the memory models with clbench: ``dnc``, ``ntm`` and their swaps ``lstm``, ``transformer``.

Each reads a sample as a sequence of ``steps`` steps (default: the benchmark's ``sequence_steps``)
and classifies it at the last step, from a fixed initial state. This module imports no torch:
factories import the models when a run needs them.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from clbench import Options, hookimpl

_STEPS = Field(None, ge=1, description="steps a sample is read in; null = the benchmark's sequence_steps")
_CLIP = Field(20.0, gt=0, description="clamp controller output and logits to [-clip, clip]; null = no clipping")
_TRACE = Field(
    0, ge=0, description="test samples per task whose memory traces the traces plugin records at the end; 0 = none"
)
#: Batch sizes the models evaluate fastest in on a CPU (measured: per-sample state that stays in
#: cache beats large batches for the memory models; ~2x for the DNC at 64 against 1024).
EVAL_BATCH_SIZE = {"dnc": 64, "ntm": 128, "lstm": 64, "transformer": None}


class DNCOptions(Options):
    """Options of the Differentiable Neural Computer (defaults as in issue 4)."""

    memory_slots: int = Field(128, ge=1, description="memory rows N")
    word_size: int = Field(64, ge=1, description="memory word width W")
    read_heads: int = Field(4, ge=1, description="read heads R")
    write_heads: int = Field(1, ge=1, description="write heads (the paper uses 1)")
    hidden_size: int = Field(64, ge=1, description="LSTM controller units")
    clip: float | None = _CLIP
    steps: int | None = _STEPS
    trace_samples: int = _TRACE


class NTMOptions(Options):
    """Options of the Neural Turing Machine (controller sized for a parameter count near the DNC's)."""

    memory_slots: int = Field(128, ge=1, description="memory rows N")
    word_size: int = Field(64, ge=1, description="memory word width W")
    read_heads: int = Field(1, ge=1, description="read heads")
    write_heads: int = Field(1, ge=1, description="write heads")
    hidden_size: int = Field(112, ge=1, description="LSTM controller units")
    shift_range: int = Field(1, ge=0, description="location shifts run over -shift_range..shift_range")
    clip: float | None = _CLIP
    steps: int | None = _STEPS
    trace_samples: int = _TRACE


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


def _wrap(name: str, core_factory, steps: int | None, input_shape: tuple[int, ...], sequence_steps: int):
    """Build ``core_factory(features_per_step)`` inside a :class:`SequenceClassifier`."""
    from clbench_memory.sequence import SequenceClassifier, step_features

    n_steps = steps if steps is not None else sequence_steps
    core = core_factory(step_features(input_shape, n_steps))
    return SequenceClassifier(core, input_shape, n_steps, eval_batch_size=EVAL_BATCH_SIZE[name])


def build_dnc(options: DNCOptions, *, input_shape: tuple[int, ...], n_classes: int, sequence_steps: int):
    """DNC classifier: x [batch, *input_shape] -> logits [batch, n_classes]."""
    from clbench_memory.dnc import DNC

    o = options
    return _wrap(
        "dnc",
        lambda features: DNC(
            input_size=features,
            output_size=n_classes,
            memory_slots=o.memory_slots,
            word_size=o.word_size,
            read_heads=o.read_heads,
            write_heads=o.write_heads,
            hidden_size=o.hidden_size,
            clip_value=o.clip,
        ),
        o.steps,
        input_shape,
        sequence_steps,
    )


def build_ntm(options: NTMOptions, *, input_shape: tuple[int, ...], n_classes: int, sequence_steps: int):
    """NTM classifier: x [batch, *input_shape] -> logits [batch, n_classes]."""
    from clbench_memory.ntm import NTM

    o = options
    return _wrap(
        "ntm",
        lambda features: NTM(
            input_size=features,
            output_size=n_classes,
            memory_slots=o.memory_slots,
            word_size=o.word_size,
            read_heads=o.read_heads,
            write_heads=o.write_heads,
            hidden_size=o.hidden_size,
            shift_range=o.shift_range,
            clip_value=o.clip,
        ),
        o.steps,
        input_shape,
        sequence_steps,
    )


def build_lstm(options: LSTMOptions, *, input_shape: tuple[int, ...], n_classes: int, sequence_steps: int):
    """LSTM classifier: x [batch, *input_shape] -> logits [batch, n_classes]."""
    from clbench_memory.baselines import LSTMSequence

    o = options
    return _wrap(
        "lstm",
        lambda features: LSTMSequence(features, n_classes, hidden_size=o.hidden_size, layers=o.layers),
        o.steps,
        input_shape,
        sequence_steps,
    )


def build_transformer(
    options: TransformerOptions, *, input_shape: tuple[int, ...], n_classes: int, sequence_steps: int
):
    """Transformer classifier: x [batch, *input_shape] -> logits [batch, n_classes]."""
    from clbench_memory.baselines import TransformerSequence

    o = options
    return _wrap(
        "transformer",
        lambda features: TransformerSequence(
            features, n_classes, d_model=o.d_model, heads=o.heads, layers=o.layers, ff_size=o.ff_size
        ),
        o.steps,
        input_shape,
        sequence_steps,
    )
