"""Time the layers of ShuffleNet 1x (g = 3) one by one: forward and backward, NumPy (and PyTorch, if installed).

    python benchmarks/bench_layers.py [--batch 32] [--repeat 5] [--no-torch] [--stat median|min]
                                      [--kernels fast|reference] [--threads N]

Every row is one layer at the shape it has inside the network (float32, NCHW): the stem convolution, the max
pool, and for stages 2, 3 and 4 the two pointwise group convolutions, the channel shuffle, the depthwise 3x3
convolution, the batch norm (alone, and fused with the ReLU that follows it in the unit, as the network runs it
with the fast kernels), and the 3x3 average pool of the downsampling unit's shortcut. ``--kernels`` picks the
tuned ``numpy_shufflenet.fast`` kernels (default) or the textbook ``numpy_shufflenet.functional`` ones;
``--threads`` the number of threads of the fast kernels (default: every core). Times are the median
of ``--repeat`` runs after one warm-up run (``time.perf_counter``; ``--stat min`` reports the fastest run, which
is steadier when other processes share the cores). The backward is timed from one forward's cache (PyTorch:
``torch.autograd.grad`` on one retained graph). All NumPy rows are timed before all PyTorch rows.

At the end, the fast convolution is compared with the loop version (``conv2d_forward_naive`` and
``conv2d_backward_naive``) on two stage-3 layers. The loop version is too slow for batch 32: it is timed on
``--naive-batch`` images and scaled per image.
"""

import argparse
import os
import statistics
import time

import numpy as np

from numpy_shufflenet import fast, functional
from numpy_shufflenet.functional import conv2d_backward_naive, conv2d_forward_naive

F = fast                          # the kernel set the rows time (--kernels)

try:
    import torch
except ImportError:               # the benchmark runs without PyTorch; it just prints no comparison
    torch = None

# ShuffleNet 1x, g = 3 (paper Table 1): (stage, spatial size, output channels, bottleneck = out / 4,
# input channels and spatial size of the stage's first, downsampling, unit)
GROUPS = 3
STAGES = [(2, 28, 240, 60, 24, 56), (3, 14, 480, 120, 240, 28), (4, 7, 960, 240, 480, 14)]


# ------------------------------------------------------------------------------------------------------------------
# the layers: each row builds NumPy (and optionally PyTorch) closures for a forward and a backward
# ------------------------------------------------------------------------------------------------------------------
class Row:
    """One layer to time: ``np_forward() -> (out, cache)``, ``np_backward(dout, cache)``, and a torch twin."""

    def __init__(self, name, shape, np_forward, np_backward, torch_forward=None, torch_inputs=()):
        self.name, self.shape = name, shape
        self.np_forward, self.np_backward = np_forward, np_backward
        self.torch_forward, self.torch_inputs = torch_forward, torch_inputs


