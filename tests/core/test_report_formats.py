"""Report outputs on real files: markdown, HTML, CSV, LaTeX, figures, and safe writing."""

from __future__ import annotations

import base64
import csv
import io
import re

import pytest
from scipy import stats as sps

from clbench.errors import UserError
from clbench.report.command import generate_report
from tests.core.test_report_support import (
    PNG_MAGIC,
    config,
    matrix_with_final_row,
    record,
    standard_results,
    write,
    write_group,
)

EVIL = "<script>alert('x')</script>|evil_name"


def report(results, **kwargs):
    warnings: list[str] = []
    path = generate_report(results, warn=warnings.append, **kwargs)
    return path, path.read_text(encoding="utf-8"), warnings


def cells(line: str) -> list[str]:
    """Cells of a markdown table row, splitting on pipes that are not backslash-escaped."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def tables(md: str) -> list[list[str]]:
    blocks, current = [], []
    for line in md.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    return blocks + ([current] if current else [])


def test_markdown_report_has_table_figures_and_provenance(tmp_path):
    standard_results(tmp_path)
    path, md, warnings = report(tmp_path)
    assert path == tmp_path / "report.md" and warnings == []
    rows = {cells(line)[0]: cells(line) for line in tables(md)[0][2:]}  # the results table
    assert cells(tables(md)[0][0])[:4] == ["group", "n", "avg\\_accuracy", "p"]
    base = rows["mlp · none · none"]
    assert base[1:4] == ["3", "0.600 ± 0.248", "baseline"]
    other = rows["dnc · maml · prioritized"]
    expected = sps.ttest_rel(
        [(0.7 + 0.8 + 0.9) / 3, (0.75 + 0.8 + 0.9) / 3, (0.9 + 0.9 + 0.95) / 3], [0.5, 0.6, 0.7]
    ).pvalue
    shown = other[3]
    assert shown.startswith(f"{expected:.3f}") and shown.endswith("\\*") == (expected < 0.05)
    for block in tables(md):  # every row has as many cells as the header: GitHub renders it
        assert len({len(cells(line)) for line in block}) == 1, block
        assert re.fullmatch(r"\|(---:?\|)+", block[1])
    assert "paired" in md and "Welch" in md and "ttest\\_rel" in md
    assert "**seeds**: 0, 1, 2" in md and "torch 2.x-test" in md
    assert "| avg\\_accuracy | mean\\_j R\\[T-1\\]\\[j\\] |" in md  # the conventions
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert {l.split("/")[-1] for l in links} == {
        "accuracy_matrices.png",
        "accuracy_along_stream.png",
        "metric_bars.png",
    }
    for link in links:
        assert link.startswith("report_figures/")
        assert (tmp_path / link).read_bytes().startswith(PNG_MAGIC)
    assert "<img" not in md and "<table" not in md


def test_the_stream_figure_adds_the_adapted_curves_when_records_have_them(tmp_path):
    """Runs evaluated after test-time adaptation: the along-the-stream figure draws the adapted
    curves beside the plain ones and its caption says so; without them it stays as it was."""
    for seed in range(2):
        write(tmp_path / "plain", record(config(seed=seed), matrix=matrix_with_final_row([0.5, 0.6, 0.7])))
        rec = record(
            config(seed=seed), matrix=matrix_with_final_row([0.5, 0.6, 0.7]), adapted=matrix_with_final_row([0.9] * 3)
        )
        write(tmp_path / "adapted", rec)
    captions, pngs = {}, {}
    for name in ("plain", "adapted"):
        _, md, _ = report(tmp_path / name)
        section = md.split("### Accuracy along the stream", 1)[1].split("###", 1)[0]
        captions[name] = section
        pngs[name] = (tmp_path / name / "report_figures" / "accuracy_along_stream.png").read_bytes()
    assert "Thin lines with crosses" in captions["adapted"] and "Thin lines" not in captions["plain"]
    assert pngs["adapted"] != pngs["plain"] and all(p.startswith(PNG_MAGIC) for p in pngs.values())


def test_markdown_escapes_record_strings_and_lists_failures(tmp_path):
    standard_results(tmp_path)
    write_group(tmp_path, {0: [0.4] * 3}, model=EVIL)
    write(tmp_path, record(config(seed=5), status="failed", error="RuntimeError: a | b <b>bold</b>"))
    _, md, _ = report(tmp_path, figures=False)
    assert "<script>" not in md and "\\<script\\>" in md
    for block in tables(md):
        assert len({len(cells(line)) for line in block}) == 1, block
    assert "## Failed runs" in md and "RuntimeError: a \\| b \\<b\\>bold\\</b\\>" in md
    assert "1 failed" in md
    n1 = [cells(line) for t in tables(md) for line in t if "evil" in line][0]
    assert n1[1] == "1" and n1[2] == "0.400 (n=1)" and n1[3].startswith("— (too few seeds)")


def test_html_is_self_contained_and_escaped(tmp_path):
    standard_results(tmp_path)
    write_group(tmp_path, {0: [0.4] * 3, 1: [0.5] * 3}, model=EVIL)
    path, page, _ = report(tmp_path, fmt="html")
    assert path == tmp_path / "report.html"
    assert "<script" not in page.lower() and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", page, flags=re.I)
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs)
    assert "url(" not in page and "@import" not in page
    for ref in refs:
        assert base64.b64decode(ref.split(",", 1)[1]).startswith(PNG_MAGIC)
    assert not (tmp_path / "report_figures").exists()
    assert "0.600 ± 0.248" in page and "<table>" in page


def test_csv_parses_with_one_row_per_group_and_metric(tmp_path):
    standard_results(tmp_path)
    path, text, _ = report(tmp_path, fmt="csv", claims=["avg_accuracy=0.6"], claim_group="mlp")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 2 * 7
    base = {r["metric"]: r for r in rows if r["baseline"] == "true"}
    avg = base["avg_accuracy"]
    assert float(avg["mean"]) == pytest.approx(0.6) and float(avg["ci_half_width"]) == pytest.approx(0.2484, abs=1e-4)
    assert avg["n"] == "3" and avg["seeds"] == "0;1;2" and avg["p_value"] == ""
    assert avg["claimed"] == "0.6" and avg["claim_inside"] == "true"
    other = {r["metric"]: r for r in rows if r["baseline"] == "false"}
    assert other["avg_accuracy"]["test"] == "paired t-test" and 0 < float(other["avg_accuracy"]["p_value"]) < 1
    assert other["bwt"]["p_value"] == "" and other["bwt"]["main"] == "false"


def test_latex_escapes_special_characters(tmp_path):
    standard_results(tmp_path)
    write_group(tmp_path, {0: [0.4] * 3}, model="my_model&co 100% #1 {x} ~^\\")
    path, tex, _ = report(tmp_path, fmt="latex")
    assert path.suffix == ".tex"
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"avg\_accuracy" in tex
    assert r"my\_model\&co 100\% \#1 \{x\} \textasciitilde{}\textasciicircum{}\textbackslash{}" in tex
    body = [l for l in tex.splitlines() if not l.startswith("%")]
    assert not any(re.search(r"(?<!\\)[_%#]", l) for l in body if "\\caption" not in l)
    assert r"0.600 $\pm$ 0.248" in tex


def test_memory_traces_are_drawn_and_bad_ones_noted(tmp_path):
    traces = {
        "after_task": 2,
        "tasks": {
            str(t): {
                "read": [[0.1 * t, 0.2], [0.3, 0.4], [0.6, 0.0]],
                "write": [[0.5, 0.5], [0.0, 0.1], [0.2, 0.2]],
                "usage": [[0.9, 1.0], [0.1, 0.2], [0.3, 0.3]],
            }
            for t in range(6)
        },
    }
    write_group(tmp_path, {0: [0.5] * 3, 1: [0.6] * 3})
    write_group(tmp_path, {0: [0.6] * 3, 1: [0.7] * 3}, model="dnc", extras={"memory_traces": traces})
    write_group(
        tmp_path, {0: [0.6] * 3}, model="ntm", extras={"memory_traces": {"tasks": {"0": {"read": [[1], [1, 2]]}}}}
    )
    _, md, _ = report(tmp_path)
    dnc_index = 1  # baseline first, then dnc, then ntm
    link = f"report_figures/memory_{dnc_index}.png"
    assert link in md and (tmp_path / link).read_bytes().startswith(PNG_MAGIC)
    assert "memory_2.png" not in md
    assert "not drawn" in md and "not a slots x steps matrix" in md


def test_figure_folder_and_outputs_are_replaced_safely(tmp_path):
    results = standard_results(tmp_path / "results")
    out = tmp_path / "out" / "cmp.md"
    report(results, out=out)
    figs = tmp_path / "out" / "cmp_figures"
    out.write_text("# clbench report\n\nan XYZZY report")  # a report it wrote: replaced
    report(results, out=out)
    assert "XYZZY" not in out.read_text() and (figs / "metric_bars.png").exists()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files left
    for mine in ("notes.txt", "holiday_photo.png"):  # a file the report did not write: refused, kept
        (figs / mine).write_bytes(PNG_MAGIC)
        with pytest.raises(UserError, match="refusing to replace"):
            report(results, out=out)
        assert (figs / mine).read_bytes() == PNG_MAGIC
        (figs / mine).unlink()
    out.write_text("my own notes")  # the output file itself, when it is not a report: refused, kept
    with pytest.raises(UserError, match="refusing to overwrite"):
        report(results, out=out)
    assert out.read_text() == "my own notes"
    # the records are never touched
    assert len(list((results / "runs").glob("*.json"))) == 6


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"fmt": "pdf"}, "bad --format 'pdf'"),
        ({"out": "."}, "is a folder"),
    ],
)
def test_bad_output_choices_are_user_errors(tmp_path, kwargs, fragment):
    standard_results(tmp_path)
    with pytest.raises(UserError, match=fragment):
        generate_report(tmp_path, **kwargs)


def test_out_inside_records_folder_is_refused_and_format_follows_extension(tmp_path):
    standard_results(tmp_path)
    with pytest.raises(UserError, match="inside the records folder"):
        generate_report(tmp_path, out=tmp_path / "runs" / "r.md")
    path, text, _ = report(tmp_path, out=tmp_path / "table.csv")
    assert path.name == "table.csv" and text.startswith("group,label,config,")
    path, text, _ = report(tmp_path, out=tmp_path / "t.tex")
    assert r"\toprule" in text


def test_claims_section_in_markdown(tmp_path):
    standard_results(tmp_path)
    _, md, _ = report(
        tmp_path, figures=False, claims=["latest_task_accuracy=0.92", "earliest_task_accuracy=0.88"], claim_group="maml"
    )
    assert "## Claims" in md and "dnc · maml · prioritized" in md
    claim_rows = {cells(l)[0]: cells(l) for t in tables(md) if "claimed" in t[0] for l in t[2:]}
    latest = claim_rows["latest\\_task\\_accuracy"]
    assert latest[1] == "0.920" and latest[5] in ("yes", "no")
    assert re.fullmatch(r"\\\[\d\.\d{3}, \d\.\d{3}\\\]", latest[3])


def test_skipped_files_warn_and_are_listed(tmp_path):
    standard_results(tmp_path)
    (tmp_path / "runs" / "broken.json").write_text("{not json")
    _, md, warnings = report(tmp_path, figures=False)
    assert len(warnings) == 1 and "broken.json" in warnings[0]
    assert "## Skipped files" in md and "1 file(s) skipped" in md


def test_one_task_runs_report_without_bwt(tmp_path):
    for s in (0, 1):
        write(tmp_path, record(config(seed=s), matrix=[[0.9 + 0.01 * s]]))
    path, md, _ = report(tmp_path)
    assert "0.905 ± " in md
    bwt_col = tables(md)[1][0]
    assert "bwt" in bwt_col and (path.parent / "report_figures" / "accuracy_matrices.png").exists()


def test_matrix_figure_with_failed_only_group(tmp_path):
    standard_results(tmp_path)
    write(tmp_path, record(config(seed=0, model="lstm"), status="failed", error="boom"))
    write(tmp_path, record(config(seed=1, model="lstm"), matrix=matrix_with_final_row([0.3] * 3)))
    _, md, _ = report(tmp_path)
    assert "mlp · none · none" in md and "lstm · none · none" in md and "failed seeds" in md


def test_about_paragraphs_come_first_in_every_format_but_csv(tmp_path):
    standard_results(tmp_path)
    about = "A reduced smoke experiment: 10 tasks, 1 epoch."
    for fmt in ("md", "html", "latex", "csv"):
        text = generate_report(
            tmp_path, fmt=fmt, out=tmp_path / f"r.{fmt}", figures=False, about=[about], warn=lambda line: None
        ).read_text()
        if fmt == "csv":
            assert "smoke" not in text
        else:
            assert "smoke experiment" in text and text.index("smoke") < text.index("records")
