"""Train clbench's DNC (or NTM) on the copy task and print the learning curve.

Each sequence is L random ``--bits``-bit vectors (L drawn from 1..``--max-len`` per batch), a
delimiter on an extra channel, then L blank steps during which the model must reproduce the
vectors. Loss: binary cross-entropy on the recall steps; "wrong bits" counts thresholded errors
per sequence. At the end every length 1..max-len (and ``--extra-len`` beyond) is evaluated on
fresh sequences.

    PYTHONPATH=.:plugins python benchmarks/copy_task.py                  # DNC, small memory
    PYTHONPATH=.:plugins python benchmarks/copy_task.py --model ntm
    PYTHONPATH=.:plugins python benchmarks/copy_task.py --slots 128 --word 64 --reads 4   # issue-4 sizes
"""

from __future__ import annotations

import argparse
import time


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["dnc", "ntm"], default="dnc")
    p.add_argument("--bits", type=int, default=8, help="bits per vector")
    p.add_argument("--max-len", type=int, default=5, help="longest training sequence")
    p.add_argument("--extra-len", type=int, default=2, help="also evaluate this many lengths beyond max-len")
    p.add_argument("--slots", type=int, default=16, help="memory slots N")
    p.add_argument("--word", type=int, default=16, help="word size W")
    p.add_argument("--reads", type=int, default=1, help="read heads")
    p.add_argument("--hidden", type=int, default=64, help="controller units")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--iterations", type=int, default=4000, help="training batches (the lr schedule's length)")
    p.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate (cosine-annealed to 2%% of it)")
    p.add_argument("--grad-clip", type=float, default=10.0, help="gradient norm clipping")
    p.add_argument("--time-limit", type=float, default=600.0, help="stop training after this many seconds")
    p.add_argument("--target-bits", type=float, default=0.02, help="stop once wrong bits/seq stays below this")
    p.add_argument("--report", type=int, default=100, help="print every this many iterations")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def build(args: argparse.Namespace):
    """The model: bits + 1 input channels, bits output logits per step."""
    from clbench_memory import DNC, NTM

    common = {
        "input_size": args.bits + 1,
        "output_size": args.bits,
        "memory_slots": args.slots,
        "word_size": args.word,
        "read_heads": args.reads,
        "hidden_size": args.hidden,
    }
    return DNC(**common) if args.model == "dnc" else NTM(**common)


def evaluate(model, args, generator, lengths) -> dict[int, float]:
    """Wrong bits per sequence for each length, on 256 fresh sequences each."""
    import torch

    from clbench_memory.tasks import copy_batch, wrong_bits

    out = {}
    with torch.inference_mode():
        for length in lengths:
            x, target, mask = copy_batch(256, length, args.bits, generator)
            out[length] = wrong_bits(model(x), target, mask)
    return out


def main(argv: list[str] | None = None) -> int:
    """Train, print the curve, then the per-length evaluation."""
    args = parse_args(argv)
    import torch

    from clbench_memory.tasks import copy_batch, copy_loss, wrong_bits

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    model = build(args)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"{args.model}: memory {args.slots}x{args.word}, {args.reads} read head(s), controller {args.hidden}, "
        f"{n_params} parameters; copy {args.bits}-bit vectors, lengths 1..{args.max_len}, batch {args.batch}, "
        f"Adam lr {args.lr} cosine-annealed over {args.iterations} iterations, {args.threads} thread(s)"
    )
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.iterations, eta_min=0.02 * args.lr)
    start = time.perf_counter()
    losses, errors, good_reports = [], [], 0
    for it in range(1, args.iterations + 1):
        length = int(torch.randint(1, args.max_len + 1, (1,), generator=gen))
        x, target, mask = copy_batch(args.batch, length, args.bits, gen)
        logits = model(x)
        loss = copy_loss(logits, target, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        schedule.step()
        losses.append(loss.item())
        errors.append(wrong_bits(logits.detach(), target, mask))
        if it % args.report == 0:
            window_loss = sum(losses[-args.report :]) / args.report
            window_err = sum(errors[-args.report :]) / args.report
            elapsed = time.perf_counter() - start
            print(f"iter {it:5d}  {elapsed:6.1f}s  loss {window_loss:.4f}  wrong bits/seq {window_err:.3f}", flush=True)
            good_reports = good_reports + 1 if window_err < args.target_bits else 0
            if good_reports >= 3 or elapsed > args.time_limit:
                break
    elapsed = time.perf_counter() - start
    lengths = list(range(1, args.max_len + args.extra_len + 1))
    result = evaluate(model, args, gen, lengths)
    print(f"trained {it} iterations in {elapsed:.1f}s; wrong bits per sequence on 256 fresh sequences:")
    for length, err in result.items():
        note = "" if length <= args.max_len else "  (longer than trained)"
        print(f"  length {length}: {err:.3f} of {length * args.bits} bits{note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
