"""Tests of the Avalanche strategies (plugin clbench_avalanche), run in-process: every registered
``avalanche.*`` strategy on a tiny shifting-linear and a digits stream, determinism, the cross-check
against Avalanche's own metrics, train settings, the model split, and one end-to-end CLI run.

Avalanche is imported once per test process (the first run that needs it, ~5-10 s).
"""

from __future__ import annotations

import importlib.util
import json
import math

import pytest

from clbench.config import RunConfig, resolve
from clbench.errors import UserError
from clbench.harness import RunContext, execute
from clbench.plugins import make_plugin_host
from clbench_avalanche.specs import SPECS
from tests.helpers import run_cli, tiny_assignments

HOST = make_plugin_host()
NAMES = [n for n in HOST.registry.names("strategies") if n.startswith("avalanche.")]
pytestmark = pytest.mark.skipif(importlib.util.find_spec("avalanche") is None, reason="Avalanche is not installed")

TINY = tuple(tiny_assignments(2, train_size=100, test_size=50))  # replay's edge over naive needs 100 samples
#: Two class-incremental tasks of five digits each, ~290 training images per task.
DIGITS = ("benchmark.n_tasks=2", "benchmark.test_fraction=0.8", "train.epochs=1")


def config(name: str, *sets: str, benchmark: str = "shifting-linear", seed: int = 0) -> RunConfig:
    """A run of strategy ``name`` with ``--set`` overrides."""
    cfg = RunConfig(seed=seed)
    cfg.set_name("strategy", name)
    cfg.set_name("benchmark", benchmark)
    for s in sets:
        cfg.apply_set(s)
    return cfg


def run(cfg: RunConfig) -> dict:
    """Execute in-process without writing a record; the run must succeed."""
    record = execute(resolve(cfg, HOST.registry), HOST, results=None).record
    assert record["status"] == "ok", record.get("traceback") or record.get("error")
    T = len(record["accuracy_matrix"])
    assert all(len(row) == T for row in record["accuracy_matrix"])
    assert all(0.0 <= a <= 1.0 for row in record["accuracy_matrix"] for a in row)
    assert not record["hook_errors"]
    return record


def learner(name: str, *sets: str, benchmark: str = "shifting-linear"):
    """The learner a run would build, with its context (as the harness composes them)."""
    import torch

    rc = resolve(config(name, *sets, benchmark=benchmark), HOST.registry)
    ctx = RunContext(config=rc, run_id="test", host=HOST)
    ctx.generator = torch.Generator().manual_seed(rc.seed)
    ctx.stream = rc.components["benchmark"].factory(rc.options["benchmark"], ctx.build_context())
    torch.manual_seed(rc.seed)
    return rc.components["strategy"].factory(rc.options["strategy"], ctx.build_context()), ctx


def test_registers_the_required_strategies_lazily():
    required = {"naive", "cumulative", "joint", "ewc", "si", "lwf", "mas", "gem", "agem", "replay", "gdumb", "mer"}
    assert {f"avalanche.{r}" for r in required} <= set(NAMES)
    assert len(NAMES) == len(SPECS) >= 20
    for name in NAMES:
        comp = HOST.registry.get("strategies", name)
        assert comp.requires == ("avalanche",) and comp.install_hint == "pip install 'clbench[avalanche]'"
        assert "crosscheck" in comp.options.model_fields


@pytest.mark.parametrize("name", NAMES)
def test_runs_on_shifting_linear(name):
    record = run(config(name, *TINY))
    assert len(record["accuracy_matrix"]) == 2
    losses = [x for stats in record["train_stats"] for x in stats.get("loss", [])]
    if name == "avalanche.bic":  # recurring classes: BiC's distillation set is empty, Avalanche adds 0 * NaN
        losses = losses[:1]
    assert losses and all(math.isfinite(x) for x in losses)


@pytest.mark.parametrize("name", NAMES)
def test_runs_on_split_digits(name):
    record = run(config(name, *DIGITS, benchmark="split-digits"))
    R, init = record["accuracy_matrix"], record["init_accuracy"]
    assert R[0] != init or R[1] != R[0]  # training changed the predictions
    losses = [x for stats in record["train_stats"] for x in stats.get("loss", [])]
    assert losses and all(math.isfinite(x) for x in losses)  # class-incremental: BiC's distillation is defined


