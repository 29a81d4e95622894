"""The paper's tables that counting can check, rebuilt from the package's own layers and counters.

Each ``*_rows`` function builds the networks of one table (without drawing their weights:
:func:`~numpy_shufflenet.models.build_shapes_only`), counts them with
:func:`~numpy_shufflenet.analysis.counting.count_multiply_adds` and puts the paper's figure beside each count.
Notebooks 03 and 07 print and assert them; :func:`acceptance_rows` gathers one line per checked number.

* Table 1 and the released models: :func:`table1_rows`, :func:`official_rows`, :func:`format_table1`.
* Table 2's complexity column: :func:`table2_rows`; Sec. 4.1.1's gains: :func:`best_group_gains`.
* Table 4: :func:`table4_rows`. Table 5's shallow row and Sec. 4.3's depths: :func:`shallow_rows`,
  :func:`depth_rows`. Table 6: :func:`table6_rows`. Table 8: :func:`table8_rows`, :func:`alexnet_speedups`.
"""

from . import published as paper
from ..models import (TABLE4_STRUCTURES, alexnet, build_shapes_only, googlenet, mobilenet_v1, shufflenet_with_widths,
                        squeezenet, table4_network, vgg16)
from ..analysis.counting import count_layers, count_multiply_adds, count_params
from ..models import GROUPS, ShuffleNet, stage_widths

CONVENTION_NOTE = (
    "Table 1's complexity column matches the convolution-only count (FC excluded) for all five g. Convolutions + "
    "FC match 7 of the 8 released models' README figures and, of the paper's scaled models, Table 5's 1.5x and 2x "
    "and Table 8's 0.5x and 2x (all g=3). Table 5's 0.5x (g=4) counts 40.71 M against its 38, and the 1x "
    "networks of Tables 5 and 8 are the round label 140.")


def _count(model, input_size=224, include_fc=True):
    return count_multiply_adds(model, (3, input_size, input_size), include_fc=include_fc)


def _relative(ours, published):
    """``ours`` (multiply-adds) against ``published`` (millions), as a signed fraction: +0.05 is 5% over."""
    return ours / 1e6 / published - 1


def _within(ours, published, tolerance):
    """True when ``ours`` (multiply-adds) is within ``tolerance`` (a fraction) of ``published`` (millions)."""
    return abs(_relative(ours, published)) <= tolerance


def table1_rows(input_size=224):
    """For each g: widths, conv-only and conv+FC multiply-adds, parameters, and the paper's figure."""
    rows = []
    for g in GROUPS:
        model = build_shapes_only(ShuffleNet, groups=g, scale=1.0)
        rows.append({"groups": g, "widths": stage_widths(g, 1.0),
                     "conv_only": _count(model, input_size, include_fc=False),
                     "conv_fc": _count(model, input_size), "params": count_params(model),
                     "paper_mflops": paper.TABLE1_MFLOPS[g]})
    return rows


def official_rows():
    """For each released model: our conv+FC multiply-adds and parameters beside the README's figures."""
    rows = []
    for (g, scale), (mflops, mparams, _) in paper.OFFICIAL_MODELS.items():
        model = build_shapes_only(ShuffleNet, groups=g, scale=scale)
        rows.append({"groups": g, "scale": scale, "widths": stage_widths(g, scale),
                     "conv_fc": _count(model), "params": count_params(model),
                     "readme_mflops": mflops, "readme_mparams": mparams})
    return rows


def table2_rows(tolerance=0.05):
    """Paper Table 2's complexity column: every g at 1x, 0.5x and 0.25x, counted (conv + FC) from our models.

    Each row: ``scale``, ``groups``, ``widths`` and where they come from (``source``: "Table 1", "released" or
    "our rule", the last meaning the paper publishes none), ``conv_fc``, the paper's label ``mflops`` (one per
    scale), ``match`` (within ``tolerance``) and, at 0.25x, ``stem12``: the count with a 12-channel stem (the
    0.5x stem) in place of our rule's 6 or 8, or None where that stem does not divide (g = 8).
    """
    rows = []
    for scale in (1.0, 0.5, 0.25):
        label = paper.TABLE2_ERROR[scale]["mflops"]
        for g in GROUPS:
            widths = stage_widths(g, scale)
            source = "Table 1" if scale == 1.0 else "released" if (g, scale) in paper.OFFICIAL_MODELS else "our rule"
            conv_fc = _count(build_shapes_only(ShuffleNet, groups=g, scale=scale))
            stem12 = None
            if scale == 0.25 and (widths[1] - 12) % g == 0:
                stem12 = _count(build_shapes_only(shufflenet_with_widths, g, (12,) + widths[1:]))
            rows.append({"scale": scale, "groups": g, "widths": widths, "source": source, "conv_fc": conv_fc,
                         "mflops": label, "match": _within(conv_fc, label, tolerance), "stem12": stem12,
                         "error": paper.TABLE2_ERROR[scale][g]})
    return rows


