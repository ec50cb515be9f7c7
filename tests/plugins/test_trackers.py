"""The trackers plugin (``--log``): what each tracker received is read back with that tracker's own
reader: TensorBoard's event accumulator, MLflow's client (against a real ``mlflow server`` on
localhost, against the default local store and against the file store), and W&B's offline run
files (the run's ``.wandb`` log, parsed with W&B's own protobuf messages, and its media files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import run_cli, tiny_flags
from tests.plugins.tracker_readers import free_port, mlflow_runs, running_mlflow_server, tensorboard_events, wandb_run

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")
pytest.importorskip("wandb")

FLAGS = (*tiny_flags(3), "--set", "train.epochs=2")
#: Offline W&B, no telemetry; MLflow's HTTP client gives up at once on a dead server.
ENV = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}

BLOCKER = """
import sys


class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {NAMES}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _Hide())
"""


def hidden(tmp_path: Path, *names: str) -> dict[str, str]:
    """Environment variables under which a subprocess cannot find or import ``names``."""
    site = tmp_path / "hide"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER.format(NAMES=set(names)))
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)}


def record_of(results: Path, run_id: str) -> dict:
    """The record ``run_id`` in ``results``."""
    return json.loads((results / "runs" / f"{run_id}.json").read_text())


def column(record: dict, j: int) -> list[float]:
    """Task ``j``'s accuracy at init and after each task."""
    return [record["init_accuracy"][j]] + [row[j] for row in record["accuracy_matrix"]]


# --- availability -----------------------------------------------------------------------------


def test_loggers_unavailable_without_their_extra(tmp_path):
    env = hidden(tmp_path, "tensorboard", "mlflow", "wandb")
    listed = run_cli("list", "loggers", env=env)
    assert listed.returncode == 0, listed.stderr
    for name in ("tensorboard", "mlflow", "wandb"):
        line = next(i for i, text in enumerate(listed.stdout.splitlines()) if text.startswith(f"  {name} "))
        assert f"unavailable: needs {name}" in listed.stdout.splitlines()[line + 1]
        assert f"pip install 'clbench[{name}]'" in listed.stdout.splitlines()[line + 1]
    results = tmp_path / "results"
    proc = run_cli("run", *FLAGS, "--log", "mlflow", "--results", str(results), env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "clbench: error: logger 'mlflow' is unavailable: needs mlflow, which is not installed; "
        "install with: pip install 'clbench[mlflow]'"
    ]
    assert not results.exists()  # nothing written before the error


