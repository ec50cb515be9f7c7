"""The harness: record schema, atomic writes, failures, hooks, reproducibility."""

import json

import pytest

from clbench import hookimpl
from clbench.config import RunConfig, resolve
from clbench.harness import execute
from clbench.plugins import make_plugin_host
from clbench.records import read_record, record_path, write_atomic
from tests.helpers import complete_record, tiny_assignments

SMALL = tiny_assignments()


def small_config(seed=0, *extra):
    cfg = RunConfig(seed=seed)
    for s in SMALL + list(extra):
        cfg.apply_set(s)
    return cfg


def test_record_has_the_schema(tmp_path, host):
    result = execute(resolve(small_config(), host.registry), host, results=tmp_path)
    rec = result.record
    assert result.path == record_path(tmp_path, rec["run_id"]) and result.path.exists()
    on_disk = json.loads(result.path.read_text())
    for key in (
        "schema_version",
        "run_id",
        "status",
        "error",
        "config",
        "seed",
        "versions",
        "accuracy_matrix",
        "init_accuracy",
        "metrics",
        "timings",
        "started_at",
        "duration_s",
        "metric_conventions",
    ):
        assert key in on_disk, key
    assert on_disk["status"] == "ok" and on_disk["error"] is None
    assert len(on_disk["accuracy_matrix"]) == 3 and all(len(r) == 3 for r in on_disk["accuracy_matrix"])
    assert len(on_disk["init_accuracy"]) == 3
    assert set(on_disk["versions"]) >= {"clbench", "torch", "python", "plugins"}
    assert len(on_disk["timings"]["train_s"]) == 3 and on_disk["timings"]["total_s"] > 0
    assert on_disk["config"]["train"]["epochs"] == 1
    assert not list(tmp_path.glob("runs/.*.tmp"))  # no temp files left behind


def test_same_seed_same_matrix_other_seed_differs(host):
    a = execute(resolve(small_config(3), host.registry), host, results=None).record
    b = execute(resolve(small_config(3), host.registry), host, results=None).record
    c = execute(resolve(small_config(4), host.registry), host, results=None).record
    assert a["accuracy_matrix"] == b["accuracy_matrix"] and a["init_accuracy"] == b["init_accuracy"]
    assert a["train_stats"] == b["train_stats"]
    assert a["accuracy_matrix"] != c["accuracy_matrix"]


class GlobalDrawsPlugin:
    """A third-party benchmark that draws its stream from torch's, numpy's and Python's global
    generators (what the guide advises against, and what plugins do anyway)."""

    @hookimpl
    def clbench_register_benchmarks(self, register):
        def build(options, ctx):
            import random

            import numpy as np
            import torch

            from clbench.components import Task, TaskStream

            tasks = []
            for t in range(2):
                w = torch.randn(8, 3)  # [8, 3]: the task's labelling, from torch's global generator
                shift = float(np.random.standard_normal()) + random.random()

                def draw(n, w=w, shift=shift):
                    x = torch.randn(n, 8) + shift  # [n, 8]
                    return x, (x @ w).argmax(1)  # [n] in 0..2

                (train_x, train_y), (test_x, test_y) = draw(60), draw(30)
                tasks.append(Task(t, train_x, train_y, test_x, test_y))
            return TaskStream(name="global-draws", tasks=tasks, n_classes=3, input_shape=(8,))

        register("global-draws", build, description="drawn from the global generators")


def test_a_stream_drawn_from_global_generators_does_not_depend_on_what_ran_before():
    """The global generators are seeded from the run seed before the benchmark builds its stream,
    so the same run gives the same record whatever the process drew before (a sweep worker)."""
    import random

    import numpy as np
    import torch

    host = make_plugin_host(objects=[("global-draws", GlobalDrawsPlugin())])
    cfg = RunConfig(seed=5)
    cfg.set_name("benchmark", "global-draws")
    cfg.apply_set("train.epochs=1")
    resolved = resolve(cfg, host.registry)
    records = []
    for disturb in (0, 1):
        torch.rand(disturb * 97 + 1), np.random.rand(disturb * 13 + 1), random.random()  # what ran before
        records.append(execute(resolved, host, results=None).record)
    assert records[0]["status"] == "ok", records[0]["error"]
    assert records[0]["accuracy_matrix"] == records[1]["accuracy_matrix"]
    assert records[0]["init_accuracy"] == records[1]["init_accuracy"]
    other = RunConfig(seed=6)
    other.set_name("benchmark", "global-draws")
    other.apply_set("train.epochs=1")
    assert (
        execute(resolve(other, host.registry), host, results=None).record["init_accuracy"]
        != records[0]["init_accuracy"]
    )


class Recorder:
    """Records lifecycle calls; optionally breaks in one hook."""

    def __init__(self, fail_in=None):
        self.calls, self.fail_in, self.losses = [], fail_in, []

    def _log(self, name, *args):
        self.calls.append((name, *args))
        if name == self.fail_in:
            raise RuntimeError(f"broken {name}")

    @hookimpl
    def clbench_run_start(self, context):
        self._log("run_start")

    @hookimpl
    def clbench_task_start(self, context, task_index):
        self._log("task_start", task_index)

    @hookimpl
    def clbench_epoch_end(self, context, task_index, epoch, loss):
        self.losses.append(loss)
        self._log("epoch_end", task_index, epoch)

    @hookimpl
    def clbench_task_end(self, context, task_index, train_seconds):
        self._log("task_end", task_index)

    @hookimpl
    def clbench_evaluation_done(self, context, after_task, accuracies):
        self._log("evaluation_done", after_task)
        context.extras.setdefault("recorder", []).append(len(accuracies))

    @hookimpl
    def clbench_run_end(self, context, record):
        self._log("run_end", record["status"])