def best_group_gains():
    """Sec. 4.1.1 from Table 2's errors: ``{scale: (best g, error at g=1 minus the best error)}``."""
    gains = {}
    for scale, row in paper.TABLE2_ERROR.items():
        best = min(GROUPS, key=lambda g: row[g])
        gains[scale] = (best, round(row[1] - row[best], 1))
    return gains


def table4_rows(tolerance=0.05):
    """Paper Table 4: each structure at 140, 38 and 13 MFLOPs (:func:`~numpy_shufflenet.models.table4_network`).

    Each row: ``structure``, ``mflops`` (the column), ``widths``, ``conv_fc``, ``match`` (within ``tolerance``)
    and the paper's ``error`` (None where the paper has "-").
    """
    rows = []
    for mflops in (140, 38, 13):
        for structure in TABLE4_STRUCTURES:
            model = build_shapes_only(table4_network, structure, mflops)
            conv_fc = _count(model)
            rows.append({"structure": structure, "mflops": mflops, "widths": model.widths, "conv_fc": conv_fc,
                         "match": _within(conv_fc, mflops, tolerance),
                         "error": paper.TABLE4_ERROR[mflops][structure]})
    return rows


def shallow_rows(stage2_widths=(120, 144, 168, 180, 192)):
    """Paper Table 5's "0.5x (shallow, g=3)": stage repeats (2, 4, 2) at several Stage-2 widths (doubling after).

    120 is the 0.5x g=3 width (stem 12). Returns ``[(widths, conv_fc), ...]``: the shallow net has about half
    the multiply-adds at the same widths, so to reach the published 40 M it must have been widened.
    """
    rows = []
    for c2 in stage2_widths:
        widths = (12, c2, 2 * c2, 4 * c2)
        rows.append((widths, _count(build_shapes_only(shufflenet_with_widths, 3, widths, repeats=(2, 4, 2)))))
    return rows


def depth_rows():
    """Sec. 4.3's depths counted from the modules: ``{name: layers with weights}``."""
    return {"ShuffleNet": count_layers(build_shapes_only(ShuffleNet, groups=3, scale=1.0)),
            "MobileNet": count_layers(build_shapes_only(mobilenet_v1, 1.0)),
            "ShuffleNet (shallow)": count_layers(
                build_shapes_only(shufflenet_with_widths, 3, stage_widths(3, 0.5), repeats=(2, 4, 2)))}


def table6_rows(tolerance=0.03):
    """Paper Table 6's four classic networks: conv-only and conv+FC counts beside the paper's MFLOPs.

    VGG-16, GoogLeNet and SqueezeNet at 224x224, AlexNet at its own 227x227; SqueezeNet also at 227x227 (the
    Caffe model's input). ``match`` names the conventions within ``tolerance`` ("conv only", "conv + FC").
    """
    nets = (("VGG-16", vgg16, 224), ("AlexNet", alexnet, 227), ("GoogleNet* (BVLC)", googlenet, 224),
            ("SqueezeNet", squeezenet, 224), ("SqueezeNet", squeezenet, 227))
    rows = []
    for name, builder, size in nets:
        model = build_shapes_only(builder)
        conv_only, conv_fc = _count(model, size, include_fc=False), _count(model, size)
        published = paper.TABLE6[name][1]
        match = [label for label, count in (("conv only", conv_only), ("conv + FC", conv_fc))
                 if _within(count, published, tolerance)]
        rows.append({"name": name, "input_size": size, "conv_only": conv_only, "conv_fc": conv_fc,
                     "params": count_params(model), "mflops": published, "match": match})
    return rows


def _table8_models():
    return {"ShuffleNet 0.5x (g=3)": build_shapes_only(ShuffleNet, groups=3, scale=0.5),
            "ShuffleNet 1x (g=3)": build_shapes_only(ShuffleNet, groups=3, scale=1.0),
            "ShuffleNet 2x (g=3)": build_shapes_only(ShuffleNet, groups=3, scale=2.0),
            "AlexNet": build_shapes_only(alexnet),
            "1.0 MobileNet-224": build_shapes_only(mobilenet_v1, 1.0)}


