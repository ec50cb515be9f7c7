"""Misbehaving plugins, each a tiny module loaded with ``--plugin``: a hook's SystemExit,
KeyboardInterrupt or GeneratorExit is recorded like any other hook error; hooks cannot change the
record; name conflicts are listed; a diverging model fails its run with the reason."""

from __future__ import annotations

import json

import pytest

from tests.hostile import SMALL, assert_one_line_error, clb, write_plugin

HOOK_RAISES = {
    "run-end-systemexit": ("clbench_run_end(context, record)", "raise SystemExit(0)", "SystemExit"),
    "run-start-systemexit": ("clbench_run_start(context)", "raise SystemExit(3)", "SystemExit"),
    "task-start-keyboardinterrupt": (
        "clbench_task_start(context, task_index)",
        "raise KeyboardInterrupt",
        "KeyboardInterrupt",
    ),
    "evaluation-generatorexit": (
        "clbench_evaluation_done(context, after_task, accuracies)",
        "raise GeneratorExit",
        "GeneratorExit",
    ),
    "epoch-end-valueerror": (
        "clbench_epoch_end(context, task_index, epoch, loss)",
        "raise ValueError('bad')",
        "ValueError",
    ),
    "task-end-escape-codes": (
        "clbench_task_end(context, task_index, train_seconds)",
        "raise RuntimeError('\\x1b[2J\\x1b]0;owned\\x07')",
        "RuntimeError",
    ),
}


@pytest.mark.parametrize("case", list(HOOK_RAISES))
def test_a_raising_hook_is_recorded_and_the_run_completes(tmp_path, case):
    signature, body, kind = HOOK_RAISES[case]
    module = write_plugin(tmp_path / "plug", "bad_hook", f"@hookimpl\ndef {signature}:\n    {body}\n")
    proc = clb(
        "run", *SMALL, "--plugin", module, "--results", "r", "--json", cwd=tmp_path, pythonpath=tmp_path / "plug"
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["status"] == "ok" and record["metrics"]
    assert any(e["plugin"] == module and e["error"].startswith(kind) for e in record["hook_errors"]), record[
        "hook_errors"
    ]
    on_disk = json.loads(next((tmp_path / "r" / "runs").glob("*.json")).read_text())
    assert on_disk["status"] == "ok" and on_disk["hook_errors"]
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr


def test_a_run_end_hook_cannot_change_the_record(tmp_path):
    module = write_plugin(
        tmp_path / "plug",
        "tamper",
        """
        @hookimpl
        def clbench_run_end(context, record):
            record["metrics"]["avg_accuracy"] = 1.0
            record["status"] = "failed"
            record["accuracy_matrix"].clear()
            context.extras["tamper"] = {"saw_status": "ok"}
        """,
    )
    proc = clb(
        "run", *SMALL, "--plugin", module, "--results", "r", "--json", cwd=tmp_path, pythonpath=tmp_path / "plug"
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(next((tmp_path / "r" / "runs").glob("*.json")).read_text())
    assert record["status"] == "ok" and record["metrics"]["avg_accuracy"] < 1.0 and record["accuracy_matrix"]
    assert record["extras"]["tamper"] == {"saw_status": "ok"}  # a plugin's own data goes under its key


@pytest.mark.parametrize(
    "value, expected", [("object()", "not JSON-serialisable"), ("float('nan')", None), ("[float('inf')] * 3", None)]
)
def test_extras_are_kept_strict_json(tmp_path, value, expected):
    module = write_plugin(
        tmp_path / "plug",
        "extras",
        f"""
        @hookimpl
        def clbench_run_start(context):
            context.extras["mine"] = {{"v": {value}}}
        """,
    )
    proc = clb("run", *SMALL, "--plugin", module, "--results", "r", cwd=tmp_path, pythonpath=tmp_path / "plug")
    assert proc.returncode == 0, proc.stderr
    text = next((tmp_path / "r" / "runs").glob("*.json")).read_text()
    record = json.loads(text, parse_constant=lambda token: pytest.fail(f"non-strict JSON token {token}"))
    if expected:
        assert any(expected in e["error"] for e in record["hook_errors"])
    else:
        assert record["extras"]["mine"]["v"] in (None, [None, None, None])


DUPLICATE = """
    class O(Options):
        pass

    @hookimpl
    def clbench_register_models(register):
        register("mlp", lambda options, **kw: None, description="a second mlp", options=O)
    """


def test_a_name_conflict_is_listed_by_plugins_and_refused_by_run(tmp_path):
    module = write_plugin(tmp_path / "plug", "dup_mlp", DUPLICATE)
    listed = clb("plugins", "--plugin", module, cwd=tmp_path, pythonpath=tmp_path / "plug")
    assert listed.returncode == 0, listed.stderr
    assert "conflict" in listed.stdout and "dup_mlp" in listed.stdout and "mlp" in listed.stdout
    as_json = clb("plugins", "--json", "--plugin", module, cwd=tmp_path, pythonpath=tmp_path / "plug")
    entry = next(p for p in json.loads(as_json.stdout) if p["name"] == module)
    assert entry["status"] == "failed" and "conflict" in entry["error"]
    run = clb("run", *SMALL, "--plugin", module, cwd=tmp_path, pythonpath=tmp_path / "plug")
    assert_one_line_error(run, "mlp")


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("raise SystemExit(0)\n", "cannot import plugin"),
        ("raise KeyboardInterrupt\n", "cannot import plugin"),
        ("import this_module_does_not_exist_anywhere\n", "cannot import plugin"),
    ],
)
def test_a_plugin_that_fails_to_import_is_one_line(tmp_path, body, fragment):
    module = write_plugin(tmp_path / "plug", "broken_import", body)
    proc = clb("run", *SMALL, "--plugin", module, "--results", "r", cwd=tmp_path, pythonpath=tmp_path / "plug")
    assert_one_line_error(proc, fragment)
    assert not (tmp_path / "r").exists()


