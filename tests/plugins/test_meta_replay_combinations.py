"""End to end: every meta-learner x replay buffer runs through the harness and the CLI."""

from __future__ import annotations

import json

import pytest

from clbench.cli import main
from clbench.config import RunConfig, resolve
from clbench.harness import execute
from clbench.plugins import make_plugin_host
from tests.helpers import tiny_assignments

REGISTRY = make_plugin_host().registry
#: Every registered meta-learner and replay buffer (those a later plugin adds are covered as they arrive).
METAS = REGISTRY.names("meta")
REPLAYS = REGISTRY.names("replay")
SHORT = tiny_assignments(train_size=100, test_size=100)  # 4 batches: enough to learn task 0


def run(host, meta: str, replay: str, extra: tuple[str, ...] = (), seed: int = 0) -> dict:
    config = RunConfig(seed=seed)
    config.set_name("meta", meta)
    config.set_name("replay", replay)
    for assignment in (*SHORT, *extra):
        config.apply_set(assignment)
    return execute(resolve(config, host.registry), host, results=None).record


@pytest.mark.parametrize("replay", REPLAYS)
@pytest.mark.parametrize("meta", METAS)
def test_every_combination_completes(host, meta, replay):
    record = run(host, meta, replay)
    assert record["status"] == "ok", record.get("error")
    matrix = record["accuracy_matrix"]
    assert len(matrix) == 3 and all(len(row) == 3 for row in matrix)
    assert all(0.0 <= a <= 1.0 for row in matrix for a in row)
    assert matrix[0][0] > 0.4  # it learnt something (chance is 0.2)
    assert all(loss == loss for stat in record["train_stats"] for loss in stat["loss"])  # no NaN


@pytest.mark.parametrize(
    "meta,replay", [("maml", "class-balanced"), ("reptile", "reservoir"), ("fomaml", "prioritized")]
)
def test_same_config_and_seed_give_the_same_record(host, meta, replay):
    a, b = run(host, meta, replay), run(host, meta, replay)
    assert a["accuracy_matrix"] == b["accuracy_matrix"] and a["train_stats"] == b["train_stats"]
    c = run(host, meta, replay, seed=1)
    assert c["accuracy_matrix"] != a["accuracy_matrix"]


@pytest.mark.parametrize("meta", ["maml", "reptile"])
def test_eval_adaptation_adds_the_adapted_matrix(host, meta):
    record = run(host, meta, "reservoir", ("meta.eval_adapt_steps=2", "meta.eval_support_size=16"))
    assert record["status"] == "ok"
    assert len(record["adapted_accuracy_matrix"]) == 3 and "avg_accuracy" in record["adapted_metrics"]
    assert "adapted_accuracy_matrix" not in run(host, meta, "reservoir")


def test_cli_runs_maml_with_prioritized_replay(tmp_path, capsys):
    args = ["run", "-q", "--meta", "maml", "--replay", "prioritized", "--results", str(tmp_path)]
    args += [a for s in SHORT for a in ("--set", s)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "mlp · maml · prioritized on shifting-linear" in out.splitlines()[0] and "avg_accuracy" in out
    assert len(list((tmp_path / "runs").glob("*.json"))) == 1


def test_cli_shows_the_adapted_metrics_beside_the_plain_ones(tmp_path, capsys):
    args = ["run", "-q", "--meta", "reptile", "--set", "meta.eval_adapt_steps=2", "--results", str(tmp_path)]
    assert main(args + [a for s in SHORT for a in ("--set", s)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("options: ") and "meta.eval_adapt_steps=2" in lines[1]
    assert lines[2].split() == ["metric", "value", "adapted"]
    (record_path,) = (tmp_path / "runs").glob("*.json")
    record = json.loads(record_path.read_text())
    row = next(line for line in lines if line.startswith("avg_accuracy")).split()
    assert row[1:] == [f"{record['metrics']['avg_accuracy']:.4f}", f"{record['adapted_metrics']['avg_accuracy']:.4f}"]
    assert main(["show", record["run_id"], "--results", str(tmp_path)]) == 0
    assert "adapted" in capsys.readouterr().out


def test_cli_rejects_bad_meta_settings_in_one_line(tmp_path, capsys):
    assert main(["run", "-q", "--meta", "maml", "--set", "meta.inner_steps=9", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "inner_steps" in err
    assert main(["run", "-q", "--meta", "maml", "--set", "train.batch_size=1", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "batch_size >= 2" in err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())
