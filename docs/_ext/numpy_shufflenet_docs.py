"""The course site's own Sphinx pieces: every one of them reads the package at build time, so the site says what
the code does.

* **Offline math.** MathJax 3 comes from the ``sphinx-mathjax-offline`` wheel (a PyPI package that ships its
  files): the build copies them into ``_static/mathjax`` and ``conf.py`` points ``mathjax_path`` there. Nothing is
  loaded from a CDN and nothing of MathJax is kept in git. The combined bundles no page loads (``tex-svg.js``,
  ``mml-chtml.js``, ...) are left out; the parts ``tex-chtml.js`` loads on demand (TeX extensions, the menu, the
  accessibility tools, both output renderers and their fonts) are all copied.
* **Links to the reference.** Inline code in the pages' text (``F.conv2d_forward``, ``count_flops``,
  ``flow.connectivity(...)``, ``conv_naive.py``) becomes a link to the object's entry in the API reference when it
  names exactly one documented object (:func:`resolve`). Code cells and their outputs are left alone.
* **What a cache holds.** A ``NamedTuple`` field's entry shows the comment of its line in the source instead of
  "Alias for field number 0" (:func:`describe_fields`).
* **Generated text.** ``ns-text`` puts a string of the package (a constant, or what a function returns) into a
  literal block; ``ns-acceptance-table`` renders :func:`numpy_shufflenet.paper.tables.acceptance_rows` as a table;
  ``ns-cli`` shows ``--help`` of every command of ``python -m numpy_shufflenet``; ``ns-exercises`` lists the
  graded exercises of the notebooks with their points; ``ns-only-if COMMAND [--option]`` keeps its content only
  when the command line has that command and option, so that a page about the grader is true of the version it
  is built with.
"""

import contextlib
import importlib
import importlib.util
import inspect
import io
import os
import re
import shutil
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive, directives
from sphinx import addnodes
from sphinx.errors import ExtensionError

MATHJAX_PACKAGE = "sphinx-mathjax-offline"
MATHJAX_ENTRY = "tex-chtml.js"

# Abbreviations the notebooks use for the package's modules (``import numpy_shufflenet.functional as F``).
ALIASES = {"F": "numpy_shufflenet.functional", "ns": "numpy_shufflenet", "nn": "numpy_shufflenet.nn",
           "course": "numpy_shufflenet.course", "paper": "numpy_shufflenet.paper",
           "models": "numpy_shufflenet.models", "flow": "numpy_shufflenet.analysis.flow",
           "counting": "numpy_shufflenet.analysis.counting", "profiling": "numpy_shufflenet.analysis.profiling",
           "plotting": "numpy_shufflenet.analysis.plotting", "report": "numpy_shufflenet.paper.tables",
           "tables": "numpy_shufflenet.paper.tables", "experiments": "numpy_shufflenet.paper.experiments"}
PACKAGE = "numpy_shufflenet"
# What a bare name (no dot) may link to: a field of a cache or a method named ``forward`` is too common a word.
BARE_NAME_TYPES = {"module", "function", "class", "exception", "data"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_CALL = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)\(.*\)$", re.DOTALL)
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_/]*(\.py|/)$")


