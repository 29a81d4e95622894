"""The package's folders are the layers of its architecture: each imports only from the layers below it, and the
README's map names only what is really there."""

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "numpy_shufflenet"

# The rank of each room: a module may import from rooms of a lower rank or from its own room.
RANK = {"_checks": 0, "functional": 1, "fast": 2, "kernels": 3, "nn": 4, "models": 5, "analysis": 6, "gradcheck": 6,
        "interop": 6, "training": 7, "paper": 8, "course": 8, "cli": 9, "__main__": 10, "__init__": 10}


def _room(path):
    """The room of a module file: its folder under the package, or its own name at the top."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _imported_rooms(path):
    """The rooms each relative import of ``path`` reaches, with the line it is on."""
    depth = len(path.relative_to(PACKAGE).parts) - 1          # 0 at the package's top, 1 inside a folder
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            up = node.level - 1
            if up > depth:
                raise AssertionError(f"{path}: line {node.lineno} imports from outside the package")
            here = path.relative_to(PACKAGE).parts[:-1]
            base = list(here[:len(here) - up]) + (node.module.split(".") if node.module else [])
            names = [base[0]] if base else [alias.name for alias in node.names]
            for name in names:
                yield name, node.lineno


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_room_imports_only_from_the_rooms_below_it(path):
    room = _room(path)
    for target, line in _imported_rooms(path):
        if target == room:
            continue
        assert target in RANK, f"{path.relative_to(ROOT)}:{line} imports {target!r}, a room the layout does not know"
        assert RANK[target] < RANK[room], (f"{path.relative_to(ROOT)}:{line}: {room} (rank {RANK[room]}) imports "
                                           f"{target} (rank {RANK[target]}), which is not below it")


def test_every_room_of_the_package_has_a_rank():
    rooms = {_room(p) for p in MODULES}
    assert rooms <= set(RANK), f"rooms without a rank: {sorted(rooms - set(RANK))}"


def _readout_of_readme_map():
    """The rows of the README's map: (room, the backticked names of its second column)."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| folder | what it holds | may import |"):]
    table = table[:table.index("\n\n")]
    rows = []
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        room = cells[0].strip("`").rstrip("/")
        names = re.findall(r"`([A-Za-z_][A-Za-z_0-9]*)(?:\(|`)", cells[1])
        rows.append((room, names))
    return rows


MAP = _readout_of_readme_map()


def test_the_readme_map_lists_every_room_once():
    rooms = [room for room, _ in MAP]
    assert len(rooms) == len(set(rooms))
    assert set(rooms) == set(RANK) - {"_checks", "__main__", "__init__"}


@pytest.mark.parametrize("room, names", MAP, ids=[room for room, _ in MAP])
def test_every_name_of_the_readme_map_is_importable_from_its_room(room, names):
    module = importlib.import_module(f"numpy_shufflenet.{room}")
    assert names, f"the README's map names nothing in {room}"
    missing = [name for name in names if not hasattr(module, name)
               and not (hasattr(module, "__path__") and importlib.util.find_spec(f"{module.__name__}.{name}"))]
    assert not missing, f"the README's map names {missing} in {room}/, which does not have them"


def test_the_most_used_names_are_importable_from_the_package():
    import numpy_shufflenet
    for name in ("ShuffleNet", "ShuffleUnit", "use_kernels", "active_kernels", "count_params", "count_flops",
                 "count_multiply_adds", "summary", "save_weights", "load_weights", "functional", "fast", "nn",
                 "models", "flow", "gradcheck"):
        assert hasattr(numpy_shufflenet, name), name
