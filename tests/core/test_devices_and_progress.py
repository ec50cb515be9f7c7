"""Devices (``--device``, ``train.device``) and the progress bar's time-left estimate."""

from __future__ import annotations

import json

import pytest
import torch

from clbench.config import RunConfig, resolve
from clbench.devices import resolve_device
from clbench.errors import UserError
from clbench.harness import execute
from clbench.progress import ProgressPlugin, estimate_remaining, format_seconds
from tests.helpers import tiny_assignments, tiny_flags

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device on this machine")
no_cuda = pytest.mark.skipif(CUDA, reason="this machine has CUDA")


def _config(*extra: str, **names: str) -> RunConfig:
    config = RunConfig()
    for section, name in names.items():
        config.set_name(section, name)
    for assignment in (*tiny_assignments(), *extra):
        config.apply_set(assignment)
    return config


def test_cpu_and_auto_resolve_here():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if CUDA else "cpu") or resolve_device("auto").type == "mps"


@no_cuda
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_is_one_line(spec):
    with pytest.raises(UserError, match=f"--device {spec} is not available here") as info:
        resolve_device(spec)
    assert "\n" not in str(info.value)


@no_cuda
def test_cli_refuses_an_unavailable_device_and_writes_nothing(cli, tmp_path):
    proc = cli("run", "--device", "cuda", *tiny_flags(), "--results", "r")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "not available here" in proc.stderr and not (tmp_path / "r").exists()
    sweep = cli("sweep", "--device", "cuda:1", *tiny_flags(), "--results", "r")
    assert sweep.returncode == 2 and "not available here" in sweep.stderr and not (tmp_path / "r").exists()


def test_a_bad_device_name_is_refused_with_what_is_allowed(cli):
    proc = cli("run", "--device", "gpu", *tiny_flags())
    assert proc.returncode == 2 and "train.device" in proc.stderr and "cuda:N" in proc.stderr


def test_the_device_is_a_setting_not_part_of_the_run_id(host):
    default = resolve(_config(), host.registry)
    cpu = resolve(_config("train.device=cpu"), host.registry)
    assert cpu.run_id == default.run_id and cpu.canonical() == default.canonical()
    assert cpu.settings() == {"train": {"device": "cpu", "log": []}}
    assert default.settings() == {"train": {"device": "auto", "log": []}}


def test_cpu_runs_record_their_device_and_match_auto_here(host):
    if CUDA:
        pytest.skip("auto is CUDA here")
    a = execute(resolve(_config("train.device=cpu"), host.registry), host, results=None).record
    b = execute(resolve(_config(), host.registry), host, results=None).record
    assert a["runtime"]["device"] == b["runtime"]["device"] == "cpu"
    assert a["accuracy_matrix"] == b["accuracy_matrix"] and a["train_stats"] == b["train_stats"]


@needs_cuda
@pytest.mark.parametrize(
    "names",
    [
        {"replay": "reservoir"},
        {"meta": "maml", "replay": "prioritized"},
        {"meta": "reptile", "replay": "class-balanced"},
        {"model": "dnc", "meta": "fomaml", "replay": "prioritized"},
    ],
    ids=lambda n: "-".join(n.values()),
)
def test_cuda_runs_match_the_cpu_up_to_float_differences(host, names):
    extra = ("model.memory_slots=8", "model.word_size=4", "model.read_heads=1") if names.get("model") == "dnc" else ()
    cpu = execute(resolve(_config("train.device=cpu", *extra, **names), host.registry), host, results=None).record
    gpu = execute(resolve(_config("train.device=cuda", *extra, **names), host.registry), host, results=None).record
    assert gpu["status"] == "ok", gpu.get("traceback")
    assert (
        gpu["run_id"] == cpu["run_id"] and gpu["runtime"]["device"].startswith("cuda") and gpu["runtime"]["accelerator"]
    )
    diff = max(abs(a - b) for ra, rb in zip(cpu["accuracy_matrix"], gpu["accuracy_matrix"]) for a, b in zip(ra, rb))
    assert diff <= 0.1, diff  # tiny tasks: a flipped test sample moves an accuracy by 1/64


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=needs_cuda)])
def test_a_run_resumes_from_its_last_checkpoint_in_process(host, tmp_path, device):
    config = resolve(_config(f"train.device={device}", meta="maml", replay="prioritized"), host.registry)
    whole = execute(config, host, results=None).record
    folder = tmp_path / "checkpoints"
    execute(config, host, results=None, checkpoints=folder, keep_checkpoints=True)
    # the kept checkpoint is the last one, after task 2 of 3: a run resuming from it ends as the whole run did
    again = execute(config, host, results=None, checkpoints=folder).record
    assert again["timings"]["resumed_after_task"] == [1]
    assert again["accuracy_matrix"] == whole["accuracy_matrix"] and again["train_stats"] == whole["train_stats"]


def test_estimate_uses_the_latest_epochs():
    assert estimate_remaining([], 5) is None
    assert estimate_remaining([1.0] * 3, 0) == 0.0
    # epochs slowed from 1 s to 3 s: the estimate follows the latest five, not the mean since the start
    assert estimate_remaining([1.0] * 10 + [3.0] * 5, 10) == pytest.approx(30.0)
    assert format_seconds(3725.4) == "1:02:05" and format_seconds(None) == "-:--:--"


