"""The example plugin packages under ``examples/`` (one per kind; the guide is ``docs/plugins.md``).

Each is really installed: ``pip install --no-deps --no-build-isolation`` of a copy of every package
into one temporary target folder, which the command line then gets on ``PYTHONPATH``, so that
clbench finds the plugins through their entry points as it finds any installed plugin. Then:
``clbench plugins`` shows them loaded, ``clbench list`` shows their components, and tiny runs use
every one of them, and resume from a checkpoint to the record of an uninterrupted run. The
in-process tests import the installed packages to check the contracts more closely.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, run_cli

EXAMPLES_DIR = ROOT / "examples"
LIFECYCLE_HOOKS = {
    "clbench_run_start",
    "clbench_task_start",
    "clbench_epoch_end",
    "clbench_task_end",
    "clbench_evaluation_done",
    "clbench_run_end",
}
#: Folder under examples/ -> (distribution, entry-point name = plugin name, the hooks it implements).
EXAMPLES = {
    "clbench-example-plugin": ("clbench-example-plugin", "example", {"clbench_register_models"}),
    "clbench-example-benchmark": ("clbench-example-benchmark", "example-benchmark", {"clbench_register_benchmarks"}),
    "clbench-example-meta": ("clbench-example-meta", "example-meta", {"clbench_register_meta_learners"}),
    "clbench-example-replay": ("clbench-example-replay", "example-replay", {"clbench_register_replay"}),
    "clbench-example-strategy": ("clbench-example-strategy", "example-strategy", {"clbench_register_strategies"}),
    "clbench-example-hooks": (
        "clbench-example-hooks",
        "example-hooks",
        LIFECYCLE_HOOKS | {"clbench_register_commands", "clbench_report_tables"},
    ),
}
#: Kind (as ``clbench list`` names it) -> (component, plugin, option names).
COMPONENTS = {
    "models": ("example.linear", "example", ["bias"]),
    "benchmarks": (
        "example.blobs",
        "example-benchmark",
        [
            "n_tasks",
            "classes_per_task",
            "train_size",
            "test_size",
            "input_dim",
            "separation",
            "spread",
            "label_noise",
            "scenario",
            "seed",
        ],
    ),  # fmt: skip
    "meta": ("example.lookahead", "example-meta", ["sync_every", "alpha"]),
    "replay": ("example.loss-aware", "example-replay", ["capacity", "batch_size", "candidates"]),
    "strategies": ("example.lwf", "example-strategy", ["alpha", "temperature"]),
}
#: The plugin modules, which must import without torch (``clbench list`` stays light).
PLUGIN_MODULES = [
    "clbench_example",
    "clbench_example_benchmark.plugin",
    "clbench_example_meta.plugin",
    "clbench_example_replay.plugin",
    "clbench_example_strategy.plugin",
    "clbench_example_hooks.plugin",
]

#: The tiny stream of the example benchmark: 3 tasks of 96 training samples (3 batches of 32).
BLOBS = ["--benchmark", "example.blobs", "--set", "benchmark.n_tasks=3", "--set", "benchmark.train_size=96",
         "--set", "benchmark.test_size=64"]  # fmt: skip
#: Model x meta-learner x replay on it, in the task scenario with noisy labels, 2 epochs per task.
COMPOSED = [*BLOBS, "--meta", "example.lookahead", "--replay", "example.loss-aware",
            "--set", "benchmark.scenario=task", "--set", "benchmark.label_noise=0.2", "--set", "replay.capacity=64",
            "--set", "meta.sync_every=4", "--set", "train.epochs=2"]  # fmt: skip
#: The example strategy with the example model (3 epochs, a learning rate a linear model learns with).
STRATEGY = [*BLOBS, "--strategy", "example.lwf", "--model", "example.linear", "--set", "strategy.alpha=2",
            "--set", "train.epochs=3", "--set", "train.lr=0.05"]  # fmt: skip
COMPARED = ("run_id", "accuracy_matrix", "init_accuracy", "metrics", "train_stats")


# --- installing the packages -------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Every example package pip-installed into one target folder, from copies (an in-tree build
    would leave build/ and *.egg-info/ in examples/). Offline: the venv's setuptools builds them."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed here: the example packages cannot be built offline")
    root = tmp_path_factory.mktemp("examples")
    copies = []
    for name in EXAMPLES:
        copies.append(root / "src" / name)
        shutil.copytree(
            EXAMPLES_DIR / name, copies[-1], ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
        )
    target = root / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--no-cache-dir",
         "--disable-pip-version-check", "--quiet", "--target", str(target), *map(str, copies)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return target


def env_for(site: Path) -> dict[str, str]:
    """The environment of a command that sees the installed examples."""
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)}


def cli_in(site: Path, folder: Path, *args: str) -> subprocess.CompletedProcess:
    """``clbench ARGS`` run in ``folder`` with the examples installed."""
    return run_cli(*args, env=env_for(site), cwd=folder)


def run_twice(site: Path, folder: Path, args: list[str]) -> tuple[dict, dict, str]:
    """Run ``args`` keeping the last checkpoint (after task 2 of 3), then the same command again,
    which resumes from it: both records, and the second run's stderr."""
    first = cli_in(site, folder, "run", *args, "--results", "r", "--json", "--keep-checkpoints")
    assert first.returncode == 0, first.stderr
    second = cli_in(site, folder, "run", *args, "--results", "r", "--json")
    assert second.returncode == 0, second.stderr
    return json.loads(first.stdout), json.loads(second.stdout), second.stderr