def test_unknown_or_repeated_logger_is_a_one_line_error(tmp_path):
    proc = run_cli("run", *FLAGS, "--log", "tensorbord", "--results", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert "unknown logger 'tensorbord'; did you mean 'tensorboard'?" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli("sweep", *FLAGS, "--log", "wandb", "--log", "wandb,tensorboard", "--results", str(tmp_path / "r"))
    assert proc.returncode == 2 and "logger 'wandb' named twice" in proc.stderr


# --- one run, every tracker -------------------------------------------------------------------


@pytest.mark.slow
def test_one_run_logged_to_every_tracker_and_read_back(tmp_path):
    results = tmp_path / "results"
    plain = run_cli("run", *FLAGS, "--results", str(tmp_path / "plain"), "--json")
    proc = run_cli(
        "run", *FLAGS, "--log", "tensorboard,mlflow", "--log", "wandb", "--results", str(results), "--json", env=ENV
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    run_id = record["run_id"]
    assert run_id == json.loads(plain.stdout)["run_id"]  # loggers are not part of the run id
    assert record["accuracy_matrix"] == json.loads(plain.stdout)["accuracy_matrix"]
    assert record["hook_errors"] == []
    n_tasks, epochs = 3, 2

    # TensorBoard
    acc = tensorboard_events(results / "tensorboard" / run_id)
    losses = acc.Scalars("train/loss")
    assert [e.step for e in losses] == list(range(1, n_tasks * epochs + 1))
    assert [pytest.approx(e.value) for e in losses] == [l for stats in record["train_stats"] for l in stats["loss"]]
    for j in range(n_tasks):
        assert [e.step for e in acc.Scalars(f"accuracy/task_{j:02d}")] == list(range(n_tasks + 1))
        assert [pytest.approx(e.value) for e in acc.Scalars(f"accuracy/task_{j:02d}")] == column(record, j)
    for name, value in record["metrics"].items():
        assert acc.Scalars(f"metrics/{name}")[0].value == pytest.approx(value)
    images = acc.Tags()["images"]
    assert "figures/accuracy_matrices" in images
    assert acc.Images("figures/accuracy_matrices")[0].encoded_image_string[:4] == b"\x89PNG"
    config_text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| model.name | mlp |" in config_text and f"| run_id | {run_id} |" in config_text

    # MLflow, default local store under RESULTS/mlruns
    client, runs = mlflow_runs(f"sqlite:///{results / 'mlruns' / 'mlflow.db'}", "clbench")
    (run,) = runs
    assert run.info.run_name == f"mlp · none · none {run_id}" and run.info.status == "FINISHED"
    assert run.data.params["model.name"] == "mlp" and run.data.params["benchmark.n_tasks"] == "3"
    assert run.data.tags["clbench.run_id"] == run_id and run.data.tags["clbench.status"] == "ok"
    history = client.get_metric_history(run.info.run_id, "accuracy/task_01")
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(column(record, 1))
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) == n_tasks * epochs
    assert run.data.metrics["metrics/avg_accuracy"] == pytest.approx(record["metrics"]["avg_accuracy"])
    assert "figures/accuracy_matrices.png" in [a.path for a in client.list_artifacts(run.info.run_id, "figures")]

    # W&B, offline
    wb = wandb_run(results / "wandb", run_id)
    assert wb["name"] == f"mlp · none · none {run_id}" and wb["project"] == "clbench" and wb["exit_code"] == 0
    assert wb["config"]["model.name"] == "mlp" and wb["config"]["run_id"] == run_id
    assert [r["train/loss"] for r in wb["history"] if "train/loss" in r] == pytest.approx(
        [l for stats in record["train_stats"] for l in stats["loss"]]
    )
    rows = [r for r in wb["history"] if "accuracy/task_00" in r]
    assert [r["task"] for r in rows] == list(range(n_tasks + 1))
    assert [r["accuracy/task_02"] for r in rows] == pytest.approx(column(record, 2))
    assert wb["summary"]["metrics/latest_task_accuracy"] == pytest.approx(record["metrics"]["latest_task_accuracy"])
    assert any(name.startswith("accuracy_matrices") for name in wb["images"])


# --- a sweep of four runs, every tracker, MLflow through a real server --------------------------


@pytest.fixture
def mlflow_server(tmp_path):
    """A real ``mlflow server`` on localhost (its own SQLite store), stopped afterwards."""
    with running_mlflow_server(tmp_path / "server") as uri:
        yield uri


@pytest.mark.slow
def test_sweep_of_four_runs_logged_to_every_tracker(tmp_path, mlflow_server):
    experiment = tmp_path / "four.toml"  # loggers from the experiment file: [train] log
    experiment.write_text(
        "seeds = [0, 1]\n[benchmark]\nn_tasks = 3\ntrain_size = 96\ntest_size = 64\n"
        '[train]\nepochs = 2\nlog = ["tensorboard", "mlflow", "wandb"]\n'
        '[[variants]]\nlabel = "narrow"\nmodel = { name = "mlp", hidden_sizes = [16] }\n'
        '[[variants]]\nlabel = "wide"\nmodel = { name = "mlp", hidden_sizes = [64] }\n'
    )
    results = tmp_path / "results"
    env = {**ENV, "MLFLOW_TRACKING_URI": mlflow_server}
    proc = run_cli("sweep", "--config", str(experiment), "--workers", "2", "--results", str(results), "-q", env=env)
    assert proc.returncode == 0, proc.stderr
    run_ids = sorted(p.stem for p in (results / "runs").glob("*.json"))
    assert len(run_ids) == 4
    records = {rid: record_of(results, rid) for rid in run_ids}
    assert all(r["hook_errors"] == [] for r in records.values())

    client, runs = mlflow_runs(mlflow_server, "four")  # the sweep is one experiment, named by its file
    assert sorted(r.data.tags["clbench.run_id"] for r in runs) == run_ids
    for run in runs:
        record = records[run.data.tags["clbench.run_id"]]
        assert run.info.run_name == f"{record['label']} {record['run_id']}" and run.info.status == "FINISHED"
        assert run.data.params["model.hidden_sizes"] == repr(record["config"]["model"]["options"]["hidden_sizes"])
        history = client.get_metric_history(run.info.run_id, "accuracy/task_00")
        assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(column(record, 0))
        assert [a.path for a in client.list_artifacts(run.info.run_id, "figures")]

    for rid, record in records.items():
        acc = tensorboard_events(results / "tensorboard" / rid)
        assert [e.value for e in acc.Scalars("accuracy/task_02")] == pytest.approx(column(record, 2))
        wb = wandb_run(results / "wandb", rid)
        assert wb["project"] == "four" and wb["name"] == f"{record['label']} {rid}"
        assert wb["summary"]["metrics/avg_accuracy"] == pytest.approx(record["metrics"]["avg_accuracy"])
    assert not (results / "mlruns").exists()  # MLFLOW_TRACKING_URI was honoured


@pytest.mark.slow
def test_mlflow_file_store_when_asked_for(tmp_path):
    """MLflow 3 refuses its file store unless MLFLOW_ALLOW_FILE_STORE=true; with it, a ``file:`` URI works."""
    store = tmp_path / "filestore"
    env = {**ENV, "MLFLOW_TRACKING_URI": store.as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true"}
    proc = run_cli("run", *FLAGS, "--log", "mlflow", "--results", str(tmp_path / "r"), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["hook_errors"] == []
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        client, (run,) = mlflow_runs(store.as_uri(), "clbench")
    finally:
        del os.environ["MLFLOW_ALLOW_FILE_STORE"]
    assert run.data.tags["clbench.run_id"] == record["run_id"]
    assert run.data.metrics["metrics/bwt"] == pytest.approx(record["metrics"]["bwt"])
    assert list(store.glob("*/*/meta.yaml"))  # the file store's own layout: experiment/run/meta.yaml


# --- failures are hook errors, never lost runs ------------------------------------------------


def test_a_tracker_that_cannot_be_reached_is_a_hook_error(tmp_path):
    env = {**ENV, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}", "MLFLOW_HTTP_REQUEST_TIMEOUT": "2"}
    results = tmp_path / "results"
    proc = run_cli("run", *FLAGS, "--log", "mlflow,tensorboard", "--results", str(results), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["status"] == "ok" and len(record["accuracy_matrix"]) == 3
    (error,) = record["hook_errors"]
    assert error["plugin"] == "trackers:mlflow" and error["hook"] == "open"
    assert "plugin 'trackers:mlflow' failed in open" in proc.stderr
    assert tensorboard_events(results / "tensorboard" / record["run_id"]).Scalars("accuracy/task_00")  # the other logs


class _Flaky:
    """A logger that fails mid-run: in its third evaluation and when it closes."""

    def __init__(self, context):
        self.rows = 0

    from clbench import hookimpl as _hookimpl

    @_hookimpl
    def clbench_evaluation_done(self, context, after_task, accuracies):
        self.rows += 1
        if self.rows == 3:
            raise ConnectionError("tracker went away")

    def close(self, status):
        raise OSError(f"cannot flush ({status})")


class _FlakyPlugin:
    from clbench import hookimpl as _hookimpl

    @_hookimpl
    def clbench_register_loggers(self, register):
        register("flaky", _Flaky, description="fails mid-run")


def test_a_logger_failing_mid_run_is_a_recorded_hook_error(tmp_path):
    from clbench.config import RunConfig, resolve
    from clbench.harness import execute
    from clbench.plugins import make_plugin_host

    host = make_plugin_host(objects=[("flaky-plugin", _FlakyPlugin())])
    config = RunConfig()
    for assignment in (*tiny_flags(3)[1::2], 'train.log=["flaky"]'):
        config.apply_set(assignment)
    resolved = resolve(config, host.registry)
    result = execute(resolved, host, results=tmp_path)
    record = result.record
    assert record["status"] == "ok" and len(record["accuracy_matrix"]) == 3
    assert [(e["plugin"], e["hook"], e["error"]) for e in record["hook_errors"]] == [
        ("flaky-plugin:flaky", "clbench_evaluation_done", "ConnectionError: tracker went away"),
        ("flaky-plugin:flaky", "close", "OSError: cannot flush (ok)"),
    ]
    assert json.loads(result.path.read_text())["hook_errors"] == record["hook_errors"]
    assert host.pm.get_plugin("flaky-plugin:flaky") is None  # removed from the host after the run


def test_memory_traces_reach_the_tracker_when_recorded(tmp_path):
    """The traces plugin records the DNC's memory at run end; the loggers' run_end comes after it
    (trylast), so the run's figures include the memory heatmaps."""
    results = tmp_path / "results"
    small_dnc = ("--model", "dnc", "--set", "model.memory_slots=8", "--set", "model.word_size=8")
    proc = run_cli(
        "run", *FLAGS, *small_dnc, "--set", "model.trace_samples=2", "--log", "tensorboard",
        "--results", str(results), "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert "memory_traces" in record["extras"]
    images = tensorboard_events(results / "tensorboard" / record["run_id"]).Tags()["images"]
    assert "figures/accuracy_matrices" in images and any(tag.startswith("figures/memory") for tag in images)


def test_an_avalanche_strategy_s_loss_curve_reaches_the_tracker(tmp_path):
    """A strategy reports its epochs after each task (from its per-epoch losses): the tracker's
    train/loss is the record's train_stats, epoch by epoch over the stream."""
    pytest.importorskip("avalanche")
    results = tmp_path / "results"
    proc = run_cli(
        "run", *FLAGS, "--strategy", "avalanche.naive", "--log", "tensorboard", "--results", str(results), "--json"
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    losses = [loss for stats in record["train_stats"] for loss in stats["loss"]]
    assert len(losses) == 3 * 2  # 3 tasks x 2 epochs
    scalars = tensorboard_events(results / "tensorboard" / record["run_id"]).Scalars("train/loss")
    assert [e.step for e in scalars] == list(range(1, 7))
    assert [e.value for e in scalars] == pytest.approx(losses)


@pytest.mark.slow
def test_an_interrupted_run_goes_on_in_the_same_mlflow_run(tmp_path):
    """Ctrl-C after a checkpoint ends the MLflow run KILLED; the same command resumes the clbench run
    and continues that MLflow run to FINISHED, with every accuracy row once."""
    import signal

    results = tmp_path / "results"
    args = [sys.executable, "-m", "clbench", "run", "--set", "benchmark.n_tasks=8", "--set", "benchmark.train_size=2000",
            "--set", "train.epochs=3", "--log", "mlflow", "--results", str(results), "-q"]  # fmt: skip
    env = {**os.environ, **ENV}
    env.pop("CLBENCH_DISABLE_PLUGINS", None)
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list((results / "checkpoints").glob("*.pt")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    uri = f"sqlite:///{results / 'mlruns' / 'mlflow.db'}"
    _client, (run,) = mlflow_runs(uri, "clbench")
    assert run.info.status == "KILLED" and run.data.tags["clbench.status"] == "interrupted"
    resumed = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0 and "resumed from the checkpoint" in resumed.stderr, resumed.stderr
    client, (again,) = mlflow_runs(uri, "clbench")  # the same MLflow run, not a second one
    assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"
    assert again.data.tags["clbench.status"] == "ok"
    steps = sorted(m.step for m in client.get_metric_history(again.info.run_id, "accuracy/task_00"))
    assert steps == list(range(9))