def test_lifecycle_hooks_in_order():
    rec = Recorder()
    host = make_plugin_host(objects=[("recorder", rec)])
    record = execute(resolve(small_config(0, "benchmark.n_tasks=2"), host.registry), host, results=None).record
    assert rec.calls == [
        ("run_start",),
        ("evaluation_done", -1),
        ("task_start", 0),
        ("epoch_end", 0, 0),
        ("task_end", 0),
        ("evaluation_done", 0),
        ("task_start", 1),
        ("epoch_end", 1, 0),
        ("task_end", 1),
        ("evaluation_done", 1),
        ("run_end", "ok"),
    ]
    assert record["extras"]["recorder"] == [2, 2, 2]


@pytest.mark.parametrize("mode", ["retrain", "final"])
def test_a_strategy_s_epochs_reach_the_hooks_after_each_task(mode):
    """A strategy does not report epochs as it trains: the harness calls clbench_epoch_end after
    the task's training, once per loss it returned, before clbench_task_end."""
    rec = Recorder()
    host = make_plugin_host(objects=[("recorder", rec)])
    cfg = small_config(0, "benchmark.n_tasks=2", "train.epochs=2")
    cfg.set_name("strategy", "joint")
    cfg.apply_set(f"strategy.mode={mode}")
    record = execute(resolve(cfg, host.registry), host, results=None).record
    assert record["status"] == "ok", record["error"]
    trained = [i for i, stats in enumerate(record["train_stats"]) if "loss" in stats]
    assert trained == ([0, 1] if mode == "retrain" else [1])
    for i in range(2):
        epochs = [("epoch_end", i, 0), ("epoch_end", i, 1)] if i in trained else []
        start = rec.calls.index(("task_start", i))
        assert rec.calls[start : start + len(epochs) + 2] == [("task_start", i), *epochs, ("task_end", i)]
    assert rec.losses == [loss for i in trained for loss in record["train_stats"][i]["loss"]]


def test_a_raising_hook_is_reported_and_the_record_survives(tmp_path, capsys):
    host = make_plugin_host(objects=[("flaky", Recorder(fail_in="task_end"))])
    result = execute(resolve(small_config(), host.registry), host, results=tmp_path)
    assert result.record["status"] == "ok"
    errors = result.record["hook_errors"]
    assert len(errors) == 3 and errors[0]["plugin"] == "flaky" and errors[0]["hook"] == "clbench_task_end"
    assert "broken task_end" in errors[0]["error"]
    assert read_record(result.path)["status"] == "ok"
    assert "plugin 'flaky' failed in clbench_task_end" in capsys.readouterr().err


def test_unserialisable_extras_are_dropped_not_fatal(tmp_path):
    class Bad:
        @hookimpl
        def clbench_run_end(self, context, record):
            context.extras["bad"] = object()
            context.extras["good"] = [1, 2]

    host = make_plugin_host(objects=[("bad", Bad())])
    result = execute(resolve(small_config(), host.registry), host, results=tmp_path)
    on_disk = read_record(result.path)
    assert on_disk["extras"] == {"good": [1, 2]}
    assert any(e["plugin"] == "bad" for e in on_disk["hook_errors"])


class ExplodingModelPlugin:
    @hookimpl
    def clbench_register_models(self, register):
        def build(options, ctx):
            input_shape, n_classes = ctx.input_shape, ctx.n_classes
            import torch

            class Exploding(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.lin = torch.nn.Linear(input_shape[0], n_classes)
                    self.calls = 0

                def forward(self, x):
                    self.calls += 1
                    if self.training and self.calls > 5:
                        raise FloatingPointError("loss went to nan")
                    return self.lin(x)

            return Exploding()

        register("exploding", build, description="fails during training")


def test_failed_run_is_recorded_with_reason(tmp_path):
    host = make_plugin_host(objects=[("exploding", ExplodingModelPlugin())])
    cfg = small_config()
    cfg.set_name("model", "exploding")
    result = execute(resolve(cfg, host.registry), host, results=tmp_path)
    rec = read_record(result.path)
    assert rec["status"] == "failed"
    assert rec["error"] == "FloatingPointError: loss went to nan"
    assert "Traceback" in rec["traceback"]
    assert rec["metrics"] == {}


def test_a_failed_run_never_replaces_a_complete_record(tmp_path):
    host = make_plugin_host(objects=[("exploding", ExplodingModelPlugin())])
    cfg = small_config()
    cfg.set_name("model", "exploding")
    resolved = resolve(cfg, host.registry)
    complete = complete_record(resolved.run_id, marker=1)
    write_atomic(record_path(tmp_path, resolved.run_id), complete)
    result = execute(resolved, host, results=tmp_path)
    assert result.record["status"] == "failed" and result.path is None and "already exists" in result.note
    assert read_record(record_path(tmp_path, resolved.run_id)) == complete


def test_write_atomic_keeps_the_old_file_when_serialisation_fails(tmp_path):
    path = tmp_path / "r.json"
    write_atomic(path, complete_record())
    with pytest.raises(TypeError):
        write_atomic(path, complete_record(bad=object()))
    assert read_record(path) == complete_record()
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_joint_strategy_retrains_on_all_seen_tasks(host):
    cfg = small_config(0)
    cfg.set_name("strategy", "joint")
    cfg.apply_set("strategy.mode=retrain")
    record = execute(resolve(cfg, host.registry), host, results=None).record
    assert [s["samples"] for s in record["train_stats"]] == [96, 192, 288]
