"""Effect of each replay buffer on forgetting: default stream, mlp, several seeds (clbench issue 3).

For every replay strategy (and ``none``) and every seed, one default run through the harness; prints
the mean average and earliest-task accuracy per strategy, the gain over no replay, and whether the
gain reaches the issue's bar (earliest +0.20, average +0.15). Runs go one after another; records
are written under ``--results`` (existing complete records of the same config are reused).

Run: ``python benchmarks/replay_effect.py [--seeds 0,1,2] [--meta none] [--set train.epochs=5 ...]``
"""

from __future__ import annotations

import argparse
import statistics
import time

from clbench.config import RunConfig, resolve
from clbench.harness import execute
from clbench.plugins import make_plugin_host
from clbench.records import read_record, record_path

REPLAYS = ["none", "fifo", "reservoir", "prioritized", "class-balanced"]
BAR = {"earliest_task_accuracy": 0.20, "avg_accuracy": 0.15}


def one_run(host, meta: str, replay: str, seed: int, sets: list[str], results: str) -> dict:
    """The record of one run (read from ``results`` if already complete)."""
    config = RunConfig(seed=seed)
    config.set_name("meta", meta)
    config.set_name("replay", replay)
    for assignment in sets:
        config.apply_set(assignment)
    resolved = resolve(config, host.registry)
    existing = read_record(record_path(results, resolved.run_id))
    if existing is not None and existing.get("status") == "ok":
        return existing
    return execute(resolved, host, results=results).record


def main() -> None:
    """Run the grid and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--meta", default="none", help="meta-learner for every run")
    parser.add_argument("--replays", default=",".join(REPLAYS), help="comma-separated replay names")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="SECTION.KEY=VALUE, as for clbench run")
    parser.add_argument("--results", default="results", help="results folder")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    replays = args.replays.split(",")
    host = make_plugin_host()
    rows: dict[str, list[dict]] = {}
    for replay in replays:
        for seed in seeds:
            t0 = time.perf_counter()
            record = one_run(host, args.meta, replay, seed, args.sets, args.results)
            if record["status"] != "ok":
                raise SystemExit(f"{replay} seed {seed} failed: {record['error']}")
            rows.setdefault(replay, []).append(record["metrics"])
            print(
                f"  {replay:15s} seed {seed}: avg {record['metrics']['avg_accuracy']:.4f} "
                f"earliest {record['metrics']['earliest_task_accuracy']:.4f}  ({time.perf_counter() - t0:.1f} s)"
            )
    means = {r: {k: statistics.mean(m[k] for m in ms) for k in ms[0]} for r, ms in rows.items()}
    base = means.get("none")
    print(f"\nmeta={args.meta}, seeds {seeds}, means:")
    print(f"{'replay':15s} {'avg':>7s} {'earliest':>9s} {'latest':>7s} {'d avg':>7s} {'d earliest':>11s}  bar")
    for replay, m in means.items():
        line = (
            f"{replay:15s} {m['avg_accuracy']:7.4f} {m['earliest_task_accuracy']:9.4f} {m['latest_task_accuracy']:7.4f}"
        )
        if base is not None and replay != "none":
            d_avg = m["avg_accuracy"] - base["avg_accuracy"]
            d_early = m["earliest_task_accuracy"] - base["earliest_task_accuracy"]
            ok = d_avg >= BAR["avg_accuracy"] and d_early >= BAR["earliest_task_accuracy"]
            line += f" {d_avg:+7.4f} {d_early:+11.4f}  {'met' if ok else 'MISSED'}"
        print(line)


if __name__ == "__main__":
    main()