def table8_rows():
    """Paper Table 8 at its three input sizes: our multiply-adds beside the published times.

    Each row: ``name``, ``mflops`` (the paper's), ``conv_fc_224`` (conv + FC at 224x224; AlexNet at its 227),
    ``conv`` (convolutions only at 224x224, 480x640 and 720x1280: AlexNet's FC layers only fit its own input
    size, so the larger sizes are compared without the classifier) and ``times_ms`` (published).
    """
    rows = []
    for name, model in _table8_models().items():
        _, mflops, times = paper.TABLE8[name]
        own = 227 if name == "AlexNet" else 224
        body = model.features if name == "AlexNet" else model       # AlexNet's classifier needs 227x227
        conv = tuple(count_multiply_adds(body, (3, h, w), include_fc=False) for h, w in paper.TABLE8_SIZES)
        rows.append({"name": name, "mflops": mflops, "conv_fc_224": _count(model, own), "conv": conv,
                     "times_ms": times})
    return rows


def alexnet_speedups():
    """Published AlexNet time / ShuffleNet 0.5x time at each Table 8 size, and the theoretical 720 / 38."""
    alex = paper.TABLE8["AlexNet"][2]
    small = paper.TABLE8["ShuffleNet 0.5x (g=3)"][2]
    actual = tuple(round(a / s, 1) for a, s in zip(alex, small))
    return actual, round(paper.TABLE6["AlexNet"][1] / paper.TABLE6["ShuffleNet 0.5x (g=4)"][1], 1)


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


def _mega(values, digits=2):
    return " / ".join("-" if v is None else f"{v / 1e6:,.{digits}f}" for v in values)


