"""Hostile and careless input: command-line values, config files, record files and report strings.

Each case asserts one of: one line ``clbench: error: ...`` with exit status 2 and nothing written;
or the documented safe outcome (record kept or replaced by a complete one, a warning line naming
the file). Plugin misbehaviour and signals are in ``test_hostile_plugins.py`` and
``test_hostile_signals.py``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import unicodedata

import pytest

from clbench.records import is_complete, load_record
from tests.helpers import complete_record
from tests.hostile import SMALL, assert_one_line_error, clb, snapshot

# --- command-line values: one line, exit 2, nothing written ------------------------------------------

CLI_VALUES = [
    (["run", "--set", "train.lr=Infinity"], "finite"),
    (["run", "--set", "train.lr=1e999"], "finite"),
    (["run", "--set", "train.lr=NaN"], "finite"),
    (["run", "--set", "train.lr=-Infinity"], "finite"),
    (["run", "--set", "train.lr=true"], "boolean is not a number"),
    (["run", "--set", "train.epochs=true"], "boolean is not a number"),
    (["run", "--set", "benchmark.noise=Infinity"], "finite"),
    (["run", "--set", "benchmark.noise=NaN"], "finite"),
    (["run", "--set", "model.hidden_sizes=[true,8]"], "boolean is not a number"),
    (["run", "--set", "model.hidden_sizes=[1e999]"], "model.hidden_sizes"),
    (["run", "--set", "train.clip=Infinity"], "finite"),
    (["run", "--meta", "maml", "--set", "meta.inner_lr=Infinity"], "finite"),
    (["run", "--replay", "fifo", "--set", "replay.capacity=true"], "boolean is not a number"),
    (["run", "--benchmark", "rotated-digits", "--set", "benchmark.angle_max=NaN"], "finite"),
    (["run", "--seed", "99999999999999999999"], "--seed"),
    (["run", "--seed", "-1"], "--seed"),
    (["run", "--seed", "4294967296"], "--seed"),
    (["run", "--seed", "4611686018427387904"], "--seed"),
    (["run", "--results", ""], "--results"),
    (["run", "--results", "   "], "--results"),
    (["sweep", "--seeds", "0-99999999999"], "bad seeds"),
    (["sweep", "--seeds", "0-2000000", "--dry-run"], "at most"),
    (["sweep", "--seeds", "5-1"], "bad seeds"),
    (["sweep", "--seeds", "abc"], "bad seeds"),
    (["sweep", "--seeds", "4294967296"], "bad seeds"),
    (["sweep", "--seeds", "-3"], "bad seeds"),
    (["sweep", "--grid", "train.lr=0.1,Infinity"], "finite"),
    (["sweep", "--grid", "train.epochs=1,true"], "boolean is not a number"),
    (
        [
            "sweep",
            "--grid",
            "model.hidden_sizes=[8],[8],[8]",
            "--grid",
            "train.lr=" + ",".join(["0.1"] * 200),
            "--seeds",
            "0-99",
        ],
        "at most",
    ),
    (["sweep", "--results", ""], "--results"),
    (["show", "../../../etc/passwd"], "not a path"),
    (["show", "/etc/passwd"], "not a path"),
    (["show", "./runs/x"], "not a path"),
    (["show", "0123456789abcdef0"], "bad run id"),
    (["show", "\x1b[2J\x1b]0;owned\x07"], "bad run id"),
    (["traces", "../x"], "not a path"),
    (["sweep", "--executor", "ray", "--ray-address", "127.0.0.1:1"], "cannot reach the Ray cluster"),
    (["sweep", "--executor", "ray", "--ray-address", "somewhere:port"], "bad --ray-address"),
    (["report", "--format", "pdf"], "bad --format"),
    (["run", "--set", "model.hidden_sizes=[[[[1]]]]"], "model.hidden_sizes"),
]


@pytest.mark.parametrize("args, fragment", CLI_VALUES, ids=[" ".join(a)[:60] for a, _ in CLI_VALUES])
def test_bad_command_line_values_are_one_line_errors(tmp_path, args, fragment):
    if args[0] == "report":
        (tmp_path / "results" / "runs").mkdir(parents=True)
        (tmp_path / "results" / "runs" / "0123456789abcdef.json").write_text(json.dumps(complete_record()))
    before = snapshot(tmp_path)
    proc = clb(*args, cwd=tmp_path, timeout=60)
    line = assert_one_line_error(proc, fragment)
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr, line
    assert snapshot(tmp_path) == before


# --- config and experiment files ----------------------------------------------------------------------

CONFIGS = [
    ("run", "[train]\nlr = inf\n", "finite"),
    ("run", "[train]\nlr = nan\n", "finite"),
    ("run", "[train]\nlr = 1e999\n", "finite"),
    ("run", "[benchmark]\nnoise = -inf\n", "finite"),
    ("run", "seed = -1\n", "seed must be"),
    ("run", "seed = 1.5\n", "seed must be"),
    ("run", "seed = true\n", "seed must be"),
    ("run", "seed = 99999999999999\n", "seed must be"),
    ("run", "[model]\nname = 5\n", "name must be a string"),
    ("run", "nonsense = 1\n", "unknown key"),
    ("run", "x = " + "[" * 3000 + "]" * 3000 + "\n", "config file"),
    ("run", b"\xff\xfe\x00garbage", "cannot read config file"),
    ("run", "[train\n", "not valid TOML"),
    ("run", "[train]\nepochs = true\n", "boolean is not a number"),
    ("sweep", 'seeds = "0-99999999999"\n', "bad seeds"),
    ("sweep", "seeds = [true]\n", "bad seeds"),
    ("sweep", "[[variants]]\nmodel = { name = 'mlp', hidden_sizes = [nan] }\n", "finite"),
    ("sweep", "[grid]\n'train.lr' = [0.1, inf]\n", "finite"),
    ("sweep", "variants = 3\n", "variants must be"),
]


@pytest.mark.parametrize("command, content, fragment", CONFIGS, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(CONFIGS)])
def test_bad_config_files_are_one_line_errors(tmp_path, command, content, fragment):
    path = tmp_path / "exp.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = snapshot(tmp_path)
    proc = clb(command, "--config", str(path), cwd=tmp_path, timeout=60)
    assert_one_line_error(proc, fragment)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_a_config_path_that_is_not_a_file_is_refused_at_once(tmp_path, kind):
    if kind == "fifo":
        path = tmp_path / "exp.toml"
        os.mkfifo(path)
    elif kind == "device":
        path = "/dev/zero"
    else:
        path = tmp_path / "folder.toml"
        path.mkdir()
    before = snapshot(tmp_path)
    proc = clb("run", "--config", str(path), cwd=tmp_path, timeout=20)  # a FIFO must not block
    assert_one_line_error(proc)
    assert snapshot(tmp_path) == before


# --- record files in a results folder ---------------------------------------------------------------

RID = "00000000000000aa"
GOOD = "00000000000000bb"

RECORDS = [
    ("nested", "[" * 200_000 + "]" * 200_000, "nested too deeply"),
    (
        "hollow",
        json.dumps({"schema_version": 1, "run_id": RID, "status": "ok", "config": {}, "seed": 0}),
        "accuracy matrix",
    ),
    ("future-version", json.dumps(complete_record(RID, schema_version=999)), "newer"),
    (
        "no-version",
        json.dumps({k: v for k, v in complete_record(RID).items() if k != "schema_version"}),
        "schema_version",
    ),
    ("bad-status", json.dumps(complete_record(RID, status="weird")), "unknown status"),
    ("path-run-id", json.dumps(complete_record("../../etc/passwd")), "bad run_id"),
    ("truncated", json.dumps(complete_record(RID))[:40], "not valid JSON"),
    ("empty", "", "not valid JSON"),
    ("not-utf8", b"\xff\xfe\xfa", "unreadable"),
    ("array", "[1, 2, 3]", "not a JSON object"),
    ("string-metric", json.dumps(complete_record(RID, metrics={"avg_accuracy": "high"})), "not a number"),
    ("bool-seed", json.dumps(complete_record(RID, seed=True)), "bad seed"),
    ("fifo", None, "not a regular file"),
]
RECORD_IDS = [name for name, _, _ in RECORDS]


def _results_with(tmp_path, content):
    runs = tmp_path / "results" / "runs"
    runs.mkdir(parents=True)
    (runs / f"{GOOD}.json").write_text(json.dumps(complete_record(GOOD)))
    path = runs / f"{RID}.json"
    if content is None:
        os.mkfifo(path)
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return tmp_path / "results", path


@pytest.mark.parametrize("name, content, reason", RECORDS, ids=RECORD_IDS)
def test_show_refuses_an_unusable_record_in_one_line(tmp_path, name, content, reason):
    results, _ = _results_with(tmp_path, content)
    before = snapshot(tmp_path)
    proc = clb("show", RID, "--results", str(results), cwd=tmp_path, timeout=20)
    assert_one_line_error(proc, "not a usable clbench record", reason)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name, content, reason", RECORDS, ids=RECORD_IDS)
def test_report_skips_an_unusable_record_with_one_warning(tmp_path, name, content, reason):
    results, path = _results_with(tmp_path, content)
    out = tmp_path / "r.csv"
    proc = clb("report", str(results), "--out", str(out), cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("clbench: warning: skipped")]
    assert len(warnings) == 1 and path.name in warnings[0] and reason in warnings[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert out.read_text().count("\n") >= 2  # the good record made it into the report


@pytest.mark.parametrize("name, content, reason", RECORDS, ids=RECORD_IDS)
def test_an_unusable_record_is_never_counted_complete(tmp_path, name, content, reason):
    _, path = _results_with(tmp_path, content)
    assert not is_complete(path)
    record, why = load_record(path)
    assert record is None and reason in why
    assert is_complete(path.with_name(f"{GOOD}.json"))


@pytest.mark.parametrize("name", ["nested", "hollow", "future-version", "fifo"])
def test_a_run_replaces_its_own_unusable_record(tmp_path, name):
    content = {n: c for n, c, _ in RECORDS}[name]
    probe = clb("run", *SMALL, "--results", str(tmp_path / "probe"), "--json", cwd=tmp_path)
    run_id = json.loads(probe.stdout)["run_id"]
    runs = tmp_path / "results" / "runs"
    runs.mkdir(parents=True)
    path = runs / f"{run_id}.json"
    if content is None:
        os.mkfifo(path)
    else:
        path.write_text(content.replace(RID, run_id) if isinstance(content, str) else content)
    proc = clb("run", *SMALL, "--results", str(tmp_path / "results"), cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert is_complete(path)


def test_sweep_resume_redoes_a_hollow_or_future_record_and_skips_a_complete_one(tmp_path):
    plan = clb("sweep", *SMALL, "--seeds", "0-2", "--dry-run", cwd=tmp_path)
    ids = [line.split()[0] for line in plan.stdout.splitlines()[:3]]
    runs = tmp_path / "results" / "runs"
    runs.mkdir(parents=True)
    (runs / f"{ids[0]}.json").write_text(
        json.dumps({"schema_version": 1, "run_id": ids[0], "status": "ok", "config": {}, "seed": 0})
    )
    (runs / f"{ids[1]}.json").write_text(json.dumps(complete_record(ids[1], schema_version=999)))
    (runs / f"{ids[2]}.json").write_text(json.dumps(complete_record(ids[2], marker="kept")))
    proc = clb(
        "sweep",
        *SMALL,
        "--seeds",
        "0-2",
        "--workers",
        "1",
        "-q",
        "--results",
        str(tmp_path / "results"),
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "1 already complete, 2 to run" in proc.stderr
    assert all(is_complete(runs / f"{i}.json") for i in ids)
    assert json.loads((runs / f"{ids[2]}.json").read_text())["marker"] == "kept"


def test_show_escapes_control_characters_from_a_record(tmp_path):
    runs = tmp_path / "results" / "runs"
    runs.mkdir(parents=True)
    nasty = "boom\x1b[2J\x1b[H\x1b]0;owned\x07\r\u202eevil"
    record = {**complete_record(RID), "status": "failed", "error": nasty, "accuracy_matrix": []}
    record["config"]["model"]["name"] = "mlp\x1b[31m"
    (runs / f"{RID}.json").write_text(json.dumps(record))
    proc = clb("show", RID, "--results", str(tmp_path / "results"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for bad in ("\x1b", "\x07", "\r", "\u202e"):
        assert bad not in proc.stdout + proc.stderr
    assert "\\x1b[2J" in proc.stdout and "\\u202eevil" in proc.stdout


def test_show_reads_a_legacy_record_with_nan_tokens(tmp_path):
    runs = tmp_path / "results" / "runs"
    runs.mkdir(parents=True)
    text = json.dumps(complete_record(RID, metrics={"avg_accuracy": 0.5, "bwt": float("nan")}))
    assert "NaN" in text
    (runs / f"{RID}.json").write_text(text)
    proc = clb("show", RID, "--results", str(tmp_path / "results"), cwd=tmp_path)
    assert proc.returncode == 0 and "n/a" in proc.stdout, proc.stderr


# --- strings from records in every report format -------------------------------------------------------

NASTY = [
    "ok\r\\input{/etc/hostname}\r",
    "x\n\\immediate\\write18{touch /tmp/pwned}\n",
    "\x1b[2J\x1b]0;title\x07",
    "<script>alert(1)</script>",
    '=HYPERLINK("http://example.invalid","x")',
    "\u202eevil\u2028next",
    "| a | `b` $c$ %d #e &f ~g ^h",
]


def _nasty_results(tmp_path, text):
    from tests.core.test_report_support import standard_results

    results = standard_results(tmp_path / "results")
    for path in sorted((results / "runs").glob("*.json"))[:3]:
        record = json.loads(path.read_text())
        record["label"] = text
        record["versions"] = {**record.get("versions", {}), "torch": text}
        path.write_text(json.dumps(record))
    return results


@pytest.mark.parametrize("fmt", ["md", "html", "csv", "latex"])
@pytest.mark.parametrize("text", NASTY, ids=[f"s{i}" for i in range(len(NASTY))])
def test_record_strings_are_inert_in_every_report_format(tmp_path, fmt, text):
    from clbench.report.command import generate_report

    results = _nasty_results(tmp_path, text)
    path = generate_report(
        results, fmt=fmt, out=tmp_path / f"r.{fmt}", figures=False, warn=lambda line: None, about=[text]
    )
    body = path.read_text(encoding="utf-8")
    bad = [c for c in body if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
    assert not bad, bad
    if fmt == "latex":
        for line in body.splitlines():
            stripped = line.lstrip()
            assert not stripped.startswith(("\\input", "\\immediate", "\\write")), line
        assert "\\input{" not in body and "\\write18{" not in body
    if fmt in ("html", "md"):
        assert "<script>" not in body
    if fmt == "csv":
        for row in csv.reader(io.StringIO(body)):
            for cell in row:
                if cell[:1] in ("=", "+", "@", "-"):
                    float(cell)  # only numbers may start like a formula


@pytest.mark.parametrize("name, content, reason", RECORDS[:4] + RECORDS[-1:], ids=RECORD_IDS[:4] + RECORD_IDS[-1:])
def test_traces_refuses_an_unusable_record_in_one_line(tmp_path, name, content, reason):
    results, _ = _results_with(tmp_path, content)
    proc = clb("traces", RID, "--results", str(results), cwd=tmp_path, timeout=20)
    assert_one_line_error(proc, "not a usable clbench record", reason)


@pytest.mark.parametrize(
    "traces, fragment",
    [
        ({"tasks": {"0": {"read": "not a matrix"}}}, "malformed"),
        ({"tasks": {"x": {"read": [[0.1]]}}}, "malformed"),
        ({"tasks": []}, "malformed"),
        ("corrupt", "malformed"),
    ],
)
def test_traces_says_what_is_wrong_with_corrupt_traces(tmp_path, traces, fragment):
    runs = tmp_path / "results" / "runs"
    runs.mkdir(parents=True)
    (runs / f"{RID}.json").write_text(json.dumps(complete_record(RID, extras={"memory_traces": traces})))
    proc = clb("traces", RID, "--results", str(tmp_path / "results"), cwd=tmp_path, timeout=60)
    assert_one_line_error(proc, fragment)
    assert "no memory traces" not in proc.stderr


def test_a_metric_some_seeds_lack_says_over_how_many_seeds_it_was_averaged(tmp_path):
    from clbench.report.command import generate_report

    runs = tmp_path / "runs"
    runs.mkdir()
    for seed in range(3):
        metrics = {"avg_accuracy": 0.5 + 0.1 * seed, "bwt": None if seed == 0 else -0.1}
        record = complete_record(f"{seed:016x}", seed=seed, metrics=metrics)
        (runs / f"{seed:016x}.json").write_text(json.dumps(record))
    body = generate_report(tmp_path, fmt="md", out=tmp_path / "r.md", figures=False, warn=lambda line: None).read_text()
    row = next(line for line in body.splitlines() if line.startswith("| mlp") and "(n=2 of 3)" in line)
    assert "0.600" in row  # avg_accuracy over all three seeds, bwt over the two that have it


def test_records_and_json_output_are_strict_json(tmp_path):
    proc = clb("run", *SMALL, "--set", "benchmark.n_tasks=1", "--json", "--results", "r", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr

    def refuse(token):
        raise AssertionError(f"non-strict JSON token {token}")

    printed = json.loads(proc.stdout, parse_constant=refuse)
    on_disk = json.loads(next((tmp_path / "r" / "runs").glob("*.json")).read_text(), parse_constant=refuse)
    assert printed["metrics"] == on_disk["metrics"] and on_disk["metrics"]["bwt"] is None


@pytest.mark.slow
def test_a_ray_cluster_that_needs_a_token_is_one_line_naming_the_variable(tmp_path):
    import shutil
    import socket
    import subprocess
    import time

    ray = shutil.which("ray")
    if ray is None:
        pytest.skip("Ray is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "0123456789abcdef0123456789abcdef"
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    started = subprocess.run(
        [ray, "start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if started.returncode != 0:
        pytest.skip(f"could not start a Ray head with token authentication: {started.stderr[-300:]}")
    try:
        t0 = time.monotonic()
        proc = clb(
            "sweep",
            *SMALL,
            "--executor",
            "ray",
            "--ray-address",
            f"127.0.0.1:{port}",
            "--results",
            "r",
            cwd=tmp_path,
            timeout=120,
            RAY_AUTH_MODE="",
            RAY_AUTH_TOKEN="",
        )
        assert_one_line_error(proc, "requires authentication", "RAY_AUTH_TOKEN")
        assert time.monotonic() - t0 < 40 and not (tmp_path / "r").exists()
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, env=env, timeout=120)