@pytest.fixture(scope="module")
def composed(site, tmp_path_factory) -> dict:
    """The example benchmark, meta-learner and replay buffer in one run (the hooks observe it),
    and the same run resumed from its last checkpoint."""
    folder = tmp_path_factory.mktemp("composed")
    first, resumed, stderr = run_twice(site, folder, COMPOSED)
    return {"record": first, "resumed": resumed, "stderr": stderr, "folder": folder}


@pytest.fixture(scope="module")
def strategy(site, tmp_path_factory) -> dict:
    """The example strategy with the example model on the example benchmark, and resumed."""
    folder = tmp_path_factory.mktemp("strategy")
    first, resumed, stderr = run_twice(site, folder, STRATEGY)
    return {"record": first, "resumed": resumed, "stderr": stderr, "folder": folder}


@pytest.fixture(scope="module")
def installed(site):
    """The installed packages importable in this process (for the in-process tests), and not after."""
    sys.path.insert(0, str(site))
    yield site
    sys.path.remove(str(site))


# --- every example: installed, found, listed, light --------------------------------------------


def test_every_folder_under_examples_is_tested():
    folders = {p.name for p in EXAMPLES_DIR.iterdir() if (p / "pyproject.toml").exists()}
    assert folders == set(EXAMPLES)


def test_every_example_loads_through_its_entry_point(site, tmp_path):
    proc = cli_in(site, tmp_path, "plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    plugins = {p["name"]: p for p in json.loads(proc.stdout)}
    for distribution, name, hooks in EXAMPLES.values():
        info = plugins[name]
        assert info["status"] == "ok" and info["error"] is None, info
        assert info["source"] == "entry point" and info["distribution"] == distribution and info["version"] == "0.1.0"
        assert set(info["hooks"]) == hooks, name


def test_every_example_component_is_listed_with_its_options(site, tmp_path):
    proc = cli_in(site, tmp_path, "list", "--json")
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout)
    for kind, (name, plugin, options) in COMPONENTS.items():
        (entry,) = [c for c in listed[kind] if c["name"] == name]
        assert entry["plugin"] == plugin and entry["available"], entry
        assert [o["name"] for o in entry["options"]] == options
        assert all(o["description"] for o in entry["options"])
    text = cli_in(site, tmp_path, "list", "replay").stdout
    assert "example.loss-aware" in text and "replay.candidates=8" in text and "[example-replay]" in text


def test_the_examples_keep_clbench_light(site, tmp_path):
    code = (
        "import sys\n"
        f"for name in {PLUGIN_MODULES!r}:\n"
        "    __import__(name)\n"
        "from clbench.cli import main\n"
        "assert main(['list']) == 0 and main(['timeline', '--help']) == 0\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy'))\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env={**os.environ, **env_for(site)}
    )
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stderr


# --- the runs -------------------------------------------------------------------------------------


def test_benchmark_example_builds_the_stream_the_run_trains_on(composed):
    record = composed["record"]
    assert record["status"] == "ok" and record["config"]["benchmark"]["name"] == "example.blobs"
    assert len(record["accuracy_matrix"]) == 3 and all(len(row) == 3 for row in record["accuracy_matrix"])
    info = record["benchmark_info"]
    assert info["scenario"] == "task" and info["classes"] == [[0, 1], [2, 3], [4, 5]]
    assert info["stream_seed"] == 0 and info["label_noise"] == 0.2
    assert len(info["noisy_labels"]) == 3 and all(5 <= n <= 40 for n in info["noisy_labels"])  # ~20% of 96
    init = sum(record["init_accuracy"]) / 3
    assert record["metrics"]["learning_accuracy"] > init + 0.15  # it learns despite the noise


