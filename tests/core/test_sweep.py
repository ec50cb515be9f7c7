"""Sweeps: expansion, the local and Ray executors, failures, and resuming after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clbench.config import RunConfig
from clbench.errors import UserError
from clbench.sweep import parse_seeds, spec_from_cli, spec_from_toml, split_top_level
from tests.helpers import run_cli, tiny_flags

TINY = tiny_flags(2)


@pytest.mark.parametrize(
    "text, seeds",
    [("0-4", [0, 1, 2, 3, 4]), ("3", [3]), ("0,3,7", [0, 3, 7]), ("1-2,9,1", [1, 2, 9]), ([2, 5], [2, 5])],
)
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("bad", ["4-1", "a", "-3", "", [], [-1]])
def test_bad_seeds(bad):
    with pytest.raises(UserError):
        parse_seeds(bad)


def test_split_top_level_respects_brackets():
    assert split_top_level("1,[64,64],'a,b',x") == ["1", "[64,64]", "'a,b'", "x"]


def test_cli_grid_expands_in_a_stable_order(host):
    spec = spec_from_cli(RunConfig(), {"model": "mlp", "replay": None}, ("model.hidden_sizes=[8],[16]",), "0-2")
    plan = spec.expand(host.registry)
    assert len(plan.configs) == 6
    assert [c.seed for c in plan.configs] == [0, 1, 2, 0, 1, 2]
    assert [c.options["model"].hidden_sizes for c in plan.configs][:4] == [[8], [8], [8], [16]]
    assert plan.run_ids == spec.expand(host.registry).run_ids  # deterministic


def test_strategies_and_composed_runs_together(host):
    spec = spec_from_cli(RunConfig(), {"meta": "none", "strategy": "joint"}, (), "0")
    names = sorted(
        (c.components.get("strategy") and c.components["strategy"].name) or "composed"
        for c in spec.expand(host.registry).configs
    )
    assert names == ["composed", "joint"]


def test_duplicate_points_run_once(host):
    spec = spec_from_cli(RunConfig(), {"model": "mlp,mlp"}, (), "0,0")
    assert len(spec.expand(host.registry).configs) == 1


def test_bad_grid_value_fails_before_running(host):
    spec = spec_from_cli(RunConfig(), {"model": "mlp,mpl"}, (), "0")
    with pytest.raises(UserError, match="did you mean 'mlp'"):
        spec.expand(host.registry)


def test_experiment_file(tmp_path, host):
    path = tmp_path / "exp.toml"
    path.write_text(
        'seeds = "0-1"\n[benchmark]\nn_tasks = 2\n[train]\nepochs = 1\n'
        '[grid]\n"model.hidden_sizes" = [[8], [16]]\n'
        '[[variants]]\nlabel = "plain"\n'
        '[[variants]]\nlabel = "upper bound"\nstrategy = {name = "joint"}\n'
    )
    spec = spec_from_toml(str(path))
    plan = spec.expand(host.registry)
    assert len(plan.configs) == 2 * 2 * 2
    labels = [plan.labels[rid] for rid in plan.run_ids]
    assert labels.count("plain") == 4 and labels.count("upper bound") == 4
    assert all(c.options["benchmark"].n_tasks == 2 for c in plan.configs)


def _records(folder):
    out = {}
    for path in (folder / "runs").glob("*.json"):
        out[path.stem] = json.loads(path.read_text())
    return out


def test_local_sweep_records_failures_and_goes_on(tmp_path):
    (tmp_path / "flaky_plugin.py").write_text(
        "from clbench import hookimpl\n"
        "def build(options, ctx):\n"
        "    raise RuntimeError('cannot build this model')\n"
        "@hookimpl\n"
        "def clbench_register_models(register):\n"
        "    register('unbuildable', build, description='always fails')\n"
    )
    env = {"PYTHONPATH": str(tmp_path)}
    args = [
        "--plugin",
        "flaky_plugin",
        "sweep",
        "--model",
        "mlp,unbuildable",
        "--seeds",
        "0-1",
        *TINY,
        "--workers",
        "2",
        "--results",
        str(tmp_path / "res"),
    ]
    proc = run_cli(*args, env=env, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "2 ok, 2 failed" in proc.stdout
    records = _records(tmp_path / "res")
    assert len(records) == 4
    failed = [r for r in records.values() if r["status"] == "failed"]
    assert len(failed) == 2 and all(r["error"] == "RuntimeError: cannot build this model" for r in failed)
    # resuming runs only the failed ones again; the complete ones are skipped
    again = run_cli(*args, env=env, cwd=tmp_path)
    assert "0 ok, 2 failed, 2 skipped" in again.stdout


def _plan_ids(tmp_path, args):
    proc = run_cli("sweep", *args, "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return {line.split()[0] for line in proc.stdout.splitlines() if line and "runs planned" not in line}


def test_sigkill_mid_sweep_then_resume_finishes_exactly_the_plan(tmp_path):
    args = [
        "--seeds",
        "0-5",
        "--set",
        "benchmark.n_tasks=3",
        "--set",
        "benchmark.train_size=300",
        "--set",
        "train.epochs=2",
        "--workers",
        "1",
        "--results",
        str(tmp_path / "res"),
        "-q",
    ]
    planned = _plan_ids(tmp_path, args)
    assert len(planned) == 6
    proc = subprocess.Popen(
        [sys.executable, "-m", "clbench", "sweep", *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    runs = tmp_path / "res" / "runs"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(runs.glob("*.json")) if runs.exists() else []) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = set(_records(tmp_path / "res"))
    assert 2 <= len(before) < 6, "the sweep should have been killed part-way"
    resumed = run_cli("sweep", *args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{6 - len(before)} ok, 0 failed, {len(before)} skipped" in resumed.stdout
    records = _records(tmp_path / "res")
    assert set(records) == planned
    assert all(r["status"] == "ok" and len(r["accuracy_matrix"]) == 3 for r in records.values())


def test_ray_executor_gives_the_same_records_as_local(tmp_path):
    pytest.importorskip("ray")
    args = ["--seeds", "0-1", "--grid", "model.hidden_sizes=[8],[16]", *TINY, "--workers", "2", "-q"]
    local = run_cli("sweep", *args, "--results", str(tmp_path / "local"), cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    ray = run_cli("sweep", *args, "--executor", "ray", "--results", str(tmp_path / "ray"), cwd=tmp_path)
    assert ray.returncode == 0, ray.stderr
    a, b = _records(tmp_path / "local"), _records(tmp_path / "ray")
    assert len(a) == 4 and set(a) == set(b)
    for run_id in a:
        assert a[run_id]["accuracy_matrix"] == b[run_id]["accuracy_matrix"]
        assert a[run_id]["config"] == b[run_id]["config"]


def _modules_loaded(names: list[str]) -> dict[str, bool]:
    """Run in a pool worker: which of ``names`` were already imported when the job started."""
    return {name: name in sys.modules for name in names}


def _commit_at_start() -> tuple[int, str | None, str]:
    """Run in a pool worker: whether the commit was looked up before the job (by the fork
    server's preload), its value, and the folder the worker's clbench was imported from (the
    server imports the installed clbench, which under tox is not the checkout the tests import)."""
    from clbench.provenance import package_root, source_commit

    return source_commit.cache_info().currsize, source_commit(), str(package_root())


def _plain(value) -> bool:
    """True when ``value`` holds only plain JSON types (exact types, no subclasses)."""
    if type(value) is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if type(value) is list:
        return all(_plain(v) for v in value)
    return type(value) in (str, int, float, bool, type(None))


def test_pool_workers_start_with_torch_and_the_harness_imported():
    from concurrent.futures import ProcessPoolExecutor

    from clbench.executors import worker_context

    context = worker_context(1)
    assert context.get_start_method() == "forkserver"  # Linux and macOS have it
    names = ["torch", "torch._dynamo", "clbench.harness"]
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        assert pool.submit(_modules_loaded, names).result() == dict.fromkeys(names, True)
        from clbench.provenance import commit_of

        looked_up, commit, root = pool.submit(_commit_at_start).result()
        assert looked_up == 1 and commit == commit_of(Path(root))  # looked up when the server started


def test_workers_return_records_of_plain_json_types():
    """The driver unpickles what workers return: a torch or numpy object in a record would make it
    import that library, and records are JSON files anyway."""
    from clbench.config import resolve
    from clbench.executors import Job, run_job
    from clbench.plugins import make_plugin_host

    config = RunConfig()
    for assignment in TINY[1::2]:
        config.apply_set(assignment)
    resolved = resolve(config, make_plugin_host(()).registry)
    record = run_job(Job(resolved.run_id, resolved.canonical()))
    assert record["status"] == "ok" and _plain(record)
    assert type(record["versions"]["torch"]) is str  # torch.__version__ is a str subclass of torch's


def test_native_thread_pools_follow_the_run_unless_the_user_set_them(monkeypatch):
    from clbench.executors import NATIVE_THREAD_VARIABLES, limit_native_threads

    for name in NATIVE_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "4")  # the user's choice stays
    limit_native_threads(2)
    assert os.environ["OPENBLAS_NUM_THREADS"] == "2" and os.environ["OMP_NUM_THREADS"] == "2"
    assert os.environ["MKL_NUM_THREADS"] == "4"
