"""Reports over mixed folders: groups split by stream (benchmark options and training settings),
baselines and tests within a stream only, the warning when comparisons across streams are forced,
intervals clipped to a metric's range, and labels (and legends) that tell every group apart."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner
from scipy import stats as sps

from clbench.errors import UserError
from clbench.report import figures as report_figures
from clbench.report.command import generate_report, report_command
from clbench.report.content import CLIP_NOTE, LABEL_NOTE, build_report
from clbench.report.figures import make_figures, wrap_label
from clbench.report.grouping import group_streams
from clbench.report.loading import load_records
from tests.core.test_report_formats import cells, tables
from tests.core.test_report_support import write_group

SHORT = {"benchmark": {"n_tasks": 3}}
LONG = {"benchmark": {"n_tasks": 5}}


def mixed_results(results):
    """Two stream lengths (3 and 5 tasks), each with the plain row and maml + prioritized, seeds 0-2;
    the 5-task stream's baseline is much better than the 3-task one's."""
    write_group(results, {0: [0.5] * 3, 1: [0.6] * 3, 2: [0.7] * 3}, options=SHORT)
    write_group(
        results,
        {0: [0.6] * 3, 1: [0.65] * 3, 2: [0.9] * 3},
        model="dnc",
        meta="maml",
        replay="prioritized",
        options=SHORT,
    )
    write_group(results, {0: [0.9] * 5, 1: [0.92] * 5, 2: [0.97] * 5}, options=LONG)
    write_group(
        results,
        {0: [0.8] * 5, 1: [0.85] * 5, 2: [0.83] * 5},
        model="dnc",
        meta="maml",
        replay="prioritized",
        options=LONG,
    )
    return results


def run_report(results, **kwargs):
    warnings: list[str] = []
    path = generate_report(results, warn=warnings.append, **kwargs)
    return path.read_text(encoding="utf-8"), warnings


def test_two_stream_lengths_give_two_streams_each_with_its_own_baseline(tmp_path):
    rep = build_report(load_records(mixed_results(tmp_path)))
    assert [s.index for s in rep.streams] == [1, 2]
    assert [s.settings["benchmark.n_tasks"] for s in rep.streams] == [3, 5]
    assert [s.differing for s in rep.streams] == [["benchmark.n_tasks=3"], ["benchmark.n_tasks=5"]]
    assert [b.baseline.label for b in rep.blocks] == [
        "mlp · none · none [benchmark.n_tasks=3]",
        "mlp · none · none [benchmark.n_tasks=5]",
    ]
    assert [g.label for g in rep.groups] == [
        "mlp · none · none [benchmark.n_tasks=3]",
        "dnc · maml · prioritized [benchmark.n_tasks=3]",
        "mlp · none · none [benchmark.n_tasks=5]",
        "dnc · maml · prioritized [benchmark.n_tasks=5]",
    ]
    # every test compares a group with the baseline of its own stream, never across
    assert not rep.crossed
    for g in rep.groups:
        base = rep.baseline_of(g)
        assert base is not None and base.stream == g.stream
    long_dnc = rep.groups[3]
    c = rep.comparison(long_dnc, "avg_accuracy")
    expected = sps.ttest_rel([0.8, 0.85, 0.83], [0.9, 0.92, 0.97]).pvalue
    assert c is not None and c.p == pytest.approx(expected)
    assert c.difference < 0  # against the 5-task baseline; against the 3-task one it would be positive
    assert any("2 different streams" in a for a in rep.alerts)


def test_markdown_of_a_mixed_folder_has_a_section_per_stream_and_says_so_first(tmp_path):
    md, warnings = run_report(mixed_results(tmp_path), figures=False)
    assert any("2 different streams" in w for w in warnings)
    top = md.index("## Streams")
    assert md.index("**Warning:**") < top and md.index("**streams**: 2") < top
    assert md.index("model · meta-learner · replay") < top  # how to read a label
    one = md.index("## Stream 1: shifting-linear, benchmark.n\\_tasks=3")
    two = md.index("## Stream 2: shifting-linear, benchmark.n\\_tasks=5")
    assert top < one < two
    results = [t for t in tables(md) if "test" in cells(t[0])]
    assert len(results) == 2
    for block, n_tasks in zip(results, (3, 5)):
        rows = [cells(line) for line in block[2:]]
        assert all(f"n\\_tasks={n_tasks}\\]" in row[0] for row in rows)
        assert rows[0][3] == "baseline" and rows[1][3] != "baseline"
    assert "### Results" in md and "### Differences from the baseline" in md
    assert "across streams (forced)" not in md and "forced across streams" not in md


def test_baseline_spec_is_looked_up_in_each_stream(tmp_path):
    mixed_results(tmp_path)
    rep = build_report(load_records(tmp_path), baseline="meta=maml")
    assert [b.baseline.name for b in rep.blocks] == ["dnc · maml · prioritized"] * 2
    assert [b.baseline.stream for b in rep.blocks] == [1, 2]
    rep = build_report(load_records(tmp_path), baseline="mlp · none · none")  # a name, without the stream
    assert [b.baseline.label for b in rep.blocks] == [
        "mlp · none · none [benchmark.n_tasks=3]",
        "mlp · none · none [benchmark.n_tasks=5]",
    ]


def test_a_stream_without_the_baseline_is_not_tested_and_says_so(tmp_path):
    mixed_results(tmp_path)
    write_group(tmp_path, {0: [0.9] * 3, 1: [0.95] * 3}, strategy="joint", options=SHORT)
    rep = build_report(load_records(tmp_path), baseline="joint")
    first, second = rep.blocks
    assert first.baseline is not None and first.baseline.name == "strategy joint · mlp"
    assert second.baseline is None and "not tested" in second.untested
    assert all(rep.comparison(g, "avg_accuracy") is None for g in second.groups)
    assert any(a.startswith("Stream 2:") and "--baseline 'joint'" in a for a in rep.alerts)
    md, _ = run_report(tmp_path, figures=False, baseline="joint")
    assert "No baseline: no group of this stream matches --baseline 'joint'" in md
    assert "none (no baseline on this stream)" in md
    assert "stream 2: none (not tested)" in md
    with pytest.raises(UserError, match="unknown --baseline 'lstm'"):
        build_report(load_records(tmp_path), baseline="lstm")
    write_group(tmp_path, {0: [0.5] * 5}, model="lstm", options=LONG)
    write_group(tmp_path, {0: [0.5] * 5}, model="lstm", meta="maml", options=LONG)
    with pytest.raises(UserError, match="ambiguous on stream 2"):
        build_report(load_records(tmp_path), baseline="lstm")


def test_forced_comparisons_across_streams_are_made_and_warned_about(tmp_path):
    mixed_results(tmp_path)
    rep = build_report(load_records(tmp_path), across_streams=True)
    assert len(rep.blocks) == 1 and rep.blocks[0].across
    assert rep.baseline.label == "mlp · none · none [benchmark.n_tasks=3]"
    long_plain = next(g for g in rep.groups if g.label == "mlp · none · none [benchmark.n_tasks=5]")
    assert long_plain.key in rep.crossed and rep.comparison(long_plain, "avg_accuracy") is not None
    assert len(rep.crossed) == 2  # both 5-task groups; the 3-task dnc is on the baseline's stream
    assert any("forced (--across-streams)" in a for a in rep.alerts)
    md, warnings = run_report(tmp_path, figures=False, across_streams=True)
    assert any("forced" in w for w in warnings)
    assert md.index("**Warning:** comparisons across streams were forced") < md.index("## Streams")
    assert "across streams (forced)" in md and "forced across streams" in md
    text = generate_report(tmp_path, fmt="csv", out=tmp_path / "r.csv", across_streams=True, warn=lambda _: None)
    rows = list(csv.DictReader(io.StringIO(text.read_text())))
    crossed = {r["label"] for r in rows if r["across_streams"] == "true"}
    assert crossed == {"mlp · none · none [benchmark.n_tasks=5]", "dnc · maml · prioritized [benchmark.n_tasks=5]"}
    assert {r["stream"] for r in rows} == {"1", "2"}
    # through the command line, too
    result = CliRunner().invoke(
        report_command, [str(tmp_path), "--across-streams", "--no-figures", "--out", str(tmp_path / "c.md")]
    )
    assert result.exit_code == 0, result.output
    assert "comparisons across streams were forced" in (tmp_path / "c.md").read_text()


def test_intervals_of_bounded_metrics_are_clipped_and_the_report_says_so(tmp_path):
    # two seeds: t(0.975, 1) = 12.7 makes the raw interval reach far above 1 and below 0
    write_group(tmp_path, {0: [0.99] * 3, 1: [0.8] * 3})
    write_group(tmp_path, {0: [0.5] * 3, 1: [0.6] * 3, 2: [0.7] * 3}, model="dnc")
    rep = build_report(load_records(tmp_path), baseline="mlp")
    s = rep.summary(rep.baseline, "avg_accuracy")
    assert s.raw_high > 1 and s.raw_low < 0 and s.clipped
    assert (s.low, s.high) == (0.0, 1.0)
    other = rep.summary(rep.groups[1], "avg_accuracy")
    assert not other.clipped and other.high < 1
    bwt = rep.summary(rep.baseline, "bwt")
    assert bwt.low >= -1 and bwt.high <= 1
    md, _ = run_report(tmp_path, baseline="mlp")
    row = next(cells(line) for t in tables(md) for line in t if line.startswith("| mlp"))
    assert row[2] == "0.895 \\[0.000, 1.000\\]"
    assert "0.600 ± 0.248" in md  # an interval inside the range keeps its usual form
    assert CLIP_NOTE.split(":")[0].replace("[", "\\[").replace("]", "\\]") in md
    assert "clipped to it (accuracies lie in \\[0, 1\\]" in md
    text = generate_report(tmp_path, fmt="csv", out=tmp_path / "r.csv", baseline="mlp", warn=lambda _: None)
    rows = list(csv.DictReader(io.StringIO(text.read_text())))
    for r in rows:
        if r["metric"] in ("avg_accuracy", "latest_task_accuracy", "earliest_task_accuracy") and r["ci_high"]:
            assert 0.0 <= float(r["ci_low"]) and float(r["ci_high"]) <= 1.0
    clipped = {r["metric"] for r in rows if r["ci_clipped"] == "true"}
    assert "avg_accuracy" in clipped


def test_no_clip_note_when_nothing_was_clipped(tmp_path):
    write_group(tmp_path, {0: [0.5] * 3, 1: [0.6] * 3, 2: [0.7] * 3})
    md, _ = run_report(tmp_path, figures=False)
    assert "clipped" not in md


def capture_axes(monkeypatch):
    """Record, for each figure the report draws, its file name's axes: y-limits and legend texts."""
    seen: list[dict] = []
    original = report_figures.png_bytes

    def recording(fig):
        legends = [leg for leg in [*fig.legends, *(ax.get_legend() for ax in fig.axes)] if leg is not None]
        seen.append(
            {
                "ylim": [ax.get_ylim() for ax in fig.axes],
                "legend": [t.get_text() for leg in legends for t in leg.get_texts()],
                "titles": [ax.get_title() for ax in fig.axes],
            }
        )
        return original(fig)

    monkeypatch.setattr(report_figures, "png_bytes", recording)
    return seen


