"""Peak memory and time per epoch of the default image-stream runs, against a materialising peer.

Writes made-up MNIST and CIFAR-100 files at the real data sets' sizes (60,000 + 10,000 and
50,000 + 10,000 images, in their own formats; ``clbench_vision.synthetic``) and runs, each in a
fresh process:

- ``permuted-mnist`` with its defaults (20 tasks of all 60,000 images) and the default ``mlp``;
- ``split-cifar100`` with its defaults (20 tasks of 5 classes, task scenario) and ``resnet18-reduced``;

each twice: as clbench runs it (uint8 images, each batch permuted and normalised when drawn) and
as the peer, the same stream with every task's inputs materialised as float tensors up front (what
a stream that stores a float copy per task holds). It prints the peak resident memory of each
process (``ru_maxrss``; the target for permuted-mnist is at most 1 GB), the memory after imports
alone, the training time per epoch, and the ratios clbench / peer.

    python benchmarks/vision_memory.py                 # one epoch per task (time per epoch does not depend on it)
    python benchmarks/vision_memory.py --tasks 4       # the first 4 tasks only (quicker; memory is the same)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = {
    "permuted-mnist": ("mnist", "mlp", 60_000),
    "split-cifar100": ("cifar100", "resnet18-reduced", 50_000),
}


def child(stream: str, model: str, root: str, materialise: bool, tasks: int | None, epochs: int) -> None:
    """Run one configuration in this process and print a JSON line: peak RSS and timings."""
    import torch

    from clbench import hookimpl
    from clbench.config import RunConfig, resolve
    from clbench.harness import execute
    from clbench.inputs import materialize
    from clbench.plugins import make_plugin_host

    imported_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    base = make_plugin_host().registry.get("benchmarks", stream)

    class Peer:
        """Registers the peer: the same stream with every task's inputs materialised up front."""

        @hookimpl
        def clbench_register_benchmarks(self, register):
            def materialised(options, build):
                built = base.factory(options, build)
                for task in built.tasks:
                    task.train_x, task.test_x = materialize(task.train_x), materialize(task.test_x)
                return built

            register(f"materialised-{stream}", materialised, description="peer", options=base.options)

    host = make_plugin_host(objects=[("peer", Peer())])
    cfg = RunConfig(seed=0)
    cfg.set_name("benchmark", f"materialised-{stream}" if materialise else stream)
    cfg.set_name("model", model)
    for s in (
        f"benchmark.root={root}",
        "benchmark.download=false",
        "benchmark.checksum=false",
        f"train.epochs={epochs}",
    ):
        cfg.apply_set(s)
    if tasks is not None:
        cfg.apply_set(f"benchmark.n_tasks={tasks}")
    torch.manual_seed(0)
    t0 = time.perf_counter()
    record = execute(resolve(cfg, host.registry), host, results=None, threads=1).record
    wall = time.perf_counter() - t0
    if record["status"] != "ok":
        raise SystemExit(record.get("error"))
    train_s = record["timings"]["train_s"]
    print(
        json.dumps(
            {
                "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "imported_mb": imported_kb / 1024,
                "epoch_s": sum(train_s) / (len(train_s) * epochs),
                "eval_s": sum(record["timings"]["eval_s"]),
                "wall_s": wall,
                "tasks": len(train_s),
                "avg_accuracy": record["metrics"]["avg_accuracy"],
            }
        )
    )


def measure(stream: str, model: str, root: Path, materialise: bool, tasks: int | None, epochs: int) -> dict:
    """One configuration in a fresh process (its own peak memory)."""
    cmd = [
        sys.executable,
        __file__,
        "--child",
        stream,
        model,
        str(root),
        str(int(materialise)),
        str(tasks or 0),
        str(epochs),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{stream} ({'peer' if materialise else 'clbench'}) failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    """Write the made-up files, run clbench and the peer on both streams, print the table."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        stream, model, root, mat, tasks, epochs = sys.argv[2:8]
        child(stream, model, root, bool(int(mat)), int(tasks) or None, int(epochs))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=None, help="first N tasks only (default: the stream's default)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per task")
    parser.add_argument("--only", choices=sorted(RUNS), default=None, help="one stream only")
    opts = parser.parse_args()
    from clbench_vision.synthetic import write_like

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("stream          model             peak MB  (imports)  peer MB  ratio   s/epoch  peer s/epoch  ratio")
        for stream, (dataset, model, n_train) in RUNS.items():
            if opts.only and stream != opts.only:
                continue
            write_like(root, dataset, n_train, 10_000, seed=0)
            ours = measure(stream, model, root, False, opts.tasks, opts.epochs)
            peer = measure(stream, model, root, True, opts.tasks, opts.epochs)
            print(
                f"{stream:<15} {model:<17} {ours['peak_mb']:7.0f}  ({ours['imported_mb']:5.0f})  "
                f"{peer['peak_mb']:7.0f}  {ours['peak_mb'] / peer['peak_mb']:5.2f}  {ours['epoch_s']:8.2f}  "
                f"{peer['epoch_s']:12.2f}  {ours['epoch_s'] / peer['epoch_s']:5.2f}"
            )
            print(
                f"  tasks {ours['tasks']}, wall {ours['wall_s']:.0f} s (peer {peer['wall_s']:.0f} s), "
                f"evaluation {ours['eval_s']:.0f} s (peer {peer['eval_s']:.0f} s)"
            )


if __name__ == "__main__":
    main()
