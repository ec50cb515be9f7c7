"""Smoke tests parametrized over the whole registry: every registered component runs.

Components that later plugins add are covered as they arrive. Unavailable ones (a missing
optional dependency) are skipped with the reason ``clbench list`` shows.
"""

from __future__ import annotations

import math

import pytest

from clbench.components import BuildContext, Learner, MetaLearner, ReplayBuffer
from clbench.config import RunConfig, TrainConfig, resolve
from clbench.errors import UserError
from clbench.harness import RunContext, execute
from clbench.plugins import make_plugin_host
from clbench.registry import KIND_TABLE
from tests.helpers import TINY

HOST = make_plugin_host()
REGISTRY = HOST.registry
#: The tiny run's benchmark options (tests/helpers.py), applied where a benchmark has them; 2 tasks.
TINY_BENCHMARK = {k.split(".", 1)[1]: v for k, v in TINY.items() if k.startswith("benchmark.")} | {"n_tasks": 2}


def _params(kind):
    out = []
    for comp in REGISTRY.components(kind):
        marks = [pytest.mark.skip(reason=comp.unavailable_reason())] if not comp.available else []
        out.append(pytest.param(comp.name, id=comp.name, marks=marks))
    return out


#: Where benchmarks that read files find them: the made-up image files of ``vision_root``.
FILES: dict[str, object] = {}


@pytest.fixture(autouse=True)
def _data_files(vision_root):
    FILES.update(root=str(vision_root), download=False, checksum=False)


def tiny_config(**names) -> RunConfig:
    """Two tiny tasks of the chosen benchmark, one epoch, small batches; benchmarks that read
    data files read the made-up ones."""
    cfg = RunConfig()
    for section, name in names.items():
        cfg.set_name(section, name)
    bench = REGISTRY.get("benchmarks", cfg.names["benchmark"])
    for key, value in {**TINY_BENCHMARK, **FILES}.items():
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
    opts = comp.options(**{k: v for k, v in {**TINY_BENCHMARK, **FILES}.items() if k in comp.options.model_fields})
    stream = comp.factory(opts, BuildContext(seed=0, train=TrainConfig()))
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
    # flat vectors (the default stream) or images [C, H, W] (split-mnist): the first the model takes
    for shape, stream in (((32,), "shifting-linear"), ((1, 28, 28), "split-mnist")):
        try:
            model = comp.factory(comp.options(), BuildContext.for_shapes(shape, 5, shape[-1] // 4 or 1))
        except UserError:
            continue
        benchmark = stream
        break
    else:
        pytest.fail(f"model {name} takes neither flat vectors nor images")
    x = torch.randn(4, *shape)
    logits = model(x)
    assert logits.shape == (4, 5)
    logits.sum().backward()
    assert any(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    run_ok(tiny_config(model=name, benchmark=benchmark))


def _build(kind: str, name: str):
    """What a component's factory gives for the default tiny stream (the harness's build context)."""
    import torch

    comp = REGISTRY.get(kind, name)
    stream = REGISTRY.get("benchmarks", "shifting-linear").factory(
        REGISTRY.get("benchmarks", "shifting-linear").options(**TINY_BENCHMARK),
        BuildContext(seed=0, train=TrainConfig()),
    )
    ctx = RunContext(config=resolve(tiny_config(), REGISTRY), run_id="contract", host=HOST, stream=stream)
    ctx.generator = torch.Generator().manual_seed(0)
    return comp.factory(comp.options(), ctx.build_context())


@pytest.mark.parametrize("name", _params("meta"))
def test_meta_learner_runs(name):
    assert isinstance(_build("meta", name), MetaLearner)
    run_ok(tiny_config(meta=name))


@pytest.mark.parametrize("name", _params("replay"))
def test_replay_runs(name):
    buffer = _build("replay", name)
    assert buffer is None or (isinstance(buffer, ReplayBuffer) and len(buffer) == 0 and buffer.tasks() == [])
    run_ok(tiny_config(replay=name))


@pytest.mark.parametrize("name", _params("strategies"))
def test_strategy_runs(name):
    assert isinstance(_build("strategies", name), Learner)
    run_ok(tiny_config(strategy=name))


@pytest.mark.parametrize("kind", KIND_TABLE, ids=lambda k: k.plural)
def test_every_kind_has_its_default_and_a_contract_test(kind):
    """A new kind in the table needs a registered default (when it has one) and a test above."""
    if kind.default is not None:
        assert kind.default in REGISTRY.names(kind.plural)
    assert kind.plural in {"benchmarks", "models", "meta", "replay", "strategies"}, (
        f"add a contract test for {kind.plural}"
    )