def acceptance_rows():
    """One row per checked claim: ``(item, paper's number, ours, convention, match)``, all strings.

    ``match`` starts with "yes", "no", "partly" or "quoted" (a number we store but cannot compute).
    """
    t2 = {(r["scale"], r["groups"]): r for r in table2_rows()}
    t4 = {(r["structure"], r["mflops"]): r for r in table4_rows()}
    t6 = {(r["name"], r["input_size"]): r for r in table6_rows()}
    t8 = {r["name"]: r for r in table8_rows()}
    gains = best_group_gains()
    shallow = dict(shallow_rows())
    depth = depth_rows()
    actual, theoretical = alexnet_speedups()
    rows = []
    for scale, note in ((1.0, "widths of Table 1"), (0.5, "widths released for g=3, 8 only"),
                        (0.25, "widths unpublished")):
        cells = [t2[scale, g] for g in GROUPS]
        hits = [str(r["groups"]) for r in cells if r["match"]]
        rows.append((f"Table 2, {scale}x, g = 1/2/3/4/8", str(paper.TABLE2_ERROR[scale]["mflops"]),
                     _mega(r["conv_fc"] for r in cells), "conv + FC",
                     f"{'yes' if len(hits) == 5 else 'partly'}: g = {', '.join(hits)} within 5% ({note})"))
    rows.append(("Table 2, 0.25x, 12-channel stem", "13", _mega(t2[0.25, g]["stem12"] for g in GROUPS),
                 "conv + FC", "partly: g = 1, 3 within 5% (g = 8 cannot take a 12-channel stem)"))
    rows.append(("Sec. 4.1.1, best g over g = 1", "1.2 / 3.5 / 4.4",
                 " / ".join(f"{gains[s][1]} (g={gains[s][0]})" for s in (1.0, 0.5, 0.25)), "Table 2's errors",
                 "yes" if tuple(gains[s][1] for s in (1.0, 0.5, 0.25)) == tuple(
                     paper.SEC411_BEST_GAIN[s] for s in (1.0, 0.5, 0.25)) else "no"))
    for mflops in (140, 38, 13):
        cells = [t4[s, mflops] for s in TABLE4_STRUCTURES]
        rows.append((f"Table 4, {mflops} MFLOPs (VGG/ResNet/Xc/ResNeXt/Shuffle)", str(mflops),
                     _mega(r["conv_fc"] for r in cells), "conv + FC",
                     f"{'yes' if all(r['match'] for r in cells) else 'no'}: "
                     f"{sum(r['match'] for r in cells)} of 5 within 5%"))
    widths38 = [t4[s, 38]["widths"][3] for s in ("vgg-like", "resnet", "resnext", "xception-like", "shufflenet")]
    paper38 = [paper.TABLE4_STAGE4_WIDTHS_38[s] for s in ("vgg-like", "resnet", "resnext", "xception-like",
                                                          "shufflenet")]
    rows.append(("Sec. 4.2, Stage-4 widths at 38 MFLOPs", ", ".join(map(str, paper38)),
                 ", ".join(map(str, widths38)), "channels", "yes" if widths38 == paper38 else "no"))
    same = (t4["xception-like", 140]["conv_fc"] == t2[1.0, 1]["conv_fc"]
            and t4["xception-like", 38]["conv_fc"] == t2[0.5, 1]["conv_fc"]
            and t4["xception-like", 13]["conv_fc"] == t2[0.25, 1]["stem12"])
    rows.append(("Table 4 Xception-like = Table 2 g = 1", "same networks", _mega(
        t4["xception-like", m]["conv_fc"] for m in (140, 38, 13)), "conv + FC",
        "yes (0.25x with the 12-channel stem)" if same else "no"))
    over = _relative(t2[0.5, 4]["conv_fc"], 38)
    rows.append(("Table 5, 0.5x g=4 (Stage 4 = 576)", "38", _mega([t2[0.5, 4]["conv_fc"]]), "conv + FC",
                 f"no: {over:+.1%}; 38 is a rounded label"))
    rows.append(("Table 5, 0.5x shallow (g=3), 2/4/2 units", "40",
                 _mega([shallow[12, 120, 240, 480], shallow[12, 168, 336, 672], shallow[12, 180, 360, 720]]),
                 "conv + FC at Stage 2 = 120 / 168 / 180", "yes, only if widened to Stage 2 = 168-180"))
    rows.append(("Table 5, 2x with SE (g=3)", "527 M, 24.7%", "not built (no SE module)", "-", "quoted"))
    rows.append(("Sec. 4.3, layers: ShuffleNet vs MobileNet", "50 vs 28",
                 f"{depth['ShuffleNet']} vs {depth['MobileNet']} (shallow {depth['ShuffleNet (shallow)']})",
                 "conv + FC layers",
                 "yes" if (depth["ShuffleNet"], depth["MobileNet"]) == (50, 28) else "no"))
    for name, size in (("VGG-16", 224), ("AlexNet", 227), ("GoogleNet* (BVLC)", 224), ("SqueezeNet", 224),
                       ("SqueezeNet", 227)):
        r = t6[name, size]
        off = ", ".join(f"{label} {_relative(count, r['mflops']):+.1%}"
                        for label, count in (("conv only", r["conv_only"]), ("conv + FC", r["conv_fc"])))
        verdict = f"yes ({' and '.join(r['match'])} within 3%)" if r["match"] else "no (neither within 3%)"
        rows.append((f"Table 6, {name} at {size}x{size}", str(r["mflops"]), _mega([r["conv_only"], r["conv_fc"]], 1),
                     off, verdict))
    rows.append(("Sec. 4.3, 0.5x 18x faster than AlexNet", "18", f"720 / 38 = {theoretical}", "paper's MFLOPs",
                 "yes" if int(theoretical) == paper.TABLE6_THEORETICAL_SPEEDUP else "no"))
    names8 = list(paper.TABLE8)
    rounded_as_published = sum(round(t8[n]["conv_fc_224"] / 1e6) == paper.TABLE8[n][1] for n in names8)
    rows.append(("Table 8, FLOPs at 224x224 (0.5x/1x/2x/AlexNet/MobileNet)",
                 " / ".join(str(paper.TABLE8[n][1]) for n in names8), _mega(t8[n]["conv_fc_224"] for n in names8),
                 "conv + FC (AlexNet 227)", f"partly: {rounded_as_published} of 5 round to the paper's "
                                            f"(AlexNet +0.6%, 1x is the label 140)"))
    for i, (h, w) in enumerate(paper.TABLE8_SIZES[1:], start=1):
        rows.append((f"Table 8, FLOPs at {h}x{w}", "- (times only)", _mega((t8[n]["conv"][i] for n in names8), 0),
                     "conv only", "n/a: the paper gives times, not FLOPs"))
    rows.append(("Abstract, ~13x actual speedup over AlexNet", "~13", " / ".join(map(str, actual)),
                 "published times, 3 sizes", "yes" if all(12 <= a <= 14 for a in actual) else "no"))
    rows.append(("Table 7, COCO mAP (2x: 18.7 / 25.0, ...)", "quoted", "not computed (detection training)", "-",
                 "quoted"))
    rows.append(("README 0.5x top-1 / top-5 error (g=3, g=8)", "42.7/20.0, 41.2/19.0",
                 f"{paper.OFFICIAL_MODELS[3, 0.5][2]}/{paper.OFFICIAL_TOP5_ERROR[3, 0.5]}, "
                 f"{paper.OFFICIAL_MODELS[8, 0.5][2]}/{paper.OFFICIAL_TOP5_ERROR[8, 0.5]}", "error rates", "quoted"))
    return rows


def format_acceptance(rows=None):
    """:func:`acceptance_rows` as a fixed-width text table."""
    rows = acceptance_rows() if rows is None else rows
    header = ("item", "paper", "ours (M multiply-adds unless said)", "convention", "match")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(5)]

    def line(r):
        return " | ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip()

    return "\n".join([line(header), "-+-".join("-" * w for w in widths)] + [line(r) for r in rows])
