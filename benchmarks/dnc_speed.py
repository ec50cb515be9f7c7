"""Time one DNC training step (forward, backward, Adam) of clbench's DNC against PyPI ``dnc`` 1.1.0.

Configuration (issue 4): batch 32, 10 steps, input 20, memory 128 x 64, 4 read heads, 1 write
head, LSTM controller of 64 units, loss = mean squared output. Both models are timed in the same
process, interleaved step by step, so load from other processes hits both alike; the script prints
the load average, wall-clock and process-CPU medians, and the ratios.

``dnc`` 1.1.0 (ixaxaar/pytorch-dnc) is a speed peer only, never a clbench dependency. Install it
into a throwaway directory without its dependencies (they would pull flann, and must not pull
another torch), then point this script at it::

    python -m pip install --no-deps --target /tmp/dncpeer dnc==1.1.0
    PYTHONPATH=.:plugins python benchmarks/dnc_speed.py --peer-path /tmp/dncpeer

The peer's package ``__init__`` imports its sparse variants, which need ``pyflann``; the script
stubs that module (the dense DNC never uses it). Differences to keep in mind: the peer never feeds
read vectors back to its controller, starts each sequence from a random controller state, uses a
2-layer controller LSTM by default (``--peer-layers``; 1 here, like clbench's), and its output
layer maps to ``input_size``. Per step it does the same memory work (N x N link, allocation sort,
4 reads). On a busy 2-core machine, 2 threads suffer from OpenMP threads spinning for a core:
``--omp-passive`` makes idle OpenMP threads sleep instead (for both models).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import types


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer-path", default=None, help="directory holding the dnc 1.1.0 package (pip --target)")
    p.add_argument("--threads", default="1,2", help="comma-separated torch thread counts to time (default 1,2)")
    p.add_argument("--steps", type=int, default=30, help="timed training steps per model and thread count")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    p.add_argument("--peer-layers", type=int, default=1, help="controller LSTM layers of the peer (its default is 2)")
    p.add_argument("--retain-memory", action="store_true", help="tune glibc malloc to keep freed memory (both)")
    p.add_argument("--omp-passive", action="store_true", help="set OMP_WAIT_POLICY=PASSIVE (both)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=10, help="sequence length")
    p.add_argument("--input", type=int, default=20)
    p.add_argument("--slots", type=int, default=128)
    p.add_argument("--word", type=int, default=64)
    p.add_argument("--reads", type=int, default=4)
    p.add_argument("--hidden", type=int, default=64)
    return p.parse_args(argv)


def load_peer(path: str | None):
    """Import ``dnc.DNC`` from ``path`` (or sys.path); None with a message when it is missing."""
    if path:
        sys.path.insert(0, path)
    sys.modules.setdefault("pyflann", types.ModuleType("pyflann"))  # only its sparse models need it
    try:
        from dnc import DNC as PeerDNC  # type: ignore[import-not-found]
    except ImportError as exc:
        print(f"peer dnc 1.1.0 not importable ({exc}); see this script's docstring to install it", file=sys.stderr)
        return None
    return PeerDNC


def make_steps(args: argparse.Namespace, PeerDNC) -> tuple[dict, dict[str, int]]:
    """Build both models; return ({name: step function}, {name: parameter count})."""
    import torch

    from clbench_memory import DNC

    torch.manual_seed(0)
    x = torch.randn(args.batch, args.seq, args.input)
    ours = DNC(
        input_size=args.input,
        output_size=args.input,
        memory_slots=args.slots,
        word_size=args.word,
        read_heads=args.reads,
        write_heads=1,
        hidden_size=args.hidden,
    )
    models = {"clbench DNC": ours}
    steps = {"clbench DNC": _step_fn(ours, lambda: ours(x))}
    if PeerDNC is not None:
        peer = PeerDNC(
            input_size=args.input,
            hidden_size=args.hidden,
            rnn_type="lstm",
            num_layers=1,
            num_hidden_layers=args.peer_layers,
            nr_cells=args.slots,
            cell_size=args.word,
            read_heads=args.reads,
            batch_first=True,
        )
        models["dnc 1.1.0"] = peer
        steps["dnc 1.1.0"] = _step_fn(peer, lambda: peer(x, (None, None, None), reset_experience=True)[0])
    return steps, {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()}


def _step_fn(model, run):
    """A training step: forward, mean-square loss, backward, Adam."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        loss = run().pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def time_interleaved(steps: dict, n: int, warmup: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Run the step functions round-robin; return (wall seconds, process CPU seconds) per step."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    wall: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(n):
        for name, step in steps.items():
            t0, c0 = time.perf_counter(), time.process_time()
            step()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return wall, cpu


def retain_freed_memory() -> bool:
    """Ask glibc to keep freed heap memory (no trimming, no mmap below 32 MiB); True if applied.

    On some VMs each fresh multi-MiB tensor costs hundreds of page faults; with this, memory
    freed by one step is reused by the next. Process-wide; used only with ``--retain-memory``.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return False
    libc = ctypes.CDLL(name)
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)) and bool(libc.mallopt(m_trim_threshold, 2**30))


def main(argv: list[str] | None = None) -> int:
    """Print ms/step (median, min) of each model and the peer/clbench ratios, per thread count."""
    args = parse_args(argv)
    if args.omp_passive:  # before torch loads OpenMP
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    import torch

    PeerDNC = load_peer(args.peer_path)
    if args.retain_memory:
        print(f"glibc malloc tuned to retain freed memory: {retain_freed_memory()}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {load}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'default')}"
    )
    print(
        f"batch {args.batch}, {args.seq} steps, input {args.input}, memory {args.slots}x{args.word}, "
        f"{args.reads} read heads, controller {args.hidden} (peer: {args.peer_layers} layer(s)); "
        f"{args.steps} timed steps each"
    )
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        steps, counts = make_steps(args, PeerDNC)
        wall, cpu = time_interleaved(steps, args.steps, args.warmup)
        med = {name: 1000 * statistics.median(ts) for name, ts in wall.items()}
        low = {name: 1000 * min(ts) for name, ts in wall.items()}
        cpu_med = {name: 1000 * statistics.median(ts) for name, ts in cpu.items()}
        for name in steps:
            print(
                f"threads={threads}  {name:12s} ({counts[name]} params)  wall median {med[name]:7.1f} ms/step"
                f"  min {low[name]:7.1f}  process CPU median {cpu_med[name]:7.1f}"
            )
        if "dnc 1.1.0" in med:
            ratio = {
                key: values["dnc 1.1.0"] / values["clbench DNC"]
                for key, values in (("wall median", med), ("wall min", low), ("CPU median", cpu_med))
            }
            print(
                f"threads={threads}  speed-up of clbench over dnc 1.1.0: "
                + ", ".join(f"{key} {value:.2f}x" for key, value in ratio.items())
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