@pytest.mark.parametrize("name", NAMES)
def test_runs_on_an_image_stream_in_the_task_scenario(name, vision_root):
    # made-up MNIST files read through torchvision; inputs made per sample from uint8 storage
    sets = [f"benchmark.root={vision_root}", "benchmark.download=false", "benchmark.n_tasks=2"]
    sets += ["benchmark.train_size=64", "benchmark.test_size=20", "benchmark.scenario=task", "train.epochs=1"]
    record = run(config(name, *sets, benchmark="split-mnist"))
    assert record["benchmark_info"]["scenario"] == "task"
    losses = [x for stats in record["train_stats"] for x in stats.get("loss", [])]
    assert all(math.isfinite(x) for x in losses)


def test_task_scenario_trains_avalanche_with_the_masked_loss(vision_root):
    from clbench.scenarios import TaskMaskedLoss
    from clbench_avalanche.adapter import MeanLoss

    sets = [f"benchmark.root={vision_root}", "benchmark.download=false", "benchmark.n_tasks=2"]
    built, _ = learner("avalanche.naive", *sets, "benchmark.scenario=task", benchmark="split-mnist")
    criterion = built.strategy._criterion
    assert isinstance(criterion, MeanLoss) and isinstance(criterion.per_sample, TaskMaskedLoss)
    built, _ = learner("avalanche.naive", *sets, "benchmark.scenario=class", benchmark="split-mnist")
    assert not isinstance(built.strategy._criterion, MeanLoss)


@pytest.mark.parametrize(
    "name", ["avalanche.ewc", "avalanche.si", "avalanche.mas", "avalanche.lwf", "avalanche.rwalk", "avalanche.lfl"]
)
def test_regularisers_change_training(name):
    # on the CPU, Avalanche 0.6.0's SI snapshots aliased the live weights: its penalty was exactly 0
    naive = run(config("avalanche.naive", *TINY))
    regularised = run(config(name, *TINY))
    assert regularised["train_stats"][0] == naive["train_stats"][0]  # same start: no penalty on task 0
    assert regularised["train_stats"][1] != naive["train_stats"][1]


def test_no_state_leaks_from_one_run_to_the_next():
    # FeatureReplay's default criterion is an instance shared by the class that remembers its classes
    run(config("avalanche.feature_replay", *DIGITS, benchmark="split-digits"))  # 10 classes
    run(config("avalanche.feature_replay", *TINY))  # then 5


@pytest.mark.parametrize("name", ["avalanche.naive", "avalanche.der", "avalanche.cope", "avalanche.gdumb"])
def test_same_config_and_seed_give_the_same_matrix(name):
    first = run(config(name, *TINY, "benchmark.n_tasks=3"))
    second = run(config(name, *TINY, "benchmark.n_tasks=3"))
    assert first["accuracy_matrix"] == second["accuracy_matrix"]
    assert first["train_stats"] == second["train_stats"]
    other = run(config(name, *TINY, "benchmark.n_tasks=3", "benchmark.seed=0", seed=1))  # same data, other seed
    assert other["train_stats"] != first["train_stats"]


@pytest.mark.parametrize("name", ["avalanche.naive", "avalanche.ewc", "avalanche.replay"])
def test_crosscheck_matches_avalanches_own_metrics(name):
    plain = run(config(name, *TINY, "benchmark.n_tasks=3"))
    checked = run(config(name, *TINY, "benchmark.n_tasks=3", "strategy.crosscheck=true"))
    assert checked["accuracy_matrix"] == plain["accuracy_matrix"]  # Avalanche's eval does not disturb training
    cc = checked["extras"]["avalanche_crosscheck"]
    json.dumps(cc)
    assert len(cc["accuracy_matrix"]) == 3 and len(cc["stream"]) == 3
    comparison = cc["comparison"]
    assert comparison["status"] == "ok"
    for key, gap in comparison["abs_diff"].items():
        assert gap is not None and gap < 1e-6, key
    assert comparison["avalanche"]["bwt"] == pytest.approx(checked["metrics"]["bwt"], abs=1e-6)
    assert comparison["avalanche"]["forgetting"] == pytest.approx(-checked["metrics"]["bwt"], abs=1e-6)