def test_replay_example_holds_each_sample_once_balanced_over_tasks(composed):
    record = composed["record"]
    assert record["config"]["replay"] == {
        "name": "example.loss-aware",
        "options": {"capacity": 64, "batch_size": None, "candidates": 8},
    }
    stats = record["extras"]["example.loss-aware"]
    assert stats["seen"] == 3 * 96  # offered once per sample, in the first of the 2 epochs
    assert stats["held"] == 64 and stats["evicted"] + stats["dropped"] == 3 * 96 - 64
    per_task = stats["held_per_task"]
    assert set(per_task) == {"0", "1", "2"} and sum(per_task.values()) == 64
    assert max(per_task.values()) - min(per_task.values()) <= 1  # equal room per task
    assert isinstance(stats["mean_held_loss"], float) and stats["mean_held_loss"] > 0


def test_meta_example_takes_one_step_per_batch(composed):
    record = composed["record"]
    assert record["config"]["meta"] == {"name": "example.lookahead", "options": {"sync_every": 4, "alpha": 0.5}}
    assert record["extras"]["example.lookahead"] == {"steps": 3 * 2 * 3, "syncs": 18 // 4}  # tasks x epochs x batches


def test_hooks_example_records_a_timeline(composed):
    record = composed["record"]
    assert record["hook_errors"] == []
    timeline = record["extras"]["timeline"]
    assert timeline["status"] == "ok" and timeline["resumed_at"] == []
    assert timeline["init_mean_accuracy"] == pytest.approx(sum(record["init_accuracy"]) / 3, abs=1e-6)
    assert [t["task"] for t in timeline["tasks"]] == [0, 1, 2]
    assert [t["name"] for t in timeline["tasks"]] == ["classes-0-1", "classes-2-3", "classes-4-5"]
    for i, entry in enumerate(timeline["tasks"]):
        assert entry["epoch_loss"] == pytest.approx(record["train_stats"][i]["loss"], abs=1e-6)
        assert entry["train_s"] == pytest.approx(record["timings"]["train_s"][i], abs=1e-3)
        assert entry["wall_s"] >= entry["train_s"] > 0
        assert entry["accuracy"] == pytest.approx(record["accuracy_matrix"][i][i], abs=1e-6)


def test_the_composed_run_resumes_to_the_uninterrupted_record(composed):
    record, resumed = composed["record"], composed["resumed"]
    assert "resumed from the checkpoint after task 2 of 3" in composed["stderr"]
    assert resumed["timings"]["resumed_after_task"] == [1]
    assert {k: resumed[k] for k in COMPARED} == {k: record[k] for k in COMPARED}
    for key in ("example.loss-aware", "example.lookahead"):  # the buffer's and the meta-learner's state
        assert resumed["extras"][key] == record["extras"][key]
    before, after = record["extras"]["timeline"], resumed["extras"]["timeline"]
    assert after["resumed_at"] == [2]
    assert [(t["epoch_loss"], t["accuracy"]) for t in after["tasks"]] == [
        (t["epoch_loss"], t["accuracy"]) for t in before["tasks"]
    ]


def test_strategy_example_brings_its_own_loop(strategy):
    record = strategy["record"]
    assert record["status"] == "ok"
    assert record["config"]["strategy"] == {"name": "example.lwf", "options": {"alpha": 2.0, "temperature": 2.0}}
    assert record["config"]["model"] == {"name": "example.linear", "options": {"bias": True}}  # build.build_model()
    assert record["accuracy_matrix"][0][0] > record["init_accuracy"][0] + 0.3  # it trains
    stats = record["train_stats"]
    assert stats[0]["distillation"] == [0.0, 0.0, 0.0]  # no teacher before the first task ends
    assert all(d > 0 for s in stats[1:] for d in s["distillation"]) and all(len(s["loss"]) == 3 for s in stats)
    tasks = record["extras"]["timeline"]["tasks"]
    # a strategy's epochs reach clbench_epoch_end after each task, from the losses it returned
    assert [t["epoch_loss"] for t in tasks] == [[pytest.approx(x, abs=1e-6) for x in s["loss"]] for s in stats]
    assert all(t["train_s"] > 0 for t in tasks)


def test_the_strategy_resumes_to_the_uninterrupted_record(strategy):
    record, resumed = strategy["record"], strategy["resumed"]
    assert "resumed from the checkpoint after task 2 of 3" in strategy["stderr"]
    assert {k: resumed[k] for k in COMPARED} == {k: record[k] for k in COMPARED}


def test_hooks_example_command_prints_the_timeline(site, composed):
    record, folder = composed["record"], composed["folder"]
    proc = cli_in(site, folder, "timeline", record["run_id"][:8], "--results", "r")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"run {record['run_id']} (ok)" and lines[1].split()[:2] == ["task", "name"]
    assert [line.split()[:2] for line in lines[2:]] == [
        ["0", "classes-0-1"],
        ["1", "classes-2-3"],
        ["2", "classes-4-5"],
    ]
    as_json = cli_in(site, folder, "timeline", record["run_id"], "--results", "r", "--json")
    assert json.loads(as_json.stdout) == composed["resumed"]["extras"]["timeline"]  # the record on disk
    missing = cli_in(site, folder, "timeline", "0123456789abcdef", "--results", "r")
    assert missing.returncode == 2 and missing.stderr.startswith("clbench: error: no record for run id")


def test_hooks_example_adds_a_report_section(site, composed):
    proc = cli_in(site, composed["folder"], "report", "r", "--no-figures", "--out", "report.md")
    assert proc.returncode == 0, proc.stderr
    text = (composed["folder"] / "report.md").read_text()
    assert "Time per task (example-hooks plugin)" in text and "last-epoch loss" in text


# --- in process: the contracts, closer ----------------------------------------------------------


def test_replay_example_keeps_the_hardest_samples_of_each_task(installed):
    import torch
    from clbench_example_replay.buffer import LossAwareBuffer

    buf = LossAwareBuffer(capacity=4, batch_size=2, input_shape=(1,), seed=0, candidates=64)
    x = torch.arange(6, dtype=torch.float32)[:, None]  # [6, 1]: sample i holds i
    buf.add(x, torch.zeros(6, dtype=torch.long), 0, torch.tensor([1.0, 5, 2, 6, 3, 4]))
    assert sorted(buf.loss[:4].tolist()) == [3, 4, 5, 6] and (buf.evicted, buf.dropped) == (2, 0)
    buf.add(x[:2] + 10, torch.ones(2, dtype=torch.long), 1, torch.tensor([0.1, 0.1]))  # easy, but a new task
    assert buf.summary()["held_per_task"] == {"0": 2, "1": 2}
    assert sorted(buf.x[buf.task == 0].flatten().tolist()) == [1, 3]  # losses 5 and 6
    buf.add(x[:1] + 20, torch.ones(1, dtype=torch.long), 1, torch.tensor([0.05]))  # easier than both: dropped
    assert buf.dropped == 1

    g = torch.Generator().manual_seed(0)
    batch = buf.sample(8, g, task=1)
    assert len(batch) == 2 and batch.task.tolist() == [1, 1] and batch.weight is None
    assert torch.equal(buf.x[batch.index], batch.x) and sorted(batch.x.flatten().tolist()) == [10, 11]
    assert buf.sample(8, g, task=7) is None and buf.tasks() == [0, 1]
    buf.update_priorities(batch.index, torch.zeros(2))  # learnt: the first to go within task 1
    buf.add(x[:1] + 30, torch.ones(1, dtype=torch.long), 1, torch.tensor([0.05]))
    assert 30 in buf.x.flatten().tolist()


def test_replay_example_state_survives_a_checkpoint(installed):
    import torch
    from clbench_example_replay.plugin import EXTRAS_KEY, LossAwareOptions, build_loss_aware

    from clbench.components import BuildContext, ReplayBuffer

    def feed(buf, start):
        gen = torch.Generator().manual_seed(start)
        for task in range(3):
            buf.add(
                torch.randn(20, 3, generator=gen),
                torch.randint(4, (20,), generator=gen),
                task,
                torch.rand(20, generator=gen),
            )

    build = BuildContext.for_shapes((3,), 4, seed=5)
    a = build_loss_aware(LossAwareOptions(capacity=16, candidates=3), build)
    assert isinstance(a, ReplayBuffer) and a.batch_size == build.train.batch_size == 32
    feed(a, 0)
    assert build.extras[EXTRAS_KEY] == a.summary() and a.summary()["held"] == 16
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)  # what a checkpoint does, then loads with weights_only=True
    b = build_loss_aware(LossAwareOptions(capacity=16, candidates=3), BuildContext.for_shapes((3,), 4, seed=6))
    b.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    feed(a, 1)
    feed(b, 1)  # the same eviction draws: the generator's state came with the state dict
    assert torch.equal(a.x, b.x) and torch.equal(a.loss, b.loss) and a.summary() == b.summary()


