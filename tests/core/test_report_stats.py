"""Report internals on synthetic records with known values: loading, grouping, labels, intervals, tests."""

from __future__ import annotations

import math
import random
import warnings

import pytest
from scipy import stats as sps

from clbench.errors import UserError
from clbench.report.baseline import select_group
from clbench.report.content import build_report, parse_claims
from clbench.report.grouping import group_records
from clbench.report.loading import load_records
from clbench.report.stats import PAIRED, WELCH, Summary, compare, mean_matrix
from tests.core.test_report_support import (
    config,
    matrix_with_final_row,
    record,
    standard_results,
    write,
    write_group,
)


def build(results, **kwargs):
    return build_report(load_records(results), **kwargs)


def test_three_seeds_give_mean_and_student_t_interval(tmp_path):
    rep = build(standard_results(tmp_path))
    base = rep.baseline
    assert base.label == "mlp · none · none" and base.seeds == [0, 1, 2]
    s = rep.summary(base, "avg_accuracy")
    assert s.n == 3 and s.mean == pytest.approx(0.6)
    assert s.half_width == pytest.approx(0.2484, abs=1e-4)
    assert s.half_width == pytest.approx(sps.t.ppf(0.975, 2) * 0.1 / math.sqrt(3))
    assert (s.low, s.high) == pytest.approx((0.6 - s.half_width, 0.6 + s.half_width))


def test_one_seed_has_no_interval():
    s = Summary({4: 0.8})
    assert s.n == 1 and s.mean == 0.8 and s.half_width is None and s.low is None and s.contains(0.8) is None


def test_paired_welch_and_no_test_match_scipy():
    base = {0: 0.5, 1: 0.6, 2: 0.7}
    other = {0: 0.7, 1: 0.75, 2: 0.9}
    c = compare(base, other)
    assert c.test == PAIRED and c.n == 3
    assert c.p == pytest.approx(sps.ttest_rel([0.7, 0.75, 0.9], [0.5, 0.6, 0.7]).pvalue)
    disjoint = {5: 0.7, 6: 0.75, 7: 0.9}
    c = compare(base, disjoint)
    assert c.test == WELCH
    assert c.p == pytest.approx(sps.ttest_ind([0.7, 0.75, 0.9], [0.5, 0.6, 0.7], equal_var=False).pvalue)
    # one shared seed is not enough to pair: Welch over all seeds
    c = compare(base, {2: 0.9, 8: 0.8})
    assert c.test == WELCH
    c = compare(base, {9: 0.8})
    assert c.test is None and c.p is None and not c.significant
    # no variance in the differences: scipy's answer (nan for none, 0 for a constant shift), noted
    c = compare(base, dict(base))
    assert c.test == PAIRED and c.p is None and c.note == "no variance"
    c = compare({0: 0.5, 1: 0.25, 2: 0.75}, {0: 0.625, 1: 0.375, 2: 0.875})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = sps.ttest_rel([0.625, 0.375, 0.875], [0.5, 0.25, 0.75]).pvalue
    assert c.test == PAIRED and c.p == expected
    assert c.note == "no variance"


def test_report_tests_each_row_against_the_baseline(tmp_path):
    rep = build(standard_results(tmp_path))
    other = rep.groups[1]
    assert other.label == "dnc · maml · prioritized"
    c = rep.comparison(other, "avg_accuracy")
    a = [rep.summary(other, "avg_accuracy").values[s] for s in (0, 1, 2)]
    assert c.p == pytest.approx(sps.ttest_rel(a, [0.5, 0.6, 0.7]).pvalue)
    assert rep.comparison(rep.baseline, "avg_accuracy") is None
    assert rep.main_metrics == ["avg_accuracy", "latest_task_accuracy", "earliest_task_accuracy"]


def test_groups_ignore_seed_and_labels_name_what_differs(tmp_path):
    write_group(tmp_path, {0: [0.5] * 3, 1: [0.6] * 3})
    write_group(
        tmp_path, {0: [0.5] * 3}, model="dnc", meta="maml", replay="prioritized", options={"meta": {"inner_steps": 1}}
    )
    write_group(
        tmp_path,
        {0: [0.5] * 3, 3: [0.5] * 3},
        model="dnc",
        meta="maml",
        replay="prioritized",
        options={"meta": {"inner_steps": 3}},
    )
    write_group(tmp_path, {0: [0.9] * 3}, strategy="avalanche.ewc")
    groups, _ = group_records(load_records(tmp_path).records)
    labels = [g.label for g in groups]
    assert labels == [
        "dnc · maml · prioritized (meta.inner_steps=1)",
        "dnc · maml · prioritized (meta.inner_steps=3)",
        "mlp · none · none",
        "strategy avalanche.ewc · mlp",
    ]
    assert [g.seeds for g in groups] == [[0], [0, 3], [0, 1], [0]]
    # stable: the same records in another order give the same groups, labels and order
    recs = load_records(tmp_path).records
    random.Random(1).shuffle(recs)
    again, _ = group_records(recs)
    assert [(g.key, g.label) for g in again] == [(g.key, g.label) for g in groups]


