"""Memory traces: the lifecycle plugin records them, ``clbench traces`` draws them."""

from clbench.config import RunConfig, resolve
from clbench.harness import execute
from clbench.plugins import make_plugin_host
from tests.helpers import run_cli


def _dnc_run(tmp_path, trace_samples):
    host = make_plugin_host()
    cfg = RunConfig()
    cfg.set_name("model", "dnc")
    cfg.options["model"].update({"memory_slots": 12, "word_size": 4, "read_heads": 2, "trace_samples": trace_samples})
    cfg.options["benchmark"].update({"n_tasks": 2, "train_size": 32, "test_size": 8})
    cfg.train.update({"epochs": 1, "batch_size": 16})
    return execute(resolve(cfg, host.registry), host, results=tmp_path).record


def test_traces_are_recorded_per_task_as_slots_by_steps(tmp_path):
    record = _dnc_run(tmp_path, 3)
    traces = record["extras"]["memory_traces"]
    assert traces["after_task"] == 1 and traces["samples"] == 3 and set(traces["tasks"]) == {"0", "1"}
    for kind in ("read", "write", "usage"):
        grid = traces["tasks"]["0"][kind]
        assert len(grid) == 12 and all(len(row) == 8 for row in grid)  # 12 slots x 8 steps
    # a write weighting sums to at most 1 over the slots at every step
    write = traces["tasks"]["1"]["write"]
    assert all(sum(write[s][t] for s in range(12)) <= 1.0 + 1e-4 for t in range(8))
    proc = run_cli("traces", record["run_id"], "--results", str(tmp_path), "--out", str(tmp_path / "t.png"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_traces_unless_asked(tmp_path):
    record = _dnc_run(tmp_path, 0)
    assert "memory_traces" not in record["extras"]
    proc = run_cli("traces", record["run_id"], "--results", str(tmp_path))
    assert proc.returncode == 2 and "has no memory traces" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
