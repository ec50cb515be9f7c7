"""End-to-end command-line tests, each in a subprocess."""

import json
import shutil
import sys

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the backport clbench depends on there
    import tomli as tomllib

from tests.helpers import EXAMPLE_PLUGIN, SMALL, run_cli


def _one_line_error(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("args", [["--help"], ["list"], ["list", "models", "--json"], ["plugins"], ["run", "--help"]])
def test_light_commands_import_neither_torch_nor_avalanche(args, tmp_path):
    code = (
        f"import sys\nfrom clbench.cli import main\nrc = main({args!r})\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'avalanche', 'ray'))\n"
        "print('HEAVY', heavy, file=sys.stderr)\nsys.exit(rc)\n"
    )
    import subprocess

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stderr


def test_version():
    proc = run_cli("--version")
    assert proc.returncode == 0 and "clbench, version" in proc.stdout


def test_list_shows_components_and_options():
    proc = run_cli("list")
    assert proc.returncode == 0
    assert "shifting-linear" in proc.stdout and "mlp" in proc.stdout and "joint" in proc.stdout
    assert "model.hidden_sizes=[128, 128]" in proc.stdout
    data = json.loads(run_cli("list", "models", "--json").stdout)
    mlp = next(m for m in data["models"] if m["name"] == "mlp")
    assert mlp["plugin"] == "basic" and mlp["available"]
    assert {o["name"] for o in mlp["options"]} == {"hidden_sizes", "activation", "dropout"}


def test_list_covers_the_train_settings():
    from clbench.config import TrainConfig

    proc = run_cli("list")
    assert "train settings (--set train.KEY=VALUE" in proc.stdout and "train.lr=0.001  (float)" in proc.stdout
    (train,) = json.loads(run_cli("list", "train", "--json").stdout)["train"]
    assert [o["name"] for o in train["options"]] == list(TrainConfig.model_fields)
    assert next(o for o in train["options"] if o["name"] == "clip")["default"] is None


def test_run_writes_a_record_and_show_reads_it(cli, tmp_path):
    proc = cli("run", *SMALL, "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    assert "avg_accuracy" in proc.stdout and "record: results/runs/" in proc.stdout
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal
    records = list((tmp_path / "results" / "runs").glob("*.json"))
    assert len(records) == 1
    run_id = records[0].stem
    shown = cli("show", run_id[:6])
    assert shown.returncode == 0 and run_id in shown.stdout and "accuracy matrix" in shown.stdout
    as_json = json.loads(cli("show", run_id, "--json").stdout)
    assert as_json["run_id"] == run_id and as_json["seed"] == 3


def test_run_json_prints_the_record(cli):
    proc = cli("run", *SMALL, "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["status"] == "ok" and len(record["accuracy_matrix"]) == 3


def test_same_command_twice_same_matrix(cli, tmp_path):
    a = json.loads(cli("run", *SMALL, "--seed", "3", "--json", "--results", "a").stdout)
    b = json.loads(cli("run", *SMALL, "--seed", "3", "--json", "--results", "b").stdout)
    assert a["run_id"] == b["run_id"]
    assert a["accuracy_matrix"] == b["accuracy_matrix"]


def test_config_file_and_flags(cli, tmp_path):
    (tmp_path / "exp.toml").write_text(
        'seed = 2\n[benchmark]\nn_tasks = 2\ntrain_size = 64\ntest_size = 32\n[train]\nepochs = 1\n[model]\nname = "mlp"\nhidden_sizes = [16]\n'
    )
    record = json.loads(cli("run", "--config", "exp.toml", "--seed", "5", "--json").stdout)
    assert record["seed"] == 5  # the flag wins over the file
    assert record["config"]["model"]["options"]["hidden_sizes"] == [16]
    assert len(record["accuracy_matrix"]) == 2


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["run", "--model", "mpl"], ["unknown model 'mpl'", "did you mean 'mlp'"]),
        (["run", "--benchmark", "shifting"], ["unknown benchmark", "shifting-linear"]),
        (["run", "--set", "model.hidden_sizes=wide"], ["model.hidden_sizes", "allowed: list[int]"]),
        (["run", "--set", "train.epochs=-1"], ["train.epochs", "greater than or equal to 1"]),
        (
            ["run", "--set", "model.depth=3"],
            ["unknown option model.depth", "allowed: hidden_sizes, activation, dropout"],
        ),
        (["run", "--set", "modelhidden=3"], ["SECTION.KEY=VALUE", "benchmark, model, meta, replay, strategy, train"]),
        (["run", "--strategy", "joint", "--replay", "fifo"], ["own training loop"]),
        (["run", "--seed", "x"], ["'x' is not a valid integer"]),
        (["run", "--bogus"], ["No such option"]),
        (["show", "0123456789abcdef"], ["no record for run id"]),
        (["show", "zz"], ["bad run id"]),
        (["list", "gizmos"], ["'gizmos' is not one of"]),
        (["--plugin", "no_such_module_xyz", "list"], ["cannot import plugin 'no_such_module_xyz'"]),
    ],
)
def test_user_errors_are_one_line_exit_2(cli, tmp_path, args, fragments):
    proc = cli(*args)
    _one_line_error(proc, *fragments)
    assert not (tmp_path / "results").exists()  # nothing written


