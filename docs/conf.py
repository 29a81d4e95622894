"""Sphinx configuration of the course site. Build it with ``bash docs/build.sh`` (see that script).

The build reads a staged copy of this folder into which ``build.sh`` has written the student copies of the
notebooks (``make-student``); ``NUMPY_SHUFFLENET_DOCS_ROOT`` names the repository whose package is documented.
"""

import os
import sys
from pathlib import Path

ROOT = Path(os.environ.get("NUMPY_SHUFFLENET_DOCS_ROOT", Path(__file__).resolve().parents[1])).resolve()
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

import numpy_shufflenet  # noqa: E402

if not Path(numpy_shufflenet.__file__).resolve().is_relative_to(ROOT):
    raise RuntimeError(f"docs: numpy_shufflenet is imported from {numpy_shufflenet.__file__}, expected the "
                       f"package of {ROOT} (install it with pip install -e, or set PYTHONPATH={ROOT})")

project = "numpy_shufflenet"
author = "the numpy_shufflenet authors"
copyright = "the numpy_shufflenet authors"
release = version = numpy_shufflenet.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "numpy_shufflenet_docs",        # _ext/: offline MathJax, links to the reference, generated tables and help
]

exclude_patterns = ["_build", "build.sh", "**.ipynb_checkpoints", "tests"]     # tests: the fixtures notebook 08 reads
root_doc = "index"

# --- notebooks: the student copies, executed once at build time --------------------------------------------------
nb_execution_mode = "force"
nb_execution_timeout = 600            # per cell; a notebook normally needs seconds
nb_execution_raise_on_error = True    # a cell that raises fails the build (a student copy must Run All)
nb_execution_show_tb = True
nb_merge_streams = True
nb_ipywidgets_js = {}                 # no widget scripts from a CDN (the notebooks use no widgets)
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# --- API reference --------------------------------------------------------------------------------------------------
autodoc_default_options = {"members": True, "member-order": "bysource", "show-inheritance": False}
autodoc_typehints = "none"
autodoc_preserve_defaults = True
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_param = False       # a type written as prose ("int, groups of ...") is text, not cross-references
add_module_names = False
highlight_language = "none"      # a docstring's literal blocks are equations and tables, not Python

# --- math: MathJax from the sphinx-mathjax-offline wheel, copied into _static (never a CDN) -----------------------
mathjax_path = "mathjax/tex-chtml.js"

# --- HTML -----------------------------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "numpy_shufflenet: ShuffleNet from scratch in NumPy"
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "use_download_button": True,
    "use_fullscreen_button": False,
}
html_context = {"default_mode": "auto"}     # light or dark as the reader's system says, from the first visit
html_favicon = "_static/favicon.svg"        # (without one the browser asks for /favicon.ico, which is not there)
html_static_path = ["_static"]
html_show_sourcelink = True
html_last_updated_fmt = None
smartquotes = False          # text says what the code says: '--jobs', "Table 2's errors" stay as they are