def test_a_registration_hook_raising_systemexit_marks_the_plugin_failed(tmp_path):
    module = write_plugin(
        tmp_path / "plug",
        "bad_register",
        """
        @hookimpl
        def clbench_register_models(register):
            raise SystemExit(1)
        """,
    )
    listed = clb("plugins", "--plugin", module, cwd=tmp_path, pythonpath=tmp_path / "plug")
    assert listed.returncode == 0 and "SystemExit" in listed.stdout, listed.stderr
    run = clb("run", *SMALL, "--plugin", module, "--results", "r", cwd=tmp_path, pythonpath=tmp_path / "plug")
    assert run.returncode == 0, run.stderr  # the other plugins still work


def test_a_plugin_whose_registration_raises_is_dropped_as_a_whole(tmp_path):
    """What it registered before raising is gone, and its lifecycle hooks do not run."""
    module = write_plugin(
        tmp_path / "plug",
        "half_register",
        """
        import torch

        @hookimpl
        def clbench_register_replay(register):
            register("half-replay", lambda options, build: None, description="registered by a plugin that fails")

        @hookimpl
        def clbench_register_models(register):
            register("half-net", lambda options, build: torch.nn.Linear(1, 1), description="registered, then a raise")
            raise RuntimeError("registration broke halfway")

        @hookimpl
        def clbench_run_start(context):
            context.extras["half_register_ran"] = True

        @hookimpl
        def clbench_register_commands(cli):
            @cli.command("half-command")
            def half_command():
                print("never shown")
        """,
    )
    common = {"cwd": tmp_path, "pythonpath": tmp_path / "plug"}
    helped = clb("--plugin", module, "--help", **common)
    assert helped.returncode == 0 and "half-command" not in helped.stdout, helped.stdout + helped.stderr
    assert clb("plugins", **common).returncode == 0  # without it: nothing to drop
    listed = clb("plugins", "--plugin", module, **common)
    assert listed.returncode == 0 and "registration broke halfway" in listed.stdout, listed.stderr
    for section, name in (("--model", "half-net"), ("--replay", "half-replay")):
        refused = clb("run", *SMALL, "--plugin", module, section, name, "--results", "r", **common)
        assert_one_line_error(refused, f"{name!r}")
        assert "half_register" in refused.stderr  # named among the plugins that failed to load
    run = clb("run", *SMALL, "--plugin", module, "--results", "r", "--json", **common)
    assert run.returncode == 0, run.stderr
    record = json.loads(run.stdout)
    assert record["status"] == "ok" and "half_register_ran" not in record["extras"]
    assert module not in record["versions"]["plugins"]


MODEL = """
    import torch

    class O(Options):
        pass

    class Net(torch.nn.Module):
        def __init__(self, d, c):
            super().__init__()
            self.lin = torch.nn.Linear(d, c)

        def forward(self, x):
            {forward}

    def build(options, ctx):
        {build}
        return Net(ctx.input_shape[0], ctx.n_classes)

    @hookimpl
    def clbench_register_models(register):
        register("hostile-net", build, description="a misbehaving model", options=O)
    """


@pytest.mark.parametrize(
    "forward, build, fragment",
    [
        ("return self.lin(x) * float('nan')", "pass", "training loss became nan"),
        ("return self.lin(x) * float('inf')", "pass", "training loss became"),
        ("return self.lin(x)", "raise SystemExit(4)", "SystemExit"),
        ("raise KeyboardInterrupt", "pass", "KeyboardInterrupt"),
    ],
)
def test_a_misbehaving_model_fails_its_run_with_the_reason(tmp_path, forward, build, fragment):
    module = write_plugin(tmp_path / "plug", "hostile_model", MODEL.format(forward=forward, build=build))
    proc = clb(
        "run",
        *SMALL,
        "--model",
        "hostile-net",
        "--plugin",
        module,
        "--results",
        "r",
        cwd=tmp_path,
        pythonpath=tmp_path / "plug",
    )
    assert proc.returncode == 1, proc.stderr
    assert fragment in proc.stderr and "Traceback" not in proc.stderr
    record = json.loads(next((tmp_path / "r" / "runs").glob("*.json")).read_text())
    assert record["status"] == "failed" and fragment in record["error"]


def test_plugin_descriptions_reach_the_terminal_escaped(tmp_path):
    module = write_plugin(
        tmp_path / "plug",
        "shouty",
        """
        class O(Options):
            pass

        @hookimpl
        def clbench_register_models(register):
            register("shouty\\x1b[31m", lambda options, **kw: None, description="\\x1b[2J\\x1b]0;owned\\x07", options=O)
        """,
    )
    proc = clb("list", "models", "--plugin", module, cwd=tmp_path, pythonpath=tmp_path / "plug")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout and "\\x1b[2J" in proc.stdout
