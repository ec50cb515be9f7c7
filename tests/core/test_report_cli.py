"""The ``report`` command: click wiring, real runs end to end, one-line user errors, light imports."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from clbench.cli import cli as clbench_cli
from clbench.cli import main
from clbench.config import RunConfig, resolve
from clbench.errors import UserError
from clbench.harness import execute
from clbench.report.command import report_command
from tests.core.test_report_support import PNG_MAGIC, standard_results
from tests.helpers import run_cli, tiny_assignments

SMALL = tiny_assignments()


def test_command_is_named_report_and_documents_its_options():
    assert report_command.name == "report"
    result = CliRunner().invoke(report_command, ["--help"])
    assert result.exit_code == 0
    for option in (
        "--format",
        "--out",
        "--baseline",
        "--metric",
        "--claim",
        "--claim-group",
        "--no-figures",
        "--across-streams",
    ):
        assert option in result.output


def test_real_runs_end_to_end(tmp_path, host):
    results = tmp_path / "results"
    for seed in (0, 1):
        for strategy in (None, "joint"):
            cfg = RunConfig(seed=seed)
            cfg.set_name("strategy", strategy)
            for s in SMALL:
                cfg.apply_set(s)
            assert execute(resolve(cfg, host.registry), host, results=results).record["status"] == "ok"
    result = CliRunner().invoke(report_command, [str(results)])
    assert result.exit_code == 0, result.output
    out = results / "report.md"
    assert result.output.strip() == str(out)
    md = out.read_text(encoding="utf-8")
    rows = [l for l in md.splitlines() if l.startswith("| mlp · none · none |") or l.startswith("| strategy joint |")]
    assert len(rows) >= 2
    assert "**records**: 4 (4 ok, 0 failed)" in md and "**seeds**: 0, 1" in md
    assert "paired, 2 seeds" in md
    assert (results / "report_figures" / "accuracy_matrices.png").read_bytes().startswith(PNG_MAGIC)


def test_options_reach_the_report(tmp_path):
    standard_results(tmp_path)
    out = tmp_path / "r.html"
    result = CliRunner().invoke(
        report_command,
        [
            str(tmp_path),
            "--out",
            str(out),
            "--baseline",
            "meta=maml",
            "--metric",
            "bwt",
            "--claim",
            "bwt=-0.1",
            "--claim-group",
            "mlp",
            "--no-figures",
        ],
    )
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "<h2>Claims</h2>" in page and "Baseline: dnc · maml · prioritized." in page
    assert "data:image/png" not in page


def test_user_errors_reach_click_as_user_error(tmp_path):
    standard_results(tmp_path)
    result = CliRunner().invoke(report_command, [str(tmp_path), "--format", "pdf"])
    assert isinstance(result.exception, UserError) and "bad --format" in str(result.exception)


@pytest.mark.parametrize(
    "args, fragment",
    [
        ([], "no run records found"),
        (["--format", "docx"], "bad --format 'docx'"),
        (["--baseline", "lstm"], "unknown --baseline 'lstm'"),
        (["--claim", "latest_task_accuracy:0.92", "--claim-group", "mlp"], "bad --claim"),
        (["--metric", "accuracy"], "unknown metric 'accuracy'"),
    ],
)
def test_user_errors_are_one_line_exit_2_through_main(tmp_path, monkeypatch, capsys, args, fragment):
    if args:
        standard_results(tmp_path)
    else:
        (tmp_path / "runs").mkdir()
    monkeypatch.setitem(clbench_cli.commands, "report", report_command)
    rc = main(["report", str(tmp_path), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and fragment in err[0] and err[0].startswith("clbench: error:")


def test_importing_the_command_stays_light():
    code = (
        "import sys\nimport clbench.report.command\nimport clbench.cli\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'matplotlib', 'scipy', 'avalanche'})\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


@pytest.mark.skipif("report" not in clbench_cli.commands, reason="clbench report is not registered in clbench.cli yet")
def test_report_through_the_installed_cli(tmp_path):
    standard_results(tmp_path / "results")
    proc = run_cli("report", "--format", "csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "results/report.csv" and (tmp_path / "results" / "report.csv").exists()
    proc = run_cli("report", "--baseline", "nothing-like-this", cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert (
        proc.returncode == 2 and len(lines) == 1 and "unknown --baseline" in lines[0] and "Traceback" not in proc.stderr
    )
    proc = run_cli("report", "empty", cwd=tmp_path)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
