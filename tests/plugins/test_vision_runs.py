"""Runs on the image streams (plugin clbench_vision) through the harness and the command line, on
made-up files in the data sets' own formats: every stream, model, meta-learner and replay buffer,
the scenarios compared, joint training without a float copy, and `clbench data`. Data and models:
test_vision_data.py."""

from __future__ import annotations

import json
import math

import pytest

from clbench.config import RunConfig, resolve
from clbench.harness import execute
from clbench_vision.data import DATASETS
from clbench_vision.plugin import (
    PermutedMNISTOptions,
)
from tests.helpers import run_cli

SIX = ["permuted-mnist", "rotated-mnist", "split-mnist", "split-fashion-mnist", "split-cifar10", "split-cifar100"]


def run_on(host, benchmark, root, *sets, seed=0, **names):
    """Run in-process on a made-up data root; the run must succeed."""
    cfg = RunConfig(seed=seed)
    cfg.set_name("benchmark", benchmark)
    for kind, name in names.items():
        cfg.set_name(kind, name)
    for s in (
        f"benchmark.root={root}",
        "benchmark.download=false",
        "benchmark.checksum=false",
        "train.epochs=1",
        *sets,
    ):
        cfg.apply_set(s)
    record = execute(resolve(cfg, host.registry), host, results=None).record
    assert record["status"] == "ok", record.get("traceback") or record.get("error")
    return record


@pytest.mark.parametrize("benchmark", SIX)
def test_every_stream_runs_through_the_harness(host, vision_root, benchmark, one_thread):
    sets = ["benchmark.n_tasks=2", "benchmark.train_size=100", "benchmark.test_size=40"]
    if benchmark == "split-cifar100":  # 5 classes a task: 10 training and 2 test images of each
        sets = ["benchmark.n_tasks=20", "benchmark.train_size=50", "benchmark.test_size=10"]
    record = run_on(host, benchmark, vision_root, *sets)
    assert record["benchmark_info"]["scenario"] == PermutedMNISTOptions().scenario or "split" in benchmark
    again = run_on(host, benchmark, vision_root, *sets)
    assert again["accuracy_matrix"] == record["accuracy_matrix"]  # same config and seed, same record


@pytest.mark.parametrize("model", ["mlp", "cnn", "resnet18-reduced", "lstm", "dnc"])
def test_models_learn_the_made_up_images(host, vision_root, model, one_thread):
    sets = ["benchmark.n_tasks=2", "benchmark.train_size=200", "benchmark.test_size=100", "train.epochs=3"]
    if model == "dnc":
        sets = ["benchmark.n_tasks=2", "benchmark.train_size=200", "benchmark.test_size=40", "train.epochs=3"]
    record = run_on(host, "split-mnist", vision_root, *sets, "benchmark.scenario=task", model=model)
    R = record["accuracy_matrix"]
    assert R[0][0] > 0.7 and R[1][1] > 0.7  # task scenario: two classes per task, chance is 0.5


def test_task_scenario_beats_class_scenario_on_old_tasks(host, vision_root, one_thread):
    sets = ["benchmark.n_tasks=5", "benchmark.train_size=100", "benchmark.test_size=40", "train.epochs=2"]
    task = run_on(host, "split-mnist", vision_root, *sets, "benchmark.scenario=task")
    klass = run_on(host, "split-mnist", vision_root, *sets, "benchmark.scenario=class")
    # class-incremental fine-tuning forgets the earlier tasks entirely; masking keeps them apart
    assert task["metrics"]["earliest_task_accuracy"] > klass["metrics"]["earliest_task_accuracy"] + 0.2


def test_cli_runs_on_a_folder_of_files(vision_root, tmp_path):
    result = run_cli(
        "run", "--benchmark", "permuted-mnist", "--set", f"benchmark.root={vision_root}", "--set",
        "benchmark.download=false", "--set", "benchmark.n_tasks=3", "--set", "train.epochs=1",
        "--results", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (record_path,) = (tmp_path / "runs").glob("*.json")
    record = json.loads(record_path.read_text())
    assert record["status"] == "ok" and len(record["accuracy_matrix"]) == 3
    assert "root" not in record["config"]["benchmark"]["options"]  # where the data lies is no part of the run id
    assert math.isclose(sum(record["accuracy_matrix"][2]) / 3, record["metrics"]["avg_accuracy"])


def test_list_shows_all_six_streams_and_their_options():
    result = run_cli("list", "benchmarks", "--json")
    assert result.returncode == 0, result.stderr
    listed = {entry["name"]: entry for entry in json.loads(result.stdout)["benchmarks"]}
    for name in SIX:
        options = {o["name"] for o in listed[name]["options"]}
        assert {"root", "download", "n_tasks", "train_size", "test_size", "scenario", "seed"} <= options, name
    assert "class_order" in {o["name"] for o in listed["split-cifar100"]["options"]}


def _names(kind: str) -> list[str]:
    from clbench.plugins import make_plugin_host

    return make_plugin_host().registry.names(kind)


@pytest.mark.parametrize("replay", _names("replay"))
@pytest.mark.parametrize("meta", _names("meta"))
def test_every_meta_learner_and_replay_buffer_runs_on_an_image_stream(host, vision_root, meta, replay, one_thread):
    # the task scenario: every loss these learners compute goes through the masked criterion
    sets = ["benchmark.n_tasks=2", "benchmark.train_size=64", "benchmark.test_size=20", "benchmark.scenario=task"]
    sets += ["model.channels=[8]", "model.hidden=32"]
    if meta != "none":  # test-time adaptation too
        sets.append("meta.eval_adapt_steps=1")
    record = run_on(host, "split-mnist", vision_root, *sets, model="cnn", meta=meta, replay=replay)
    assert all(0.0 <= a <= 1.0 for row in record["accuracy_matrix"] for a in row)
    assert all(math.isfinite(x) for stats in record["train_stats"] for x in stats["loss"])


def test_joint_trains_on_every_task_so_far_without_a_float_copy(host, vision_root, one_thread):
    sets = ["benchmark.n_tasks=2", "benchmark.train_size=100", "benchmark.test_size=40", "benchmark.scenario=task"]
    record = run_on(host, "permuted-mnist", vision_root, *sets, strategy="joint")
    assert [stats["samples"] for stats in record["train_stats"]] == [100, 200]  # tasks joined lazily
    assert record["accuracy_matrix"][1][0] > 0.5  # 10 classes per task: chance is 0.1


def test_data_command_shows_what_is_there_and_refuses_unknown_names(vision_root, tmp_path):
    shown = run_cli("data", "status", "--root", str(vision_root))
    assert shown.returncode == 0, shown.stderr
    lines = {line.split()[0]: line for line in shown.stdout.splitlines()[1:]}
    assert set(lines) == set(DATASETS) and all("present" in line for line in lines.values())
    (tmp_path / "MNIST").mkdir()
    empty = run_cli("data", "status", "--root", str(tmp_path))
    assert "missing 4 of 4 files" in empty.stdout and "missing 7 of 7 files" in empty.stdout
    wrong = run_cli("data", "fetch", "imagenet", "--root", str(tmp_path))
    assert wrong.returncode == 2 and "unknown data set 'imagenet'" in wrong.stderr and "Traceback" not in wrong.stderr
    present = run_cli("data", "fetch", "mnist", "--root", str(vision_root))  # nothing to download
    assert present.returncode == 0 and "already in" in present.stdout
