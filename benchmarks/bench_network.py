"""Whole-network benchmark: ShuffleNet g=3 in training mode, NumPy against PyTorch on the same CPU.

    python benchmarks/bench_network.py                     # both configurations, 3 interleaved rounds
    python benchmarks/bench_network.py --config imagenet --rounds 1 --no-torch
    python benchmarks/bench_network.py --scale 0.5 --batch 16 --size 128     # one configuration of your own

Two configurations by default: ``imagenet`` (1x, batch 32, 224x224, the paper's setting) and ``notebook``
(0.25x, batch 64, 32x32, the size the notebooks train at). Each measurement runs in a fresh process (NumPy's
OpenBLAS threads and PyTorch's OpenMP threads never share a process): NumPy with all its threads, NumPy with one
thread (``numpy_shufflenet.fast.set_num_threads(1)``) and PyTorch, for ``--rounds`` rounds, the order rotating
from round to round. A process builds the network, warms up, then times ``--repeat`` forward passes and
``--repeat`` training steps (forward + softmax cross-entropy + backward, weight gradients included, no optimizer
update; neither side computes the gradient of the input images) and reports the medians (``--stat min``: the
fastest call, steadier on a busy machine) and its peak resident memory. The tables give the median over rounds
and the ratios; then where NumPy's time goes with all threads on, by layer kind.

PyTorch is optional (``pip install torch==2.13.0``); without it only NumPy is measured. Compare ratios measured in
one run, never absolute times from different runs, and look at the load average printed with them.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = {"imagenet": dict(scale=1.0, batch=32, size=224), "notebook": dict(scale=0.25, batch=64, size=32)}


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _time_calls(fn, repeat, stat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) if stat == "min" else statistics.median(times)


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_numpy(args):
    import numpy as np

    from numpy_shufflenet.fast import get_num_threads, set_num_threads
    from numpy_shufflenet.functional import softmax_cross_entropy
    from numpy_shufflenet.models import ShuffleNet

    if args.threads:
        set_num_threads(args.threads)
    model = ShuffleNet(groups=args.groups, scale=args.scale, rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((args.batch, 3, args.size, args.size)).astype(np.float32)
    y = rng.integers(0, 1000, args.batch)

    def forward():
        model(x)

    def step():
        loss, dlogits = softmax_cross_entropy(model(x), y)
        model.backward(dlogits, input_grad=False)         # as PyTorch for an input without requires_grad

    for _ in range(args.warmup):
        step()
    result = {"forward": _time_calls(forward, args.repeat, args.stat), "step": _time_calls(step, args.repeat, args.stat),
              "threads": get_num_threads()}
    result["peak_mb"] = _peak_rss_mb()
    if args.breakdown:
        from numpy_shufflenet.analysis.profiling import by_kind, time_layers
        _, dlogits = softmax_cross_entropy(model(x), y)           # a training step's upstream gradient
        kinds = by_kind(time_layers(model, x, repeat=max(1, args.repeat // 2), dout=dlogits, statistic=args.stat,
                                       input_grad=False))
        result["breakdown"] = [{"kind": k.kind, "forward": k.forward, "backward": k.backward, "seconds": k.total}
                               for k in kinds]
    return result


def worker_torch(args):
    import torch

    sys.path.insert(0, HERE)
    from torch_shufflenet import TorchShuffleNet
    from numpy_shufflenet.models import stage_widths

    torch.set_num_threads(_cores())
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
    result = {"forward": _time_calls(forward, args.repeat, args.stat), "step": _time_calls(step, args.repeat, args.stat),
              "threads": torch.get_num_threads()}
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


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas_info():
    """NumPy's BLAS as it reports itself, and whether the fast kernels pause its idle threads."""
    from numpy_shufflenet.fast.blas import blas_description
    return blas_description()