def test_meta_example_with_alpha_one_is_the_plain_step(installed):
    import torch
    from clbench_example_benchmark.plugin import BlobsOptions
    from clbench_example_benchmark.stream import generate
    from clbench_example_meta.lookahead import Lookahead
    from clbench_example_replay.buffer import LossAwareBuffer

    from clbench.components import TaskStream
    from clbench.config import TrainConfig
    from clbench.scenarios import criterion_for
    from clbench.training import ComposedLearner
    from clbench_basic.learners import PlainStep

    stream: TaskStream = generate(BlobsOptions(n_tasks=2, train_size=64, test_size=8, scenario="task"), seed=0)
    train = TrainConfig(epochs=2, batch_size=16, lr=0.01)

    def trained(meta):
        torch.manual_seed(0)
        model = torch.nn.Linear(16, stream.n_classes)
        replay = LossAwareBuffer(capacity=32, batch_size=8, input_shape=(16,), seed=1)
        learner = ComposedLearner(
            model, meta, replay, train, torch.Generator().manual_seed(0), criterion=criterion_for(stream)
        )
        for i in range(len(stream)):
            learner.train_task(i, stream)
        return learner

    plain = trained(PlainStep())
    same = trained(Lookahead(sync_every=3, alpha=1.0))
    other = trained(Lookahead(sync_every=3, alpha=0.5))
    assert same.meta.steps == 2 * 2 * 4  # tasks x epochs x batches
    for p, q, r in zip(plain.model.parameters(), same.model.parameters(), other.model.parameters()):
        assert torch.equal(p, q) and not torch.equal(p, r)

    buffer = io.BytesIO()
    torch.save(other.meta.state_dict(), buffer)
    restored = Lookahead(sync_every=3, alpha=0.5)
    restored.bind(torch.nn.Linear(16, stream.n_classes), other.optimizer, train)
    restored.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    assert restored.steps == other.meta.steps and all(torch.equal(a, b) for a, b in zip(restored.slow, other.meta.slow))


