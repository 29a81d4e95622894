"""The paper's tables rebuilt by :mod:`numpy_shufflenet.paper.tables`: each count beside the paper's figure, with the
tolerance of the comparison (Table 2 and Table 4: 5%, Table 6: 3%), and the quoted numbers of the tables we
cannot compute."""

import pytest

from numpy_shufflenet import paper
from numpy_shufflenet.paper import tables


def test_table2_complexity_column():
    rows = {(r["scale"], r["groups"]): r for r in tables.table2_rows()}
    assert all(rows[1.0, g]["match"] for g in (1, 2, 3, 4, 8))                     # every 1x within 5% of 140
    assert [g for g in (1, 2, 3, 4, 8) if rows[0.5, g]["match"]] == [1, 3]
    assert rows[0.5, 8]["conv_fc"] == 40_469_760 and rows[0.5, 8]["source"] == "released"
    assert rows[0.5, 4]["conv_fc"] == 40_710_528 and rows[0.5, 4]["widths"][3] == 576   # tables.CONVENTION_NOTE
    assert [g for g in (1, 2, 3, 4, 8) if rows[0.25, g]["match"]] == [2, 8]
    assert rows[0.25, 1]["stem12"] == 13_162_320 and rows[0.25, 3]["stem12"] == 13_300_656
    assert rows[0.25, 8]["stem12"] is None                                        # 96 - 12 is not divisible by 8
    assert {r["source"] for r in rows.values() if r["scale"] == 0.25} == {"our rule"}


def test_section_411_gains_from_table2():
    assert tables.best_group_gains() == {1.0: (8, 1.2), 0.5: (4, 3.5), 0.25: (8, 4.4)}
    assert {s: gain for s, (_, gain) in tables.best_group_gains().items()} == paper.SEC411_BEST_GAIN


def test_table4_rows():
    rows = tables.table4_rows()
    assert len(rows) == 15 and all(r["match"] for r in rows)
    for r in rows:
        assert abs(r["conv_fc"] / 1e6 / r["mflops"] - 1) < 0.05
    assert [r["error"] for r in rows if r["mflops"] == 140] == [50.7, 37.3, 33.6, 33.3, 32.4]
    by_key = {(r["structure"], r["mflops"]): r for r in rows}
    assert by_key["xception-like", 140]["conv_fc"] == 143_078_976                 # = Table 2, 1x g=1
    assert by_key["xception-like", 38]["conv_fc"] == 38_517_408                   # = Table 2, 0.5x g=1
    assert by_key["xception-like", 13]["conv_fc"] == 13_162_320                   # = Table 2, 0.25x g=1, stem 12


def test_shallow_row_and_depths():
    counts = dict(tables.shallow_rows())
    assert counts[12, 120, 240, 480] == 21_584_496                  # half the units, about half of 37.59 M
    assert counts[12, 168, 336, 672] < 40e6 * 0.95 < 40e6 * 1.05 < counts[12, 192, 384, 768]
    assert abs(counts[12, 180, 360, 720] / 40e6 - 1) < 0.05
    assert tables.depth_rows() == paper.DEPTH_LAYERS


def test_table6_rows():
    rows = {(r["name"], r["input_size"]): r for r in tables.table6_rows()}
    assert rows["VGG-16", 224]["match"] == ["conv only", "conv + FC"]
    assert rows["AlexNet", 227]["match"] == ["conv + FC"]
    assert rows["GoogleNet* (BVLC)", 224]["match"] == []
    assert rows["SqueezeNet", 224]["match"] == ["conv only", "conv + FC"]
    assert round(rows["SqueezeNet", 227]["conv_fc"] / 1e6) == 833


def test_table8_rows_and_speedups():
    rows = {r["name"]: r for r in tables.table8_rows()}
    assert [round(r["conv_fc_224"] / 1e6, 2) for r in rows.values()] == [37.59, 137.46, 524.05, 724.41, 568.74]
    one_x = rows["ShuffleNet 1x (g=3)"]["conv"]
    assert one_x[0] == 136_500_672 and one_x[1] > 6 * one_x[0]                    # 480x640 is 6.1x the pixels
    assert tables.alexnet_speedups() == ((12.1, 13.2, 14.0), 18.9)


def test_acceptance_rows():
    rows = tables.acceptance_rows()
    assert all(len(r) == 5 and all(isinstance(v, str) for v in r) for r in rows)
    verdicts = [r[4].split()[0].rstrip(":,") for r in rows]
    assert set(verdicts) <= {"yes", "no", "partly", "quoted", "n/a"}
    assert verdicts.count("no") == 2                 # Table 5's 0.5x g=4 and GoogLeNet, both explained
    assert "item" in tables.format_acceptance(rows).splitlines()[0]


@pytest.mark.parametrize("key, top1, top5", [((3, 0.5), 42.7, 20.0), ((8, 0.5), 41.2, 19.0),
                                             ((3, 2.0), 25.9, 8.6)])
def test_released_errors_quoted(key, top1, top5):
    assert paper.OFFICIAL_MODELS[key][2] == top1 and paper.OFFICIAL_TOP5_ERROR[key] == top5


def test_stage_width_rule_against_the_released_widths():
    """model.stage_widths' docstring: the rounding rule gives every released width but the 1.5x stems."""
    from numpy_shufflenet.models import OFFICIAL_WIDTHS, TABLE1_WIDTHS
    from numpy_shufflenet.models.builders import round_up
    from numpy_shufflenet.models.shufflenet import STEM_1X
    misses = {}
    for (g, scale), released in OFFICIAL_WIDTHS.items():
        c2 = round_up(scale * TABLE1_WIDTHS[g][0], 4 * g)
        rule = (round_up(scale * STEM_1X, g), c2, 2 * c2, 4 * c2)
        if rule != released:
            misses[g, scale] = (released, rule)
    assert misses == {(3, 1.5): ((24, 360, 720, 1440), (36, 360, 720, 1440)),
                      (8, 1.5): ((24, 576, 1152, 2304), (40, 576, 1152, 2304))}