@pytest.mark.parametrize("name", ["avalanche.cope", "avalanche.joint"])
def test_crosscheck_is_refused_where_experiences_do_not_align(name):
    with pytest.raises(UserError, match="cannot cross-check"):
        execute(resolve(config(name, *TINY, "strategy.crosscheck=true"), HOST.registry), HOST, results=None)


def test_options_are_validated():
    with pytest.raises(UserError, match="decay_factor"):
        resolve(config("avalanche.ewc", "strategy.mode=online"), HOST.registry)
    with pytest.raises(UserError, match="mem_size"):
        resolve(config("avalanche.replay", "strategy.mem_size=0"), HOST.registry)
    with pytest.raises(UserError, match="unknown option"):
        resolve(config("avalanche.naive", "strategy.ewc_lambda=1"), HOST.registry)


def test_train_settings_reach_avalanche():
    learn, ctx = learner(
        "avalanche.naive",
        *TINY,
        "train.optimizer=sgd",
        "train.lr=0.1",
        "train.momentum=0.5",
        "train.clip=0.5",
        "train.lr_decay=0.5",
        "train.lr_decay_every=1",
        "train.batch_size=25",
    )
    s = learn.strategy
    assert s.train_mb_size == 25 and s.train_epochs == 1 and s.eval_mb_size == 1024 and str(s.device) == "cpu"
    assert type(s.optimizer).__name__ == "SGD" and s.optimizer.param_groups[0]["momentum"] == 0.5
    for i in range(2):
        stats = learn.train_task(i, ctx.stream)
        assert len(stats["loss"]) == 1
    assert s.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**2)
    with pytest.raises(UserError, match="train.clip"):
        learner("avalanche.slda", *TINY, "train.clip=1.0")


def test_predict_gives_scores_for_every_class_before_and_after_training():
    import torch

    for name in ("avalanche.scr", "avalanche.cope", "avalanche.bic", "avalanche.slda", "avalanche.naive"):
        learn, ctx = learner(name, *DIGITS, benchmark="split-digits")
        x = ctx.stream.tasks[0].test_x[:7]
        with torch.inference_mode():
            assert learn.predict(x).shape == (7, 10), name
        learn.train_task(0, ctx.stream)
        with torch.inference_mode():
            scores = learn.predict(x)
        assert scores.shape == (7, 10), name
        if name == "avalanche.scr":  # a nearest-mean classifier knows only the classes seen so far
            assert set(scores.argmax(1).tolist()) <= {0, 1, 2, 3, 4}, name


def test_model_split_is_checked():
    import torch
    from torch import nn

    from clbench_avalanche.adapter import split_last_linear

    mlp = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(5, 6)
    expected = mlp(x)
    split = split_last_linear(mlp, (6,), 3, "avalanche.lfl")
    assert torch.allclose(split(x), expected) and split.get_features(x).shape == (5, 8)

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.out = nn.Linear(6, 3)

        def forward(self, x):
            return 2 * self.out(x)

    with pytest.raises(UserError, match="last nn.Linear"):
        split_last_linear(Scaled(), (6,), 3, "avalanche.lfl")
    with pytest.raises(UserError, match="last nn.Linear"):
        split_last_linear(nn.Sequential(nn.Linear(6, 4), nn.Linear(4, 5)), (6,), 3, "avalanche.lfl")


def test_cli_end_to_end_is_quiet(tmp_path):
    proc = run_cli(
        "run",
        "--strategy",
        "avalanche.replay",
        "-q",
        "--json",
        "--results",
        str(tmp_path),
        "--set",
        "strategy.crosscheck=true",
        *[a for s in TINY for a in ("--set", s)],
    )
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr and "Traceback" not in proc.stderr
    record = json.loads(proc.stdout)  # nothing but the record on stdout: no Avalanche logging
    assert record["status"] == "ok" and record["config"]["strategy"]["name"] == "avalanche.replay"
    assert record["extras"]["avalanche_crosscheck"]["comparison"]["abs_diff"]["bwt_vs_StreamBWT"] < 1e-6
    assert len(list(tmp_path.glob("runs/*.json"))) == 1
