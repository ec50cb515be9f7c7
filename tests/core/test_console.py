"""What the console shows of runs: the composition, the variant label and every option that differs
from its default, in run summaries, ``show``, dry runs and sweep logs."""

from __future__ import annotations

from clbench.config import RunConfig, resolve
from clbench.describe import describe_options, describe_plan, non_default_options
from clbench.plugins import make_plugin_host
from tests.helpers import SMALL, complete_record, run_cli

TINY_OPTIONS = "benchmark.n_tasks=3 benchmark.train_size=96 benchmark.test_size=64"


def test_non_default_options_against_each_components_defaults():
    host = make_plugin_host()
    config = RunConfig()
    for assignment in ("model.hidden_sizes=[256,256]", "train.lr=0.0005", "train.clip=0.5", "model.activation=relu"):
        config.apply_set(assignment)  # relu is the mlp's default: not shown
    canonical = resolve(config, host.registry).canonical()
    assert non_default_options(canonical, host.registry) == {
        "model.hidden_sizes": [256, 256],
        "train.lr": 0.0005,
        "train.clip": 0.5,
    }
    assert describe_options(non_default_options(canonical, host.registry)) == (
        "model.hidden_sizes=[256,256] train.lr=0.0005 train.clip=0.5"
    )
    default = resolve(RunConfig(), host.registry).canonical()
    assert non_default_options(default, host.registry) == {}
    assert describe_options({}) == "defaults"
    # without the registry (a component whose plugin is missing), every option is shown
    assert "model.activation" in non_default_options(canonical, None)


def test_a_plan_shows_shared_options_once_and_each_runs_own():
    host = make_plugin_host()
    canonicals = []
    for lr in (0.001, 0.0005):
        config = RunConfig()
        config.apply_set("benchmark.n_tasks=3")
        config.apply_set(f"train.lr={lr}")
        canonicals.append(resolve(config, host.registry).canonical())
    shared, lines = describe_plan(canonicals, host.registry)
    assert shared == "benchmark.n_tasks=3"
    assert lines == ["mlp · none · none on shifting-linear", "mlp · none · none on shifting-linear  train.lr=0.0005"]


def test_run_and_show_print_the_options_that_differ(tmp_path):
    results = str(tmp_path / "r")
    default = run_cli("run", *SMALL, "--results", results)
    changed = run_cli(
        "run", *SMALL, "--set", "model.hidden_sizes=[256,256]", "--set", "train.lr=0.0005", "--results", results
    )
    assert default.returncode == 0 and changed.returncode == 0, changed.stderr
    head_default, head_changed = default.stdout.splitlines()[:2], changed.stdout.splitlines()[:2]
    assert head_default[0].endswith("seed=0  mlp · none · none on shifting-linear")
    assert head_default[1] == f"options: {TINY_OPTIONS} train.epochs=1"
    assert head_changed[1] == f"options: {TINY_OPTIONS} model.hidden_sizes=[256,256] train.epochs=1 train.lr=0.0005"
    run_id = head_changed[0].split()[1]
    shown = run_cli("show", run_id, "--results", results)
    assert shown.stdout.splitlines()[:2] == head_changed  # show prints the same header


def test_dry_run_and_sweep_log_show_labels_and_options(tmp_path):
    experiment = tmp_path / "two.toml"
    experiment.write_text(
        "seeds = [0]\n[benchmark]\nn_tasks = 3\ntrain_size = 96\ntest_size = 64\n[train]\nepochs = 1\n"
        '[[variants]]\nlabel = "narrow"\nmodel = { name = "mlp", hidden_sizes = [16] }\n'
        '[[variants]]\nlabel = "plain"\n'
    )
    dry = run_cli("sweep", "--config", str(experiment), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stderr.splitlines() == [f"sweep two: every run: {TINY_OPTIONS} train.epochs=1"]
    lines = dry.stdout.splitlines()
    assert lines[0].endswith("  seed=0  narrow  mlp · none · none on shifting-linear  model.hidden_sizes=[16]")
    assert lines[1].endswith("  seed=0  plain  mlp · none · none on shifting-linear")
    assert lines[2] == "2 runs planned"
    swept = run_cli("sweep", "--config", str(experiment), "--results", str(tmp_path / "r"), "--workers", "1")
    assert swept.returncode == 0, swept.stderr
    log = [line for line in swept.stderr.splitlines() if line.startswith("  ")]
    assert sorted(line.split("  ok  ")[1] for line in log) == [
        "seed=0  narrow  mlp · none · none on shifting-linear  model.hidden_sizes=[16]",
        "seed=0  plain  mlp · none · none on shifting-linear",
    ]


def test_dry_run_says_what_the_results_folder_already_holds_of_each_run(tmp_path):
    """done (a complete record: skipped), resume (a checkpoint), rerun (a failed record), new."""
    import json

    results = tmp_path / "r"
    args = ("sweep", *SMALL, "--seeds", "0-3", "--results", str(results), "--dry-run")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    ids = [line.split()[0] for line in first.stdout.splitlines()[:4]]
    assert [line.split()[1] for line in first.stdout.splitlines()[:4]] == ["new"] * 4
    assert first.stdout.splitlines()[-1] == "4 runs planned"
    (results / "runs").mkdir(parents=True)
    (results / "checkpoints").mkdir()
    (results / "runs" / f"{ids[0]}.json").write_text(json.dumps(complete_record(ids[0])))
    failed = complete_record(ids[1], status="failed", error="RuntimeError: boom", metrics={})
    (results / "runs" / f"{ids[1]}.json").write_text(json.dumps(failed))
    (results / "checkpoints" / f"{ids[2]}.pt").write_bytes(b"a checkpoint")
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:4]] == [
        [ids[0], "done"],
        [ids[1], "rerun"],
        [ids[2], "resume"],
        [ids[3], "new"],
    ]
    assert lines[-1] == "4 runs planned: 1 done, 3 to run (1 resume from a checkpoint, 1 run again)"
    assert sorted(p.name for p in (results / "runs").iterdir()) == sorted([f"{ids[0]}.json", f"{ids[1]}.json"])


def test_show_prints_the_avalanche_cross_check_and_adapted_metrics(tmp_path):
    import json

    from clbench_avalanche.crosscheck import compare
    from tests.helpers import complete_record

    record = complete_record(
        "feedfacefeedface", tasks=2, adapted_metrics={"avg_accuracy": 0.7, "latest_task_accuracy": 0.8}
    )
    record["metrics"]["bwt"] = -0.1
    crosscheck = {
        "accuracy_matrix": [[0.6, 0.5], [0.5, 0.6]],
        "stream": [{"accuracy": 0.56, "bwt": -0.1, "forgetting": 0.1}],
        "test_sizes": [64, 64],
    }
    crosscheck["comparison"] = compare(crosscheck, record)
    record["extras"] = {"avalanche_crosscheck": crosscheck}
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "feedfacefeedface.json").write_text(json.dumps(record))
    shown = run_cli("show", "feedface", "--results", str(tmp_path))
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout.splitlines()
    assert "metric                value    adapted" in out
    assert any(line.startswith("avg_accuracy") and line.split()[1:] == ["0.5500", "0.7000"] for line in out)
    at = out.index("avalanche cross-check (clbench's numbers under Avalanche's conventions, beside Avalanche's):")
    assert out[at + 1].split() == ["StreamBWT", "clbench", "-0.1000", "avalanche", "-0.1000", "|diff|", "0.0000"]
    assert out[at + 3].split()[:5] == ["Top1_Acc_Stream", "clbench", "0.5500", "avalanche", "0.5600"]