def test_train_options_that_differ_appear_in_every_label(tmp_path):
    # training settings are part of the stream: they go in square brackets, after the options
    write_group(tmp_path, {0: [0.5] * 3}, train={"lr": 0.01})
    write_group(tmp_path, {0: [0.5] * 3}, train={"lr": 0.001})
    write_group(tmp_path, {0: [0.5] * 3}, strategy="joint", train={"lr": 0.001})
    labels = {g.label for g in group_records(load_records(tmp_path).records)[0]}
    assert labels == {
        "mlp · none · none [train.lr=0.001]",
        "mlp · none · none [train.lr=0.01]",
        "strategy joint [train.lr=0.001]",
    }


def test_default_baseline_is_plain_mlp_and_comes_first(tmp_path):
    standard_results(tmp_path)
    write_group(tmp_path, {0: [0.9] * 3, 1: [0.95] * 3}, strategy="joint")
    rep = build(tmp_path)
    assert rep.baseline.label == "mlp · none · none" and rep.groups[0] is rep.baseline
    # model names differ across groups, so the strategy's label names its model too
    assert [g.label for g in rep.groups[1:]] == ["dnc · maml · prioritized", "strategy joint · mlp"]


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("strategy joint · mlp", "strategy joint · mlp"),
        ("joint", "strategy joint · mlp"),
        ("*maml*", "dnc · maml · prioritized"),
        ("meta=maml", "dnc · maml · prioritized"),
        ("meta=none,replay=none", "mlp · none · none"),  # joint has meta none too: the plainer row wins
        ("strategy=none,model=mlp", "mlp · none · none"),
        ("model.hidden_sizes=[128,128],strategy=joint", "strategy joint · mlp"),
        ("model.hidden_sizes=[128, 128], strategy=joint", "strategy joint · mlp"),
    ],
)
def test_baseline_specs(tmp_path, spec, expected):
    standard_results(tmp_path)
    write_group(tmp_path, {0: [0.9] * 3, 1: [0.95] * 3}, strategy="joint")
    rep = build(tmp_path, baseline=spec)
    assert rep.baseline.label == expected and rep.groups[0].label == expected


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("lstm", "unknown --baseline 'lstm'"),
        ("meta=reptile", "no group matches"),
        ("·", "ambiguous"),
        ("model=mlp", "ambiguous"),
    ],
)
def test_bad_baseline_is_a_user_error(tmp_path, spec, fragment):
    standard_results(tmp_path)
    write_group(tmp_path, {0: [0.9] * 3}, strategy="joint", model="mlp")
    write_group(tmp_path, {0: [0.9] * 3}, options={"model": {"hidden_sizes": [64]}})
    with pytest.raises(UserError, match=fragment.replace("·", ".")) as err:
        build(tmp_path, baseline=spec)
    assert "\n" not in str(err.value)


def test_failed_runs_are_counted_listed_and_excluded(tmp_path):
    standard_results(tmp_path)
    write(tmp_path, record(config(seed=3), status="failed", error="RuntimeError: boom\ntraceback line"))
    write(tmp_path, record(config(seed=0, model="lstm"), status="failed", error="ValueError: bad shape"))
    rep = build(tmp_path)
    assert rep.n_records == 8 and rep.n_failed == 2
    assert rep.baseline.seeds == [0, 1, 2] and rep.summary(rep.baseline, "avg_accuracy").n == 3
    assert sorted((f.seed, f.error) for f in rep.failures) == [(0, "ValueError: bad shape"), (3, "RuntimeError: boom")]
    assert all(g.has_results for g in rep.groups) and len(rep.groups) == 2


def test_partial_and_unreadable_files_are_skipped(tmp_path):
    standard_results(tmp_path)
    (tmp_path / "runs" / "cut.json").write_text('{"run_id": "x", "status": "ok", "con')
    (tmp_path / "runs" / "other.json").write_text("[1, 2]")
    running = record(config(seed=7), matrix=matrix_with_final_row([0.5] * 3))
    running["status"] = "running"
    write(tmp_path, running)
    loaded = load_records(tmp_path)
    assert len(loaded.records) == 6
    reasons = {p.name: why for p, why in loaded.skipped}
    assert set(reasons) == {"cut.json", "other.json", f"{running['run_id']}.json"}
    assert "partial" in reasons["cut.json"] and "running" in reasons[f"{running['run_id']}.json"]


