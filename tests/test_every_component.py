"""Smoke tests parametrized over the whole registry: every registered component runs.

Components that later plugins add are covered as they arrive. Unavailable ones (a missing
optional dependency) are skipped with the reason ``clbench list`` shows.
"""

from __future__ import annotations

import math

import pytest

from clbench.config import RunConfig, resolve
from clbench.harness import execute
from clbench.plugins import make_plugin_host

HOST = make_plugin_host()
REGISTRY = HOST.registry
#: Options that make any benchmark tiny, applied where the benchmark has them.
TINY_BENCHMARK = {"n_tasks": 2, "train_size": 48, "test_size": 24}


def _params(kind):
    out = []
    for comp in REGISTRY.components(kind):
        marks = [pytest.mark.skip(reason=comp.unavailable_reason())] if not comp.available else []
        out.append(pytest.param(comp.name, id=comp.name, marks=marks))
    return out


def tiny_config(**names) -> RunConfig:
    """Two tiny tasks of the chosen benchmark, one epoch, small batches."""
    cfg = RunConfig()
    for section, name in names.items():
        cfg.set_name(section, name)
    bench = REGISTRY.get("benchmarks", cfg.names["benchmark"])
    for key, value in TINY_BENCHMARK.items():
        if key in bench.options.model_fields:
            cfg.options["benchmark"][key] = value
    cfg.train.update({"epochs": 1, "batch_size": 16})
    return cfg


def run_ok(cfg: RunConfig) -> dict:
    record = execute(resolve(cfg, REGISTRY), HOST, results=None).record
    assert record["status"] == "ok", record.get("traceback") or record.get("error")
    T = len(record["accuracy_matrix"])
    assert T >= 1 and all(len(row) == T for row in record["accuracy_matrix"])
    assert all(0.0 <= a <= 1.0 for row in record["accuracy_matrix"] for a in row)
    assert not record["hook_errors"]
    return record


@pytest.mark.parametrize("name", _params("benchmarks"))
def test_benchmark_builds_a_valid_stream(name):
    comp = REGISTRY.get("benchmarks", name)
    opts = comp.options(**{k: v for k, v in TINY_BENCHMARK.items() if k in comp.options.model_fields})
    stream = comp.factory(opts, seed=0)
    assert len(stream.tasks) >= 1 and stream.n_classes >= 2
    for task in stream.tasks:
        assert tuple(task.train_x.shape[1:]) == tuple(stream.input_shape)
        assert int(task.train_y.max()) < stream.n_classes and int(task.test_y.min()) >= 0
    assert math.prod(stream.input_shape) > 0 and stream.sequence_steps >= 1
    run_ok(tiny_config(benchmark=name))


@pytest.mark.parametrize("name", _params("models"))
def test_model_trains_and_backpropagates(name):
    import torch

    comp = REGISTRY.get("models", name)
    model = comp.factory(comp.options(), input_shape=(32,), n_classes=5, sequence_steps=8)
    x = torch.randn(4, 32)
    logits = model(x)
    assert logits.shape == (4, 5)
    logits.sum().backward()
    assert any(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    run_ok(tiny_config(model=name))


@pytest.mark.parametrize("name", _params("meta"))
def test_meta_learner_runs(name):
    run_ok(tiny_config(meta=name))


@pytest.mark.parametrize("name", _params("replay"))
def test_replay_runs(name):
    run_ok(tiny_config(replay=name))


@pytest.mark.parametrize("name", _params("strategies"))
def test_strategy_runs(name):
    run_ok(tiny_config(strategy=name))