# ----------------------------------------------------------------------------------------------------------------
# offline MathJax
# ----------------------------------------------------------------------------------------------------------------
def mathjax_source():
    """The folder of MathJax's files inside the installed ``sphinx-mathjax-offline`` package."""
    spec = importlib.util.find_spec(MATHJAX_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionError(f"the docs need the PyPI package {MATHJAX_PACKAGE!r} for MathJax (install the docs "
                             f"extra: python -m pip install -e \".[docs]\")")
    folder = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax"
    if not (folder / MATHJAX_ENTRY).is_file():
        raise ExtensionError(f"{MATHJAX_PACKAGE}: expected {MATHJAX_ENTRY} in {folder}, found none")
    return folder


def copy_mathjax(app, exc):
    """Copy MathJax into the site, without the combined bundles at the top of its folder that no page loads."""
    if exc is not None or app.builder.format != "html":
        return
    source = mathjax_source()
    target = Path(app.outdir) / "_static" / "mathjax"
    if target.exists():
        shutil.rmtree(target)

    def unused_bundles(folder, names):
        if Path(folder) != source:
            return []
        return [n for n in names if n.endswith(".js") and n not in (MATHJAX_ENTRY, "core.js", "loader.js",
                                                                    "startup.js")]

    shutil.copytree(source, target, ignore=unused_bundles)


def check_mathjax_path(app, config):
    mathjax_source()                                   # fail early, before any notebook runs
    if config.mathjax_path != f"mathjax/{MATHJAX_ENTRY}":
        raise ExtensionError(f"conf.py: expected mathjax_path = 'mathjax/{MATHJAX_ENTRY}' (the offline copy), "
                             f"got {config.mathjax_path!r}")


# ----------------------------------------------------------------------------------------------------------------
# inline code -> the API reference
# ----------------------------------------------------------------------------------------------------------------
def _candidates(text):
    """The dotted name an inline literal refers to, or None when it is not a name, a call or a module's path."""
    text = text.strip()
    call = _CALL.match(text)
    if call:
        text = call.group(1)
    elif _PATH.match(text):
        text = text.removesuffix(".py").rstrip("/").replace("/", ".")
    return text if _NAME.match(text) else None


def resolve(text, objects):
    """The full name of the one documented object the literal ``text`` names, else None.

    ``objects`` maps full names to object types (``"function"``, ``"class"``, ...). ``text`` may start with one of
    :data:`ALIASES` or the package's name; the rest must be the end of exactly one documented name (a name with a
    dot may also reach methods and attributes, a bare name only modules, functions, classes and data).
    """
    name = _candidates(text)
    if name is None:
        return None
    head, _, rest = name.partition(".")
    if head in ALIASES and rest:
        prefix, tail = ALIASES[head], rest
    elif head == PACKAGE:
        prefix, tail = PACKAGE, rest
        if not rest:
            return PACKAGE if PACKAGE in objects else None
    else:
        prefix, tail = PACKAGE, name
    if f"{prefix}.{tail}" in objects:
        return f"{prefix}.{tail}"
    bare = "." not in tail
    found = [full for full, kind in objects.items()
             if full.startswith(prefix + ".") and full.endswith("." + tail) and (not bare or kind in BARE_NAME_TYPES)]
    return found[0] if len(found) == 1 else None


def link_literals(app, doctree, docname):
    """Make each inline literal of ``docname`` that names one documented object a link to its entry."""
    domain = app.env.get_domain("py")
    objects = {name: entry.objtype for name, entry in domain.objects.items()}
    for name in domain.modules:
        objects.setdefault(name, "module")
    for literal in list(doctree.findall(nodes.literal)):
        if any(isinstance(p, (nodes.reference, addnodes.pending_xref, addnodes.desc_signature,
                              nodes.literal_block)) for p in _ancestors(literal)):
            continue
        full = resolve(literal.astext(), objects)
        if full is None:
            continue
        if full in domain.objects:
            todoc, anchor = domain.objects[full].docname, domain.objects[full].node_id
        else:
            module = domain.modules[full]
            todoc, anchor = module.docname, module.node_id
        uri = app.builder.get_relative_uri(docname, todoc) + (f"#{anchor}" if anchor else "")
        ref = nodes.reference("", "", internal=True, refuri=uri, reftitle=full, classes=["ns-api-link"])
        literal.replace_self(ref)
        ref.append(literal)


def _ancestors(node):
    node = node.parent
    while node is not None:
        yield node
        node = node.parent


# ----------------------------------------------------------------------------------------------------------------
# what a cache holds
# ----------------------------------------------------------------------------------------------------------------
_FIELD_ALIAS = re.compile(r"^Alias for field number \d+$")


def field_comment(cls, field):
    """The comment after ``field``'s line in the class body of a ``NamedTuple`` (``xhat: np.ndarray  # ...``)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return None
    match = re.search(rf"^\s+{re.escape(field)}\s*:[^#\n]*#\s*(.+)$", source, re.MULTILINE)
    return match.group(1).strip() if match else None


def describe_fields(app, what, name, obj, options, lines):
    """A ``NamedTuple`` field's docstring says "Alias for field number 0"; say what the field holds instead, from
    the comment on its line in the source (caches name what they keep there)."""
    if what not in ("attribute", "property") or len(lines) != 1 or not _FIELD_ALIAS.match(lines[0].strip()):
        return
    owner, _, field = name.rpartition(".")
    module, _, cls_name = owner.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), cls_name)
    except (ImportError, AttributeError):
        return
    comment = field_comment(cls, field)
    lines[:] = [comment] if comment else []


# ----------------------------------------------------------------------------------------------------------------
# generated text
# ----------------------------------------------------------------------------------------------------------------
def _import_attr(dotted):
    module, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attr)


class TextDirective(Directive):
    """``.. ns-text:: package.module.NAME``: the string ``NAME`` holds, or returns when called without arguments,
    as a literal block (``:paragraph:``: as a paragraph of plain text)."""

    required_arguments = 1
    option_spec = {"paragraph": directives.flag}

    def run(self):
        value = _import_attr(self.arguments[0])
        text = value() if callable(value) else value
        if not isinstance(text, str):
            raise self.error(f"ns-text: {self.arguments[0]} gave {type(text).__name__}, expected a str")
        if "paragraph" in self.options:
            return [nodes.paragraph(text, text)]
        return [nodes.literal_block(text, text)]


class AcceptanceTableDirective(Directive):
    """``.. ns-acceptance-table::``: :func:`numpy_shufflenet.paper.tables.acceptance_rows` as a table."""

    def run(self):
        from numpy_shufflenet.paper import tables

        header = ("item", "paper", "ours (M multiply-adds unless said)", "convention", "match")
        rows = tables.acceptance_rows()
        if any(len(r) != len(header) for r in rows):
            raise self.error(f"ns-acceptance-table: expected rows of {len(header)} values from acceptance_rows()")
        wide = nodes.compound(classes=["full-width"])     # the book theme lets it use the margin too (a docutils
        #                                                   "container" would get Bootstrap's .container width)
        wide += _table(header, rows, classes=["ns-acceptance"])
        return [wide]


def _table(header, rows, classes=()):
    """A table node; each value is a string (a paragraph) or a node. Columns take the width their text needs."""
    table = nodes.table(classes=["colwidths-auto", *classes])
    group = nodes.tgroup(cols=len(header))
    table += group
    for _ in header:
        group += nodes.colspec(colwidth=1)
    head, body = nodes.thead(), nodes.tbody()
    group += head
    group += body
    for target, values in ((head, [header]), (body, rows)):
        for values_row in values:
            row = nodes.row()
            for value in values_row:
                entry = nodes.entry()
                para = nodes.paragraph()
                para += value if isinstance(value, nodes.Node) else nodes.Text(str(value))
                entry += para
                row += entry
            target += row
    return table


def cli_help(argv):
    """What ``python -m numpy_shufflenet ARGV --help`` prints, 100 columns wide."""
    from numpy_shufflenet.cli import main

    out = io.StringIO()
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        with contextlib.redirect_stdout(out):
            try:
                main([*argv, "--help"])
            except SystemExit:
                pass
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved
    return out.getvalue().rstrip()


def cli_commands():
    """The sub-commands of ``python -m numpy_shufflenet``, in the order the parser lists them."""
    import argparse

    from numpy_shufflenet.cli import build_parser

    for action in build_parser()._actions:                  # argparse keeps its sub-parsers in an action
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


class CliDirective(Directive):
    """``.. ns-cli:: [COMMAND ...]``: a section per command with its ``--help`` (every command when none named)."""

    optional_arguments = 20
    option_spec = {"commands-only": directives.flag}

    def run(self):
        commands = self.arguments or cli_commands()
        known = cli_commands()
        unknown = [c for c in commands if c not in known]
        if unknown:
            raise self.error(f"ns-cli: unknown command(s) {unknown}; the command line has {known}")
        out = []
        for command in commands:
            section = nodes.section(ids=[f"command-{command}"], names=[f"command {command}"])
            section += nodes.title(text=f"{command}")
            text = cli_help([command])
            section += nodes.literal_block(text, text)
            out.append(section)
        return out


def _has_option(command, option):
    """True when ``python -m numpy_shufflenet COMMAND`` takes ``option`` (as its ``--help`` shows)."""
    return re.search(rf"(^|[\s\[,]){re.escape(option)}\b", cli_help([command]), re.MULTILINE) is not None


class OnlyIfDirective(Directive):
    """``.. ns-only-if:: COMMAND [--option ...]``: the content, parsed, only when the command line has that command
    (and those options); ``:not:`` turns it round. Pages about the grader stay true whichever version they
    document: a section on a command appears with the command."""

    required_arguments = 1
    optional_arguments = 10
    has_content = True
    option_spec = {"not": directives.flag}

    def run(self):
        command, *options = self.arguments
        present = command in cli_commands() and all(_has_option(command, o) for o in options)
        if present == ("not" in self.options):
            return []
        container = nodes.container()
        self.state.nested_parse(self.content, self.content_offset, container)
        return container.children


class ExercisesDirective(Directive):
    """``.. ns-exercises::``: every graded exercise of the course's notebooks, its kind and points, read from the
    nbgrader metadata of the student copies the site shows (``notebooks/`` of the staged source); an exercise
    links to its check in the reference, ``course.check_<exercise>``, where there is one."""

    def run(self):
        import nbformat

        from numpy_shufflenet.course import checks, release

        env = self.state.document.settings.env
        paths = sorted((Path(env.srcdir) / "notebooks").glob("*.ipynb"))
        if not paths:
            raise self.error("ns-exercises: no notebooks in the site's notebooks/ folder")
        rows, total, count = [], 0, 0
        for path in paths:
            nb = nbformat.read(path, as_version=4)
            points = {}
            for cell in nb.cells:
                meta = release.nbgrader_meta(cell)
                if not meta.get("grade"):
                    continue
                if cell.cell_type == "markdown":
                    name, kind = meta["grade_id"], "written answer"
                else:
                    name, kind = release.exercise_of_check(meta["grade_id"]) or meta["grade_id"], "code"
                got = points.setdefault(name, [kind, 0])
                got[1] += meta.get("points", 0)
            for i, (name, (kind, p)) in enumerate(points.items()):
                label = nodes.literal(text=name)
                if hasattr(checks, f"check_{name}"):                  # the exercise's entry in the reference
                    ref = addnodes.pending_xref("", refdomain="py", reftype="func", refexplicit=True,
                                                reftarget=f"{checks.__name__}.check_{name}")
                    ref += label
                    label = ref
                rows.append((_doc_link(f"/notebooks/{path.stem}", path.stem.split("_")[0]) if i == 0 else "",
                             label, kind, f"{p:g}"))
                total += p
                count += 1
        rows.append(("all", f"{count} exercises", "", f"{total:g}"))
        return [_table(("notebook", "exercise", "kind", "points"), rows, classes=["ns-exercises"])]


def _doc_link(docname, text):
    """A link to the page ``docname`` (resolved when the site is written) showing ``text``."""
    ref = addnodes.pending_xref("", refdomain="std", reftype="doc", reftarget=docname, refexplicit=True,
                                refwarn=True)
    ref += nodes.inline(text=text)
    return ref


def setup(app):
    app.connect("config-inited", check_mathjax_path)
    app.connect("build-finished", copy_mathjax)
    app.connect("doctree-resolved", link_literals)
    app.connect("autodoc-process-docstring", describe_fields)
    app.add_directive("ns-text", TextDirective)
    app.add_directive("ns-acceptance-table", AcceptanceTableDirective)
    app.add_directive("ns-cli", CliDirective)
    app.add_directive("ns-only-if", OnlyIfDirective)
    app.add_directive("ns-exercises", ExercisesDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