def test_malformed_toml(cli, tmp_path):
    (tmp_path / "bad.toml").write_text("[model\nname = 'mlp'")
    _one_line_error(cli("run", "--config", "bad.toml"), "not valid TOML")
    (tmp_path / "unknown.toml").write_text("[modle]\nname = 'mlp'")
    _one_line_error(cli("run", "--config", "unknown.toml"), "unknown key 'modle'", "allowed: seed, benchmark")
    _one_line_error(cli("run", "--config", "missing.toml"), "does not exist")


def test_results_path_that_is_a_file_is_refused_and_kept(cli, tmp_path):
    (tmp_path / "taken").write_text("precious")
    _one_line_error(cli("run", *SMALL, "--results", "taken"), "is a file")
    assert (tmp_path / "taken").read_text() == "precious"


def test_a_failing_run_exits_1_and_records_the_reason(cli, tmp_path):
    plugin = tmp_path / "nan_plugin.py"
    plugin.write_text(
        "from clbench import hookimpl\n"
        "def build(options, ctx):\n"
        "    import torch\n"
        "    class M(torch.nn.Module):\n"
        "        def __init__(self):\n"
        "            super().__init__()\n"
        "            self.w = torch.nn.Parameter(torch.zeros(1))\n"
        "        def forward(self, x):\n"
        "            raise ValueError('broken forward')\n"
        "    return M()\n"
        "@hookimpl\n"
        "def clbench_register_models(register):\n"
        "    register('broken', build, description='always fails')\n"
    )
    proc = cli("--plugin", "nan_plugin", "run", *SMALL, "--model", "broken", env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 1
    assert "failed: ValueError: broken forward" in proc.stderr and "Traceback" not in proc.stderr
    (record,) = (tmp_path / "results" / "runs").glob("*.json")
    data = json.loads(record.read_text())
    assert data["status"] == "failed" and data["error"] == "ValueError: broken forward"


def test_example_plugin_with_plugin_flag(cli):
    env = {"PYTHONPATH": str(EXAMPLE_PLUGIN)}
    assert "example.linear" not in cli("list", "models").stdout
    listed = cli("--plugin", "clbench_example", "list", "models", env=env)
    assert "example.linear" in listed.stdout
    proc = cli(
        "run",
        "--plugin",
        "clbench_example",
        "--model",
        "example.linear",
        *SMALL,
        "--set",
        "train.epochs=20",
        "--json",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["config"]["model"] == {"name": "example.linear", "options": {"bias": True}}
    init = sum(record["init_accuracy"]) / 3
    assert record["metrics"]["learning_accuracy"] > init + 0.2  # it learns


def _install_as_distribution(site, package_dir, pyproject):
    """Lay the example plugin out as pip would: the package plus a dist-info with its entry points."""
    meta = tomllib.loads(pyproject.read_text())["project"]
    shutil.copytree(package_dir, site / package_dir.name)
    dist = site / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n")
    lines = ["[clbench]"] + [f"{k} = {v}" for k, v in meta["entry-points"]["clbench"].items()]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")


def test_example_plugin_found_through_its_entry_point(cli, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _install_as_distribution(site, EXAMPLE_PLUGIN / "clbench_example", EXAMPLE_PLUGIN / "pyproject.toml")
    env = {"PYTHONPATH": str(site)}
    plugins = json.loads(cli("plugins", "--json", env=env).stdout)
    example = next(p for p in plugins if p["name"] == "example")
    assert example["status"] == "ok" and example["version"] == "0.1.0"
    assert example["distribution"] == "clbench-example-plugin"
    assert "clbench_register_models" in example["hooks"]
    proc = cli("run", "--model", "example.linear", *SMALL, env=env)
    assert proc.returncode == 0, proc.stderr
    blocked = cli("run", "--model", "example.linear", *SMALL, env={**env, "CLBENCH_DISABLE_PLUGINS": "example"})
    _one_line_error(blocked, "unknown model 'example.linear'")


def test_broken_plugin_is_listed_and_does_not_stop_runs(cli, tmp_path):
    site = tmp_path / "site"
    (site / "broken_plugin_pkg").mkdir(parents=True)
    (site / "broken_plugin_pkg" / "__init__.py").write_text("raise ImportError('needs libfoo')\n")
    dist = site / "broken_plugin_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[clbench]\nbroken = broken_plugin_pkg\n")
    env = {"PYTHONPATH": str(site)}
    listed = cli("plugins", env=env)
    assert listed.returncode == 0
    assert "broken" in listed.stdout and "failed" in listed.stdout and "ImportError: needs libfoo" in listed.stdout
    assert cli("run", *SMALL, env=env).returncode == 0
    err = _one_line_error(cli("run", "--model", "fancy", env=env), "unknown model 'fancy'")
    assert "plugins that failed to load:" in err and "broken" in err.split("failed to load:")[1]