def machine_description():
    import numpy as np
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (f"CPU: {_cpu_model()}, {_cores()} usable cores; load average (1/5/15 min) {load}\n"
            f"NumPy {np.__version__}, BLAS {_blas_info()}; "
            f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")


def _measure(config, args, use_torch):
    """Interleaved rounds of NumPy (all threads), NumPy (1 thread) and PyTorch for one configuration."""
    argv = [f"--batch={config['batch']}", f"--size={config['size']}", f"--groups={args.groups}",
            f"--scale={config['scale']}", f"--repeat={args.repeat}", f"--warmup={args.warmup}", f"--stat={args.stat}"]
    kinds = ["numpy", "numpy1"] + (["torch"] if use_torch else [])
    runs = {k: [] for k in kinds}
    for r in range(args.rounds):
        last = r == args.rounds - 1
        order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
        for kind in order:
            extra = ["--no-breakdown"]
            if kind == "numpy" and last and args.breakdown and config.get("breakdown"):
                extra = []
            if kind == "numpy1":
                extra.append("--threads=1")
            runs[kind].append(_run_worker("torch" if kind == "torch" else "numpy", argv + extra))
        print(f"  round {r + 1}: step " + ", ".join(f"{LABELS[k]} {runs[k][-1]['step']:.3f} s" for k in kinds),
              flush=True)
    return runs


LABELS = {"numpy": "NumPy", "numpy1": "NumPy 1 thr", "torch": "PyTorch"}


def _report(config, runs, use_torch):
    def med(kind, key):
        return statistics.median(run[key] for run in runs[kind])

    n = runs["numpy"][0]["threads"]
    head = f"{'':<15s} {f'NumPy {n} thr':>12s} {'NumPy 1 thr':>12s}"
    if use_torch:
        head += f" {'PyTorch':>10s} {f'{n} thr/PT':>10s} {'1 thr/PT':>9s}"
    print("\n" + head + f" {'1 thr/' + str(n) + ' thr':>11s}")
    for label, key, unit in (("forward", "forward", "s"), ("training step", "step", "s"), ("peak memory", "peak_mb", "MB")):
        fmt = (lambda v: f"{v:>10.3f} s") if unit == "s" else (lambda v: f"{v:>9.0f} MB")
        t_n, t_1 = med("numpy", key), med("numpy1", key)
        line = f"{label:<15s} {fmt(t_n):>12s} {fmt(t_1):>12s}"
        if use_torch:
            t_t = med("torch", key)
            line += f" {fmt(t_t).strip():>10s} {t_n / t_t:>10.2f} {t_1 / t_t:>9.2f}"
        print(line + f" {t_1 / t_n:>11.2f}")
    if key == "peak_mb":
        print("(peak memory: whole-process peak RSS; img/s of the step: "
              + ", ".join(f"{LABELS[k]} {config['batch'] / med(k, 'step'):.1f}" for k in runs) + ")")


def _print_breakdown(breakdown, threads):
    total = sum(row["seconds"] for row in breakdown)
    print(f"\nWhere NumPy's training step goes with {threads} threads (last round, by layer kind; 'batch norm' "
          f"includes the ReLUs fused into it; 'other' = residual add, concat and container code):")
    print(f"  {'kind':<22s} {'forward':>10s} {'backward':>10s} {'total':>10s} {'share':>6s}")
    for row in sorted(breakdown, key=lambda r: -r["seconds"]):
        print(f"  {row['kind']:<22s} {row['forward'] * 1000:>7.1f} ms {row['backward'] * 1000:>7.1f} ms "
              f"{row['seconds'] * 1000:>7.1f} ms {100 * row['seconds'] / total:>5.1f}%")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action="append", choices=sorted(CONFIGS),
                        help="imagenet (1x, batch 32, 224x224) and/or notebook (0.25x, batch 64, 32x32); default both")
    parser.add_argument("--batch", type=int, help="with --size and --scale: one configuration of your own")
    parser.add_argument("--size", type=int)
    parser.add_argument("--scale", type=float)
    parser.add_argument("--groups", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per process")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of processes")
    parser.add_argument("--stat", choices=["median", "min"], default="median", help="of the timed calls")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--no-breakdown", dest="breakdown", action="store_false")
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=["numpy", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(worker_numpy(args) if args.worker == "numpy" else worker_torch(args)))
        return

    use_torch = not args.no_torch and _torch_available()
    if args.batch or args.size or args.scale:
        configs = {"custom": dict(scale=args.scale or 1.0, batch=args.batch or 32, size=args.size or 224)}
    else:
        configs = {name: CONFIGS[name] for name in (args.config or list(CONFIGS))}
    next(iter(configs.values()))["breakdown"] = True            # the breakdown of the first configuration
    print(machine_description())
    for name, config in configs.items():
        print(f"\nShuffleNet {config['scale']}x g={args.groups}, batch {config['batch']}, {config['size']}x"
              f"{config['size']}, float32, training mode ({name}); {args.stat} of {args.repeat} calls after "
              f"{args.warmup} warm-up, median of {args.rounds} rounds")
        runs = _measure(config, args, use_torch)
        _report(config, runs, use_torch)
        if runs["numpy"][-1].get("breakdown"):
            _print_breakdown(runs["numpy"][-1]["breakdown"], runs["numpy"][-1]["threads"])
    if hasattr(os, "getloadavg"):
        print("\nload average at the end: " + " / ".join(f"{v:.1f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