def test_bars_of_accuracies_stay_within_zero_and_one(tmp_path, monkeypatch):
    write_group(tmp_path, {0: [0.99] * 3, 1: [0.93] * 3})
    write_group(tmp_path, {0: [0.02] * 3, 1: [0.2] * 3}, model="dnc")
    rep = build_report(load_records(tmp_path), baseline="mlp")
    seen = capture_axes(monkeypatch)
    figures = make_figures(rep)
    bars = [f for f in figures if f.name == "metric_bars.png"]
    assert len(bars) == 1 and "clipped" in bars[0].caption
    (bottom, top) = seen[[f.name for f in figures].index("metric_bars.png")]["ylim"][0]
    assert bottom >= 0.0 and top <= 1.03


def clip_results(results):
    """Two groups that differ only in train.clip, with long labels (model options differ too)."""
    long_options = {"model": {"hidden_sizes": [256, 256, 256], "activation": "gelu", "dropout": 0.125}}
    for clip in (None, 0.5):
        write_group(results, {0: [0.5] * 3, 1: [0.6] * 3}, train={"clip": clip})
        write_group(results, {0: [0.6] * 3, 1: [0.65] * 3}, train={"clip": clip}, options=long_options)
    return results


def test_groups_that_differ_only_in_train_clip_are_told_apart(tmp_path, monkeypatch):
    clip_results(tmp_path)
    streams, groups, _ = group_streams(load_records(tmp_path).records)
    assert [s.differing for s in streams] == [["train.clip=null"], ["train.clip=0.5"]]
    labels = [g.label for g in groups]
    assert len(set(labels)) == 4
    assert "mlp · none · none (model.hidden_sizes=[128,128]) [train.clip=0.5]" in labels
    long = "mlp · none · none (model.activation=gelu, model.dropout=0.125, model.hidden_sizes=[256,256,256])"
    assert {f"{long} [train.clip=null]", f"{long} [train.clip=0.5]"} <= set(labels)
    md, _ = run_report(tmp_path, figures=False)
    rows = [cells(line)[0] for t in tables(md) if "test" in cells(t[0]) for line in t[2:]]
    assert len(rows) == 4 and len(set(rows)) == 4
    assert sum("train.clip=0.5" in r for r in rows) == 2
    # the legends (one figure for both streams when forced) show each whole label, wrapped, not cut
    rep = build_report(load_records(tmp_path), across_streams=True)
    seen = capture_axes(monkeypatch)
    figures = make_figures(rep)
    names = [f.name for f in figures]
    for name in ("metric_bars.png", "accuracy_along_stream.png"):
        legend = [text.replace("\n", " ") for text in seen[names.index(name)]["legend"]]
        assert sorted(legend) == sorted(g.label for g in rep.groups), name
    titles = [t.replace("\n", " ") for t in seen[names.index("accuracy_matrices.png")]["titles"]]
    for g in rep.groups:
        assert any(t.startswith(g.label) for t in titles)


