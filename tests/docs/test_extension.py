"""The course site's Sphinx extension (``docs/_ext/numpy_shufflenet_docs.py``) without building the site: which
inline code links to which entry of the reference, what a cache field says, the command line it documents."""

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx", reason='the docs extra is not installed (python -m pip install -e ".[docs]")')

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "_ext"))
import numpy_shufflenet_docs as ext  # noqa: E402

sys.path.pop(0)

OBJECTS = {
    "numpy_shufflenet.functional": "module",
    "numpy_shufflenet.functional.conv": "module",
    "numpy_shufflenet.functional.conv.conv2d_forward": "function",
    "numpy_shufflenet.functional.shuffle.channel_shuffle_forward": "function",
    "numpy_shufflenet.functional.conv_naive": "module",
    "numpy_shufflenet.functional.shuffle.ShuffleCache": "class",
    "numpy_shufflenet.functional.shuffle.ShuffleCache.groups": "attribute",
    "numpy_shufflenet.functional.norm.BatchNormCache.gamma": "attribute",
    "numpy_shufflenet.analysis.flow.connectivity": "function",
    "numpy_shufflenet.analysis.counting.count_flops": "function",
    "numpy_shufflenet.nn.module.Module.forward": "method",
    "numpy_shufflenet.nn.layers.ReLU.forward": "method",
    "numpy_shufflenet.nn.containers.Sequential": "class",
    "numpy_shufflenet.models.shufflenet.ShuffleUnit": "class",
    "numpy_shufflenet.models.shufflenet.ShuffleUnit.backward": "method",
}


@pytest.mark.parametrize("text, expected", [
    ("F.conv2d_forward", "numpy_shufflenet.functional.conv.conv2d_forward"),
    ("F.channel_shuffle_forward", "numpy_shufflenet.functional.shuffle.channel_shuffle_forward"),
    ("channel_shuffle_forward(x, groups)", "numpy_shufflenet.functional.shuffle.channel_shuffle_forward"),
    ("count_flops", "numpy_shufflenet.analysis.counting.count_flops"),
    ("flow.connectivity", "numpy_shufflenet.analysis.flow.connectivity"),
    ("Sequential", "numpy_shufflenet.nn.containers.Sequential"),
    ("ShuffleUnit.backward", "numpy_shufflenet.models.shufflenet.ShuffleUnit.backward"),
    ("numpy_shufflenet.functional", "numpy_shufflenet.functional"),
    ("numpy_shufflenet/functional/", "numpy_shufflenet.functional"),
    ("conv_naive.py", "numpy_shufflenet.functional.conv_naive"),
])
def test_inline_code_that_names_one_entry_links_to_it(text, expected):
    assert ext.resolve(text, OBJECTS) == expected


@pytest.mark.parametrize("text", [
    "forward",                  # a method of many classes: which one?
    "groups",                   # a cache's field, and an everyday word of the course
    "gamma",
    "x",
    "(N, C, H, W)",
    "out[:, k] = x[:, perm[k]]",
    "F.relu_forward",           # not documented
    "+=",
    "",
])
def test_anything_else_stays_plain(text):
    assert ext.resolve(text, OBJECTS) is None


def test_a_cache_field_says_what_its_comment_says():
    from numpy_shufflenet.functional.norm import BatchNormCache

    assert ext.field_comment(BatchNormCache, "xhat") == "(N, C, H, W), the normalised input"
    lines = ["Alias for field number 0"]
    ext.describe_fields(None, "attribute", "numpy_shufflenet.functional.norm.BatchNormCache.xhat", None, {}, lines)
    assert lines == ["(N, C, H, W), the normalised input"]
    lines = ["A docstring of its own."]
    ext.describe_fields(None, "attribute", "numpy_shufflenet.functional.norm.BatchNormCache.xhat", None, {}, lines)
    assert lines == ["A docstring of its own."]


def test_the_command_line_it_documents_is_the_package_s():
    commands = ext.cli_commands()
    assert {"table1", "make-student", "grade"} <= set(commands)
    text = ext.cli_help(["grade"])
    assert text.startswith("usage: python -m numpy_shufflenet grade")
    assert ext._has_option("grade", "--timeout")
    assert not ext._has_option("grade", "--no-such-option")


def test_math_comes_from_the_installed_package():
    if importlib.util.find_spec(ext.MATHJAX_PACKAGE) is None:
        pytest.skip(f'{ext.MATHJAX_PACKAGE} is not installed (python -m pip install -e ".[docs]")')
    folder = ext.mathjax_source()
    assert (folder / ext.MATHJAX_ENTRY).is_file()