def conv_row(rng, name, N, C, H, F_out, k, stride, padding, groups, use_torch):
    x = rng.standard_normal((N, C, H, H), dtype=np.float32)
    w = (rng.standard_normal((F_out, C // groups, k, k)) * np.sqrt(2 / (C // groups * k * k))).astype(np.float32)
    opts = dict(stride=stride, padding=padding, groups=groups)
    row = Row(name, f"{C}x{H}x{H} -> {F_out}", lambda: F.conv2d_forward(x, w, **opts), F.conv2d_backward)
    if use_torch:
        tx, tw = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
        row.torch_forward = lambda: torch.nn.functional.conv2d(tx, tw, **opts)
        row.torch_inputs = (tx, tw)
    return row


def batchnorm_row(rng, name, N, C, H, use_torch, relu=False):
    """Batch norm, or (``relu``) the pair batchnorm2d_relu: one pass with the fast set, the two pairs otherwise."""
    x = rng.standard_normal((N, C, H, H), dtype=np.float32)
    gamma, beta = np.ones(C, np.float32), np.zeros(C, np.float32)
    mean, var = np.zeros(C, np.float32), np.ones(C, np.float32)
    opts = dict(running_mean=mean, running_var=var, training=True)
    if not relu:
        forward, backward = lambda: F.batchnorm2d_forward(x, gamma, beta, **opts), F.batchnorm2d_backward
    else:
        forward, backward = lambda: F.batchnorm2d_relu_forward(x, gamma, beta, **opts), F.batchnorm2d_relu_backward
    row = Row(name, f"{C}x{H}x{H}", forward, backward)
    if use_torch:
        tx = torch.from_numpy(x).requires_grad_()
        tg, tb = torch.from_numpy(gamma).requires_grad_(), torch.from_numpy(beta).requires_grad_()
        tm, tv = torch.zeros(C), torch.ones(C)
        t_bn = lambda: torch.nn.functional.batch_norm(tx, tm, tv, tg, tb, training=True)
        row.torch_forward = (lambda: torch.relu(t_bn())) if relu else t_bn
        row.torch_inputs = (tx, tg, tb)
    return row


def shuffle_row(rng, name, N, C, H, use_torch):
    x = rng.standard_normal((N, C, H, H), dtype=np.float32)
    row = Row(name, f"{C}x{H}x{H}", lambda: F.channel_shuffle_forward(x, GROUPS), F.channel_shuffle_backward)
    if use_torch:
        tx = torch.from_numpy(x).requires_grad_()
        # the usual PyTorch ShuffleNet idiom: view, transpose, contiguous
        row.torch_forward = lambda: (tx.view(N, GROUPS, C // GROUPS, H, H).transpose(1, 2).contiguous()
                                     .view(N, C, H, H))
        row.torch_inputs = (tx,)
    return row


def pool_row(rng, name, kind, N, C, H, use_torch):
    x = rng.standard_normal((N, C, H, H), dtype=np.float32)
    forward, backward = ((F.max_pool2d_forward, F.max_pool2d_backward) if kind == "max"
                         else (F.avg_pool2d_forward, F.avg_pool2d_backward))
    row = Row(name, f"{C}x{H}x{H}", lambda: forward(x, kernel_size=3, stride=2, padding=1), backward)
    if use_torch:
        tx = torch.from_numpy(x).requires_grad_()
        t_pool = torch.nn.functional.max_pool2d if kind == "max" else torch.nn.functional.avg_pool2d
        row.torch_forward = lambda: t_pool(tx, 3, 2, 1)
        row.torch_inputs = (tx,)
    return row


def build_rows(N, use_torch, seed=0):
    rng = np.random.default_rng(seed)
    rows = [conv_row(rng, "stem conv 3x3 s2", N, 3, 224, 24, 3, 2, 1, 1, use_torch),
            pool_row(rng, "max pool 3x3 s2", "max", N, 24, 112, use_torch)]
    for stage, H, C, m, C_in, H_in in STAGES:
        rows += [
            pool_row(rng, f"s{stage} avg pool 3x3 s2 (shortcut)", "avg", N, C_in, H_in, use_torch),
            conv_row(rng, f"s{stage} gconv 1x1 g3 {C}->{m}", N, C, H, m, 1, 1, 0, GROUPS, use_torch),
            batchnorm_row(rng, f"s{stage} batch norm + ReLU", N, m, H, use_torch, relu=True),
            shuffle_row(rng, f"s{stage} channel shuffle g3", N, m, H, use_torch),
            conv_row(rng, f"s{stage} dwconv 3x3", N, m, H, m, 3, 1, 1, m, use_torch),
            batchnorm_row(rng, f"s{stage} batch norm", N, m, H, use_torch),
            conv_row(rng, f"s{stage} gconv 1x1 g3 {m}->{C}", N, m, H, C, 1, 1, 0, GROUPS, use_torch),
            batchnorm_row(rng, f"s{stage} batch norm", N, C, H, use_torch),
        ]
    return rows


# ------------------------------------------------------------------------------------------------------------------
# timing
# ------------------------------------------------------------------------------------------------------------------
class Timer:
    """Call ``timer(fn)``: ``fn`` is run ``warmup`` times, then ``repeat`` timed times; returns the median (or the
    minimum, with ``stat="min"``) in seconds."""

    def __init__(self, repeat, stat="median"):
        self.repeat, self.stat = repeat, stat

    def __call__(self, fn, warmup=1, repeat=None):
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(self.repeat if repeat is None else repeat):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times) if self.stat == "median" else min(times)


def time_numpy(row, timer):
    t_fwd = timer(row.np_forward)
    out, cache = row.np_forward()
    dout = np.random.default_rng(1).standard_normal(out.shape, dtype=np.float32)
    t_bwd = timer(lambda: row.np_backward(dout, cache))
    return t_fwd, t_bwd


def time_torch(row, timer):
    t_fwd = timer(row.torch_forward)
    out = row.torch_forward()
    dout = torch.randn(out.shape)
    t_bwd = timer(lambda: torch.autograd.grad(out, row.torch_inputs, dout, retain_graph=True))
    return t_fwd, t_bwd


def ms(t):
    return f"{1e3 * t:9.2f}"


def print_layer_table(rows, timer, use_torch):
    # All NumPy rows first, then all PyTorch rows: interleaving them lets the two libraries' idle worker threads
    # (OpenBLAS's and PyTorch's OpenMP pool) spin against each other on a 2-core machine.
    np_times = [time_numpy(row, timer) for row in rows]
    pt_times = [time_torch(row, timer) for row in rows] if use_torch else None
    header = f"{'layer':<32s} {'input -> out ch':<18s} {'np fwd ms':>9s} {'np bwd ms':>9s}"
    if use_torch:
        header += f" {'pt fwd ms':>9s} {'pt bwd ms':>9s} {'fwd np/pt':>9s} {'bwd np/pt':>9s}"
    print(header)
    print("-" * len(header))
    for i, row in enumerate(rows):
        t = np_times[i]
        line = f"{row.name:<32s} {row.shape:<18s} {ms(t[0])} {ms(t[1])}"
        if use_torch:
            tt = pt_times[i]
            line += f" {ms(tt[0])} {ms(tt[1])} {t[0] / tt[0]:9.1f} {t[1] / tt[1]:9.1f}"
        print(line)
    print("-" * len(header))
    total = np.sum(np_times, axis=0)
    line = f"{'total of the rows above':<32s} {'':<18s} {ms(total[0])} {ms(total[1])}"
    if use_torch:
        pt_total = np.sum(pt_times, axis=0)
        line += f" {ms(pt_total[0])} {ms(pt_total[1])} {total[0] / pt_total[0]:9.1f} {total[1] / pt_total[1]:9.1f}"
    print(line)


def print_naive_speedup(batch, naive_batch, timer, naive_repeat):
    print(f"\nfast vs loop convolution (forward + backward), stage 3 at 14x14, float32. The loop version is timed "
          f"on batch {naive_batch} and the fast one on batch {batch}; both are reported per image.")
    header = f"{'layer':<28s} {'fast ms/img':>11s} {'loop ms/img':>11s} {'speedup':>9s}"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(2)
    for name, C, F_out, k, groups in [("dwconv 3x3, 120 ch", 120, 120, 3, 120),
                                      ("gconv 1x1 g3 480->120", 480, 120, 1, GROUPS)]:
        w = rng.standard_normal((F_out, C // groups, k, k), dtype=np.float32)
        opts = dict(stride=1, padding=k // 2, groups=groups)

        def fwd_bwd(forward, backward, x):
            out, cache = forward(x, w, **opts)
            backward(np.ones_like(out), cache)

        x = rng.standard_normal((batch, C, 14, 14), dtype=np.float32)
        vectorised = timer(lambda: fwd_bwd(F.conv2d_forward, F.conv2d_backward, x)) / batch
        x_small = x[:naive_batch].copy()
        loop = timer(lambda: fwd_bwd(conv2d_forward_naive, conv2d_backward_naive, x_small), warmup=0,
                     repeat=naive_repeat) / naive_batch
        print(f"{name:<28s} {1e3 * vectorised:11.3f} {1e3 * loop:11.1f} {loop / vectorised:8.0f}x", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement")
    parser.add_argument("--naive-batch", type=int, default=1, help="batch for the slow loop convolution")
    parser.add_argument("--naive-repeat", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--stat", choices=["median", "min"], default="median",
                        help="statistic of the timed runs (min is steadier on a busy machine)")
    parser.add_argument("--kernels", choices=["fast", "reference"], default="fast")
    parser.add_argument("--threads", type=int, help="threads of the fast kernels (default: every core)")
    args = parser.parse_args(argv)
    timer = Timer(args.repeat, args.stat)
    global F
    F = fast if args.kernels == "fast" else functional
    if args.threads:
        fast.set_num_threads(args.threads)

    use_torch = torch is not None and not args.no_torch
    print(f"ShuffleNet 1x (g=3) layers, batch {args.batch}, float32, NCHW; {args.stat} of {args.repeat} runs after "
          f"a warm-up; numpy {np.__version__}; {args.kernels} kernels, {fast.get_num_threads()} thread(s)")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start (other processes skew the "
          f"timings)")
    if use_torch:
        torch.set_num_threads(os.cpu_count() or 1)
        print(f"PyTorch {torch.__version__} with {torch.get_num_threads()} threads (autograd for the backward); "
              f"np/pt = NumPy time / PyTorch time")
    else:
        print("PyTorch comparison: " + ("skipped (--no-torch)" if torch is not None else "PyTorch not installed"))
    print()
    print_layer_table(build_rows(args.batch, use_torch), timer, use_torch)
    print_naive_speedup(args.batch, args.naive_batch, timer, args.naive_repeat)


if __name__ == "__main__":
    main()