def test_per_stream_figures_carry_the_stream_in_name_and_title(tmp_path, monkeypatch):
    clip_results(tmp_path)
    rep = build_report(load_records(tmp_path))
    figures = make_figures(rep)
    names = [f.name for f in figures]
    assert {"metric_bars_1.png", "metric_bars_2.png", "accuracy_along_stream_1.png"} <= set(names)
    bars = {f.name: f for f in figures}
    assert bars["metric_bars_2.png"].title == "Main metrics — Stream 2: shifting-linear, train.clip=0.5"
    md, _ = run_report(tmp_path)
    assert "metric_bars_2.png" in md and (tmp_path / "report_figures" / "metric_bars_2.png").is_file()
    run_report(tmp_path)  # the folder it wrote is recognised and replaced


def test_wrap_label_keeps_the_end_of_very_long_labels():
    label = "mlp · none · none (" + ", ".join(f"model.option_{i}={i}" for i in range(40)) + ") [train.clip=0.5]"
    wrapped = wrap_label(label)
    lines = wrapped.split("\n")
    assert len(lines) <= 4 and all(len(line) <= 60 for line in lines)
    assert wrapped.replace("\n", " ").endswith("[train.clip=0.5]") and "…" in wrapped
    assert wrap_label("a $b$ c") == r"a \$b\$ c"


