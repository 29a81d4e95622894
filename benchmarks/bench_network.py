"""Whole-network benchmark: ShuffleNet 1x g=3 in training mode, NumPy against PyTorch on the same CPU.

    python benchmarks/bench_network.py                     # batch 32, 224x224, float32, 3 interleaved rounds
    python benchmarks/bench_network.py --batch 8 --rounds 1 --no-torch

Each measurement runs in a fresh process (NumPy's OpenBLAS threads and PyTorch's OpenMP threads never share a
process), alternating NumPy and PyTorch for ``--rounds`` rounds. A process builds the network, warms up, then
times ``--repeat`` forward passes and ``--repeat`` training steps (forward + softmax cross-entropy + backward,
weight gradients included, no optimizer update) and reports the medians and its peak resident memory. The table
gives the median over rounds and the NumPy/PyTorch ratios; then where NumPy's time goes, by layer kind.

PyTorch is optional (``pip install torch==2.13.0``); without it only NumPy is measured. The machine is noisy:
compare ratios measured in one run, never absolute times from different runs.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_numpy(args):
    import numpy as np

    from numpy_shufflenet.functional import softmax_cross_entropy
    from numpy_shufflenet.model import ShuffleNet

    model = ShuffleNet(groups=args.groups, scale=args.scale, rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((args.batch, 3, args.size, args.size)).astype(np.float32)
    y = rng.integers(0, 1000, args.batch)

    def forward():
        model(x)

    def step():
        loss, dlogits = softmax_cross_entropy(model(x), y)
        model.backward(dlogits)

    for _ in range(args.warmup):
        step()
    result = {"forward": _median_time(forward, args.repeat), "step": _median_time(step, args.repeat)}
    result["peak_mb"] = _peak_rss_mb()
    if args.breakdown:
        from numpy_shufflenet.profiling import by_kind, time_layers
        _, dlogits = softmax_cross_entropy(model(x), y)           # a training step's upstream gradient
        kinds = by_kind(time_layers(model, x, repeat=max(1, args.repeat // 2), dout=dlogits))
        result["breakdown"] = [{"kind": k.kind, "forward": k.forward, "backward": k.backward, "seconds": k.total}
                               for k in kinds]
    return result


def worker_torch(args):
    import torch

    sys.path.insert(0, HERE)
    from torch_shufflenet import TorchShuffleNet
    from numpy_shufflenet.model import stage_widths

    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = TorchShuffleNet(stage_widths(args.groups, args.scale), args.groups).train()
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, 1000, (args.batch,))

    def forward():
        model(x)                                     # autograd on, as in training

    def step():
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()

    for _ in range(args.warmup):
        step()
    result = {"forward": _median_time(forward, args.repeat), "step": _median_time(step, args.repeat)}
    result["peak_mb"] = _peak_rss_mb()
    return result


def _run_worker(kind, argv):
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", kind, *argv],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _openblas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed (pip install threadpoolctl to see the BLAS kernel)"
    pools = [p for p in threadpool_info() if p.get("internal_api") == "openblas"]
    return ", ".join(f"OpenBLAS {p.get('version')} {p.get('architecture')} {p.get('num_threads')} threads"
                     for p in pools) or "no OpenBLAS found"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--groups", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per process (median)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved NumPy/PyTorch process pairs")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--no-breakdown", dest="breakdown", action="store_false")
    parser.add_argument("--worker", choices=["numpy", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        if args.worker == "numpy":
            out = worker_numpy(args)
        else:
            out = worker_torch(args)
        print(json.dumps(out))
        return

    use_torch = not args.no_torch and _torch_available()
    argv = [f"--batch={args.batch}", f"--size={args.size}", f"--groups={args.groups}", f"--scale={args.scale}",
            f"--repeat={args.repeat}", f"--warmup={args.warmup}"]
    print(f"ShuffleNet {args.scale}x g={args.groups}, batch {args.batch}, {args.size}x{args.size}, float32, "
          f"training mode; median of {args.repeat} calls after {args.warmup} warm-up, {args.rounds} rounds")
    print(f"NumPy BLAS: {_openblas_info()}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    runs = {"numpy": [], "torch": []}
    breakdown = None
    for r in range(args.rounds):
        last = r == args.rounds - 1
        runs["numpy"].append(_run_worker("numpy", argv + ([] if last and args.breakdown else ["--no-breakdown"])))
        if use_torch:
            runs["torch"].append(_run_worker("torch", argv + ["--no-breakdown"]))
        print(f"  round {r + 1}: NumPy step {runs['numpy'][-1]['step']:.3f} s"
              + (f", PyTorch step {runs['torch'][-1]['step']:.3f} s" if use_torch else ""), flush=True)
    breakdown = runs["numpy"][-1].get("breakdown")

    def med(kind, key):
        return statistics.median(run[key] for run in runs[kind])

    rows = [("forward", "forward"), ("training step", "step")]
    print()
    print(f"{'':<16s} {'NumPy':>10s} {'img/s':>7s}" + (f" {'PyTorch':>10s} {'img/s':>7s} {'ratio':>7s}"
                                                        if use_torch else ""))
    for label, key in rows:
        t_np = med("numpy", key)
        line = f"{label:<16s} {t_np:>9.3f}s {args.batch / t_np:>7.1f}"
        if use_torch:
            t_t = med("torch", key)
            line += f" {t_t:>9.3f}s {args.batch / t_t:>7.1f} {t_np / t_t:>7.2f}"
        print(line)
    mem = f"{'peak memory':<16s} {med('numpy', 'peak_mb'):>8.0f}MB {'':>7s}"
    if use_torch:
        mem += f" {med('torch', 'peak_mb'):>8.0f}MB {'':>7s} {med('numpy', 'peak_mb') / med('torch', 'peak_mb'):>7.2f}"
    print(mem + "   (whole-process peak RSS)")
    if breakdown:
        total = sum(row["seconds"] for row in breakdown)
        print("\nWhere NumPy's training step goes (last round, by layer kind; 'other' = residual add, concat and "
              "container code):")
        print(f"  {'kind':<22s} {'forward':>10s} {'backward':>10s} {'total':>10s} {'share':>6s}")
        for row in sorted(breakdown, key=lambda r: -r["seconds"]):
            print(f"  {row['kind']:<22s} {row['forward'] * 1000:>7.1f} ms {row['backward'] * 1000:>7.1f} ms "
                  f"{row['seconds'] * 1000:>7.1f} ms {100 * row['seconds'] / total:>5.1f}%")


if __name__ == "__main__":
    main()