def test_the_bar_adds_the_evaluation_of_the_tasks_left():
    bar = ProgressPlugin()
    bar._epochs, bar._tasks, bar._done = 2, 4, 4  # two of four tasks done
    bar._epoch_s.extend([2.0, 2.0])
    bar._eval_s.extend([1.0, 3.0])
    assert bar.remaining_seconds() == pytest.approx(4 * 2.0 + 2 * 2.0)


def test_a_strategy_s_epochs_are_timed_from_its_task_s_training_time():
    """A strategy's epochs reach the bar together after its task: each gets an equal share of the
    task's training time, not the first all of it and the others nothing."""

    class Context:
        learner = type("L", (), {"reports_epochs": False})()

    bar = ProgressPlugin()
    bar._epochs, bar._tasks = 3, 2
    bar.clbench_task_start(Context(), 0)
    for epoch in range(3):
        bar.clbench_epoch_end(Context(), 0, epoch, 0.5)
    bar.clbench_task_end(Context(), 0, 6.0)
    assert list(bar._epoch_s) == [2.0, 2.0, 2.0] and bar._done == 3
    assert bar.remaining_seconds() == pytest.approx(3 * 2.0)
    bar.clbench_task_start(Context(), 1)  # a task it skips (joint, mode final) reports no epoch
    bar.clbench_task_end(Context(), 1, 0.3)
    assert list(bar._epoch_s)[-3:] == [pytest.approx(0.1)] * 3 and bar._done == 6


def test_a_resumed_run_starts_its_bar_at_the_tasks_done(tmp_path, host):
    class Context:
        run_id, resumed_from = "0" * 16, 2
        train = type("T", (), {"epochs": 3})()
        stream = type("S", (), {"tasks": [0] * 5})()

    bar = ProgressPlugin()
    bar.clbench_run_start(Context())
    try:
        assert bar._done == 6 and bar._progress.tasks[0].completed == 6 and bar._progress.tasks[0].total == 15
    finally:
        bar.close()
    assert json.dumps(bar._done)  # plain data


def test_gpus_per_run_goes_with_ray(cli):
    proc = cli("sweep", "--gpus-per-run", "0.5", *tiny_flags(), "--dry-run")
    assert proc.returncode == 2 and "--executor ray" in proc.stderr and proc.stderr.count("\n") == 1


@pytest.mark.slow
def test_ray_gives_each_run_its_share_of_a_gpu(tmp_path, host):
    """A real local Ray cluster that declares one GPU (Ray schedules by the declared resource; the
    runs compute on the CPU here): with --gpus-per-run 0.5 every run is granted GPU 0 and says so."""
    ray = pytest.importorskip("ray")
    from clbench.ray_executor import ray_runtime_env
    from clbench.sweep import run_sweep, spec_from_cli

    spec = spec_from_cli(RunConfig(), {"replay": "none,fifo,reservoir"}, (), "0")
    for assignment in (*tiny_assignments(2), "train.device=cpu"):
        spec.base.apply_set(assignment)
    plan = spec.expand(host.registry)
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, runtime_env=ray_runtime_env(), log_to_driver=False)
    try:
        summary = run_sweep(plan, str(tmp_path / "r"), executor="ray", workers=2, gpus_per_run=0.5)
    finally:
        ray.shutdown()
    assert len(summary.ok) == 3 and not summary.failed
    for path in (tmp_path / "r" / "runs").glob("*.json"):
        assert json.loads(path.read_text())["runtime"]["ray_gpu_ids"] == [0]


def test_a_checkpoint_that_does_not_fit_the_learner_is_not_used(host, tmp_path):
    """A checkpoint of the same run id whose learner state does not load (here: a model of another
    width, as an incompatible plugin version would write) is set aside: the run starts afresh."""
    import torch

    from clbench.checkpoints import checkpoint_path, load_checkpoint, save_checkpoint

    config = resolve(_config(replay="reservoir"), host.registry)
    whole = execute(config, host, results=None).record
    folder = tmp_path / "checkpoints"
    execute(config, host, results=None, checkpoints=folder, keep_checkpoints=True)
    path = checkpoint_path(folder, config.run_id)
    saved = load_checkpoint(path, config.run_id)
    saved.learner["model"] = {k: torch.zeros(3, *v.shape[1:]) for k, v in saved.learner["model"].items()}
    save_checkpoint(path, saved)
    notes: list[str] = []
    again = execute(config, host, results=None, checkpoints=folder, on_note=notes.append).record
    assert len(notes) == 1 and notes[0].startswith("checkpoint not used (RuntimeError")
    assert again["accuracy_matrix"] == whole["accuracy_matrix"] and "resumed_after_task" not in again["timings"]


@pytest.mark.parametrize("content", [b"not a checkpoint", b""], ids=["garbage", "empty"])
def test_an_unreadable_checkpoint_is_set_aside_in_one_line(host, tmp_path, content):
    from clbench.checkpoints import checkpoint_path

    config = resolve(_config(), host.registry)
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    checkpoint_path(folder, config.run_id).write_bytes(content)
    notes: list[str] = []
    record = execute(config, host, results=None, checkpoints=folder, on_note=notes.append).record
    assert record["status"] == "ok" and len(notes) == 1 and "checkpoint not used (cannot read" in notes[0]
    assert "\n" not in notes[0] and not checkpoint_path(folder, config.run_id).exists()  # removed once complete
