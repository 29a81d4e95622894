"""Paper Table 1 and the released models' complexities, rebuilt from the package's own layers and counters."""

from . import paper
from .counting import count_flops, count_params
from .model import GROUPS, ShuffleNet, stage_widths

CONVENTION_NOTE = (
    "Table 1's complexity column matches the convolution-only count (FC excluded) for all five g; the released "
    "models' README and the scaled models of the paper's Tables 5 and 8 (0.5x, 1.5x, 2x) match convolutions + FC.")


def table1_rows(input_size=224):
    """For each g: widths, conv-only and conv+FC multiply-adds, parameters, and the paper's figure."""
    rows = []
    for g in GROUPS:
        model = ShuffleNet(groups=g, scale=1.0)
        shape = (3, input_size, input_size)
        rows.append({"groups": g, "widths": stage_widths(g, 1.0),
                     "conv_only": count_flops(model, shape, include_fc=False),
                     "conv_fc": count_flops(model, shape), "params": count_params(model),
                     "paper_mflops": paper.TABLE1_MFLOPS[g]})
    return rows


def official_rows():
    """For each released model: our conv+FC multiply-adds and parameters beside the README's figures."""
    rows = []
    for (g, scale), (mflops, mparams, _) in paper.OFFICIAL_MODELS.items():
        model = ShuffleNet(groups=g, scale=scale)
        rows.append({"groups": g, "scale": scale, "widths": stage_widths(g, scale),
                     "conv_fc": count_flops(model), "params": count_params(model),
                     "readme_mflops": mflops, "readme_mparams": mparams})
    return rows


def format_table1(input_size=224):
    lines = [f"Paper Table 1 rebuilt: ShuffleNet 1x at {input_size}x{input_size}, complexity in millions of "
             f"multiply-adds",
             f"{'g':>2s} {'conv1':>5s} {'stage2':>6s} {'stage3':>6s} {'stage4':>6s}   {'conv only':>10s} "
             f"{'conv+FC':>10s} {'paper':>6s}   {'params':>10s}"]
    for r in table1_rows(input_size):
        stem, c2, c3, c4 = r["widths"]
        match = "=" if round(r["conv_only"] / 1e6) == r["paper_mflops"] else "!"
        lines.append(f"{r['groups']:>2d} {stem:>5d} {c2:>6d} {c3:>6d} {c4:>6d}   {r['conv_only'] / 1e6:>10.2f} "
                     f"{r['conv_fc'] / 1e6:>10.2f} {r['paper_mflops']:>5d}{match}   {r['params']:>10,d}")
    lines += ["", "Released models (authors' README): conv+FC multiply-adds and parameters",
              f"{'model':<14s} {'widths':<26s} {'MFLOPs':>8s} {'README':>7s}   {'params (M)':>10s} {'README':>7s}"]
    for r in official_rows():
        name = f"{r['scale']}x g={r['groups']}"
        widths = "/".join(str(w) for w in r["widths"])
        lines.append(f"{name:<14s} {widths:<26s} {r['conv_fc'] / 1e6:>8.2f} {r['readme_mflops']:>7d}   "
                     f"{r['params'] / 1e6:>10.3f} {r['readme_mparams']:>7.1f}")
    lines += ["", CONVENTION_NOTE,
              "(The one exception is 1.0x g=3: 137.46 M against the README's 138 M; Table 1 says 137 M for the "
              "same network.)",
              "Parameters count conv and FC weights and batch-norm gamma/beta (no FC bias, as released)."]
    return "\n".join(lines)