def test_no_records_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_records(tmp_path / "nowhere")
    with pytest.raises(UserError, match="no run records"):
        load_records(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "bad.json").write_text("{")
    with pytest.raises(UserError, match="no readable run records"):
        load_records(tmp_path)


def test_none_metrics_are_skipped_and_adapted_metrics_reported(tmp_path):
    for seed, bwt in ((0, None), (1, -0.1), (2, -0.2)):
        rec = record(
            config(seed=seed),
            matrix=matrix_with_final_row([0.5] * 3),
            metrics={"bwt": bwt},
            adapted=matrix_with_final_row([0.8] * 3),
        )
        write(tmp_path, rec)
    rep = build(tmp_path)
    s = rep.summary(rep.baseline, "bwt")
    assert s.n == 2 and s.mean == pytest.approx(-0.15) and s.seeds == [1, 2]
    assert "adapted.avg_accuracy" in rep.metrics
    assert rep.summary(rep.baseline, "adapted.avg_accuracy").mean == pytest.approx(0.8)


def test_mean_matrix_averages_seeds():
    recs = [
        {"accuracy_matrix": [[0.2, 0.4], [0.6, 0.8]]},
        {"accuracy_matrix": [[0.4, 0.6], [0.8, 1.0]]},
        {"accuracy_matrix": [[1.0]]},
    ]
    mean, n = mean_matrix(recs)
    assert n == 2 and [pytest.approx(row) for row in mean] == [[0.3, 0.5], [0.7, 0.9]]


def test_claims_are_checked_against_the_interval(tmp_path):
    standard_results(tmp_path)
    rep = build(tmp_path, claims=["avg_accuracy=0.62", "earliest_task_accuracy=95%"], claim_group="dnc")
    assert rep.claim_group.label == "dnc · maml · prioritized"
    by = {c.metric: c for c in rep.claims}
    assert by["earliest_task_accuracy"].claimed == pytest.approx(0.95)
    s = rep.summary(rep.claim_group, "avg_accuracy")
    assert by["avg_accuracy"].measured is s
    assert by["avg_accuracy"].inside == (s.low <= 0.62 <= s.high)
    rep = build(tmp_path, claims=["avg_accuracy=0.6"], claim_group="mlp")
    assert rep.claims[0].inside is True
    rep = build(tmp_path, claims=["avg_accuracy=0.99"], claim_group="mlp")
    assert rep.claims[0].inside is False


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"claims": ["avg_accuracy"], "claim_group": "mlp"}, "bad --claim 'avg_accuracy'"),
        ({"claims": ["avg_accuracy=high"], "claim_group": "mlp"}, "is not a number"),
        ({"claims": ["accuracy=0.9"], "claim_group": "mlp"}, "unknown metric 'accuracy'"),
        ({"claims": ["avg_accuracy=0.9"]}, "--claim needs --claim-group"),
        ({"claim_group": "mlp"}, "--claim-group needs"),
        ({"metrics": ["avg_acc"]}, "did you mean 'avg_accuracy'"),
    ],
)
def test_claim_and_metric_mistakes_are_user_errors(tmp_path, kwargs, fragment):
    standard_results(tmp_path)
    with pytest.raises(UserError, match=fragment.replace("(", r"\(")):
        build(tmp_path, **kwargs)


def test_parse_claims_accepts_fractions_and_percentages():
    claims = parse_claims(["latest_task_accuracy=0.92", "earliest_task_accuracy = 88%"])
    assert [(c.metric, c.claimed) for c in claims] == [
        ("latest_task_accuracy", 0.92),
        ("earliest_task_accuracy", pytest.approx(0.88)),
    ]


def test_chosen_metrics_are_tested(tmp_path):
    standard_results(tmp_path)
    rep = build(tmp_path, metrics=["bwt", "forgetting"])
    assert rep.main_metrics == ["bwt", "forgetting"]
    assert rep.comparison(rep.groups[1], "forgetting") is not None
    assert rep.comparison(rep.groups[1], "avg_accuracy") is None


def test_select_group_prefers_exact_label(tmp_path):
    write_group(tmp_path, {0: [0.5] * 3}, train={"lr": 0.01})
    write_group(tmp_path, {0: [0.5] * 3}, train={"lr": 0.001})
    groups, _ = group_records(load_records(tmp_path).records)
    assert select_group(groups, "mlp · none · none [train.lr=0.01]").label.endswith("0.01]")
    assert select_group(groups, "train.lr=0.001").label.endswith("0.001]")