def test_benchmark_example_streams_are_reproducible_and_noise_touches_labels_only(installed):
    import torch
    from clbench_example_benchmark.plugin import BlobsOptions, build_blobs
    from clbench_example_benchmark.stream import generate

    from clbench.components import BuildContext
    from clbench.config import TrainConfig
    from clbench.scenarios import check_stream

    clean = generate(BlobsOptions(n_tasks=2), seed=3)
    noisy = generate(BlobsOptions(n_tasks=2, label_noise=0.3), seed=3)
    longer = generate(BlobsOptions(n_tasks=4), seed=3)
    assert (clean.n_classes, clean.input_shape, len(longer)) == (4, (16,), 4)
    for t, (a, b, c) in enumerate(zip(clean.tasks, noisy.tasks, longer.tasks)):
        assert a.id == t and a.classes == (2 * t, 2 * t + 1) and a.train_x.dtype == torch.float32
        assert a.train_x.shape == (200, 16) and a.train_y.dtype == torch.int64
        assert torch.bincount(a.train_y - 2 * t).tolist() == [100, 100]  # balanced
        assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)  # noise: train labels only
        changed = (a.train_y != b.train_y).float().mean()
        assert 0.15 < changed < 0.45 and set(b.train_y.tolist()) <= set(a.classes)
        assert torch.equal(a.train_x, c.train_x) and torch.equal(a.test_x, c.test_x)  # task t whatever n_tasks
    assert noisy.info["noisy_labels"] == [int((a.train_y != b.train_y).sum()) for a, b in zip(clean.tasks, noisy.tasks)]
    check_stream(generate(BlobsOptions(n_tasks=3, scenario="task"), seed=0))  # disjoint classes for the masking
    built = build_blobs(BlobsOptions(n_tasks=2), BuildContext(seed=3, train=TrainConfig()))
    assert torch.equal(built.tasks[1].test_x, clean.tasks[1].test_x)  # the run seed, when the option is null
    other = build_blobs(BlobsOptions(n_tasks=2, seed=4), BuildContext(seed=3, train=TrainConfig()))
    assert not torch.equal(other.tasks[1].test_x, clean.tasks[1].test_x)


def test_strategy_example_distillation_vanishes_only_when_outputs_agree(installed):
    import torch
    from clbench_example_strategy.learner import distillation

    logits = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    assert float(distillation(logits, logits.clone(), 2.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(distillation(logits, logits.flip(1), 2.0)) > 0.01