def test_streams_of_different_benchmarks_name_the_benchmark_not_every_option(tmp_path):
    write_group(tmp_path, {0: [0.5] * 3, 1: [0.6] * 3})
    other = {"benchmark": {"angle_min": 0.0}}
    for seed in (0, 1):
        recs = write_group(tmp_path, {seed: [0.4] * 3}, options=other)
        for path in recs:  # rename the benchmark in the written records (the helper writes shifting-linear)
            data = json.loads(path.read_text())
            data["config"]["benchmark"] = {"name": "rotated-digits", "options": {"n_tasks": 3, "angle_min": 0.0}}
            path.write_text(json.dumps(data))
    streams, groups, _ = group_streams(load_records(tmp_path).records)
    assert [s.differing for s in streams] == [["benchmark=rotated-digits"], ["benchmark=shifting-linear"]]
    assert [s.title for s in streams] == ["Stream 1: rotated-digits", "Stream 2: shifting-linear"]
    assert {g.label for g in groups} == {
        "mlp · none · none [benchmark=rotated-digits]",
        "mlp · none · none [benchmark=shifting-linear]",
    }


def test_label_order_is_explained_in_every_format_with_prose(tmp_path):
    mixed_results(tmp_path)
    for fmt in ("md", "html", "latex"):
        text = generate_report(tmp_path, fmt=fmt, out=tmp_path / f"r.{fmt}", figures=False, warn=lambda _: None)
        body = text.read_text()
        assert "meta-learner" in body and "strategy NAME" in body and "Avalanche" in body, fmt
    assert "model · meta-learner · replay" in LABEL_NOTE


def test_a_sweep_variants_label_names_its_group(tmp_path):
    """Records a variant labelled are named by that label; a label two configurations share keeps the
    components beside it, so the names stay unique; unlabelled groups keep the components."""
    from tests.core.test_report_support import config, matrix_with_final_row, record, write

    def labelled(label, finals, **kwargs):
        for seed, final in finals.items():
            rec = record(config(seed=seed, **kwargs), matrix=matrix_with_final_row(final))
            if label is not None:
                rec["label"] = label
            write(tmp_path, rec)

    labelled("recipe", {0: [0.7] * 3, 1: [0.8] * 3}, model="dnc", meta="maml", replay="prioritized")
    labelled("ablation", {0: [0.6] * 3, 1: [0.6] * 3}, model="dnc", meta="maml")
    labelled("ablation", {0: [0.5] * 3, 1: [0.55] * 3}, model="dnc", replay="prioritized")
    labelled(None, {0: [0.4] * 3, 1: [0.45] * 3})
    rep = build_report(load_records(tmp_path), baseline="recipe")
    names = sorted(g.label for g in rep.groups)
    assert names == [
        "ablation (dnc · maml · none)",
        "ablation (dnc · none · prioritized)",
        "mlp · none · none",
        "recipe",
    ]
    assert rep.baseline.label == "recipe"
    assert "Runs that a sweep's variant labelled are named by that label" in LABEL_NOTE
