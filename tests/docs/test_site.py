"""The course site (``docs/``, built by ``bash docs/build.sh``) as its readers meet it.

The site is built once per session into ``build/site`` (set ``NUMPY_SHUFFLENET_SITE`` to the folder of a site
built earlier with ``docs/build.sh`` to test that one instead). Then:

* every notebook is a page, executed (outputs and figures are there), made from the *student* copy: no line of
  any solution or hidden test of the instructor notebooks is anywhere in the site's text (the regions are found
  with :func:`numpy_shufflenet.course.release.find_regions`, and the search is shown to find a line that is
  meant to be there);
* inline code on the course pages links to the API reference, and every such link lands on an entry;
* the generated pages say what the code says: the paper's table is ``acceptance_rows()``, the command-line page
  has every command;
* nothing on any page is loaded from anywhere but the site itself;
* headless Chromium, driven by selenium, reads every page from a server on 127.0.0.1: every formula rendered
  with no MathJax error, every image loaded, no console error, no request to any other host (a refusing proxy
  catches any that is tried, and Chromium's network log counts them), and a screenshot of each page under
  ``build/site-screenshots/`` with the table of what was found (``report.txt``).

Without the ``docs`` extra (Sphinx, myst-nb, the theme, the MathJax package) these tests are skipped with that
reason; without Chromium and chromedriver (Debian's ``chromium`` and ``chromium-driver``) or selenium, the browser
test is.
"""

import functools
import html
import http.server
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
SITE = ROOT / "build" / "site"
SHOTS = ROOT / "build" / "site-screenshots"
BUILD_TIMEOUT = 1800                 # seconds for the whole build (it runs every notebook once)
PAGE_TIMEOUT = 120                   # seconds for one page to load, typeset and show its images
MIN_SOLUTION_LINE = 8                # characters: shorter lines ("return dx") are not distinctive of a solution
DOCS_MODULES = ("sphinx", "myst_nb", "sphinx_book_theme", "sphinx-mathjax-offline")

pytestmark = [pytest.mark.slow, pytest.mark.docs]


def _missing_docs_extra():
    return [m for m in DOCS_MODULES if importlib.util.find_spec(m) is None]


def _browser():
    """``(chromium, chromedriver)`` paths, or a skip reason."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        return None, ("Chromium and chromedriver are not installed (Debian: apt-get install chromium "
                      "chromium-driver)")
    if importlib.util.find_spec("selenium") is None:
        return None, 'selenium is not installed (python -m pip install -e ".[docs]")'
    return (chromium, driver), None


# ----------------------------------------------------------------------------------------------------------------
# the site, built once per session
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def site():
    given = os.environ.get("NUMPY_SHUFFLENET_SITE")
    if given:
        path = Path(given)
        if not (path / "index.html").is_file():
            pytest.fail(f"NUMPY_SHUFFLENET_SITE={given}: no index.html there (build it with bash docs/build.sh)")
        return path
    missing = _missing_docs_extra()
    if missing:
        pytest.skip(f'the docs extra is not installed (missing {", ".join(missing)}; python -m pip install -e '
                    f'".[docs]")')
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    start = time.perf_counter()
    run = subprocess.run(["bash", str(ROOT / "docs" / "build.sh"), str(SITE)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        noise = re.compile(r"IPKernelApp\] WARNING \| Kernel is running over TCP")
        err = "\n".join(line for line in run.stderr.splitlines() if not noise.search(line))
        pytest.fail(f"bash docs/build.sh failed (exit {run.returncode}):\n{run.stdout[-4000:]}\n{err[-8000:]}",
                    pytrace=False)
    print(f"\nthe site was built in {seconds:.0f} s: {run.stdout.strip().splitlines()[-1]}")
    return SITE


def _pages(site):
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)


def _text_of_html(text):
    """What a page says: tags removed (code is split into highlighting spans), entities decoded."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.DOTALL | re.IGNORECASE)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def _site_texts(site):
    """``{relative path: text}`` of every text file of the site; notebooks as the sources of their cells."""
    texts = {}
    for path in sorted(site.rglob("*")):
        if not path.is_file() or path.suffix not in (".html", ".txt", ".js", ".json", ".ipynb", ".md", ".py"):
            continue
        if "mathjax" in path.relative_to(site).parts:
            continue
        raw = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".html":
            raw = _text_of_html(raw)
        elif path.suffix == ".ipynb":
            raw = "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                            for c in json.loads(raw)["cells"])
        texts[str(path.relative_to(site))] = raw
    return texts


def _notebook_page(site, path):
    return site / "notebooks" / f"{path.stem}.html"


# ----------------------------------------------------------------------------------------------------------------
# the course pages
# ----------------------------------------------------------------------------------------------------------------
def test_every_notebook_is_an_executed_page(site):
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"
    nbformat = pytest.importorskip("nbformat")
    for path in NOTEBOOKS:
        page = _notebook_page(site, path)
        assert page.is_file(), f"{path.name}: no page {page.relative_to(site)}"
        text = page.read_text(encoding="utf-8")
        nb = nbformat.read(path, as_version=4)
        title = next(line.lstrip("# ").strip() for cell in nb.cells if cell.cell_type == "markdown"
                     for line in cell.source.splitlines() if line.startswith("# "))
        assert title in _text_of_html(text), f"{path.name}: the page does not show the title {title!r}"
        code_cells = sum(cell.cell_type == "code" for cell in nb.cells)
        outputs = text.count('class="cell_output')
        assert outputs >= 1, f"{path.name}: the page shows no output of its {code_cells} code cells (not executed?)"
        if "plt.show()" in "".join(c.source for c in nb.cells if c.cell_type == "code"):
            assert re.search(r'<img[^>]+src="[^"]*_images/', text), f"{path.name}: plots, but the page has no figure"
        if any(c.cell_type == "code" and "### BEGIN SOLUTION" in c.source for c in nb.cells):
            plain = _text_of_html(text)
            assert 'NotImplementedError("exercise:' in plain, f"{path.name}: the exercises are not stubs"
            assert "not done yet" in plain, f"{path.name}: no check says 'not done yet' (was it graded mode?)"


def _regions(nb):
    """``(code, answers, visible, visible_code)`` of an instructor notebook: the stripped lines inside its
    solution and hidden-test regions (markers excluded), the texts of its written answers, the stripped lines of
    every other cell and of the code outside the regions (what the student copy shows), and those of code."""
    from numpy_shufflenet.course import release

    code, answers, visible, visible_code = set(), [], set(), set()
    for cell in nb.cells:
        lines = cell.source.splitlines()
        if cell.cell_type == "markdown" and release.nbgrader_meta(cell).get("solution"):
            answers.append(cell.source)
            continue
        marked = set()
        if cell.cell_type == "code":
            for region in release.find_regions(cell.source):
                marked.update(range(region.begin, region.end + 1))
        for i, line in enumerate(lines):
            if line.strip():
                (code if i in marked else visible).add(line.strip())
                if cell.cell_type == "code" and i not in marked:
                    visible_code.add(line.strip())
    markers = {release.BEGIN_SOLUTION, release.END_SOLUTION, release.BEGIN_HIDDEN, release.END_HIDDEN}
    return code - markers, answers, visible, visible_code


def _words(text):
    """Text as a string of words: markdown emphasis and code marks dropped, all white space one space."""
    return " ".join(re.sub(r"[*_`$]", " ", text).split())


def _phrases(text, n=8):
    """Every run of ``n`` consecutive words of ``text`` (after :func:`_words`)."""
    words = _words(text).split()
    return {" ".join(words[i:i + n]) for i in range(max(len(words) - n + 1, 0))}


def test_no_solution_or_hidden_test_reaches_the_site(site):
    """Every line of every solution and hidden test, and every 8-word phrase of every written answer, of the
    instructor notebooks, searched for in every text file of the site (code lines whole, as a page shows them).
    A line that the course hands out elsewhere (notebook 04 gives the forward passes of notebooks 01-03 to
    differentiate) is not a secret, and lines shorter than ``MIN_SOLUTION_LINE`` say too little to count."""
    nbformat = pytest.importorskip("nbformat")
    texts = _site_texts(site)
    lines = {name: {line.strip() for line in text.splitlines()} for name, text in texts.items()}
    words = {name: _words(text) for name, text in texts.items()}
    notebooks = {path: _regions(nbformat.read(path, as_version=4)) for path in NOTEBOOKS}
    handed_out = set().union(*(visible for _, _, visible, _ in notebooks.values()))
    checked, leaks = 0, []
    for path, (code, answers, _, visible_code) in notebooks.items():
        page = str(_notebook_page(site, path).relative_to(site))
        for line in sorted(code - handed_out):
            if len(line) < MIN_SOLUTION_LINE:
                continue
            checked += 1
            where = [name for name in texts if line in lines[name]]
            if where:
                leaks.append(f"{path.name}: solution or hidden-test line {line!r} in {', '.join(where[:3])}")
        for answer in answers:
            for phrase in sorted(_phrases(answer)):
                checked += 1
                where = [name for name in texts if phrase in words[name]]
                if where:
                    leaks.append(f"{path.name}: written answer {phrase!r} in {', '.join(where[:3])}")
                    break
        # the search finds what is meant to be there: a line of the page's own code
        shown = sorted(line for line in visible_code if len(line) >= 20 and not line.startswith("#"))
        assert not shown or shown[0] in lines[page], \
            f"{path.name}: the search cannot find the visible line {shown[0]!r} on {page}"
    assert checked > 0, "no solution line was checked: are the instructor notebooks' solutions marked?"
    assert not leaks, "solutions, hidden tests or answers on the site:\n" + "\n".join(leaks)


def test_course_pages_link_to_the_reference(site):
    links = {}
    for page in _pages(site):
        if page.parent.name != "notebooks":
            continue
        text = page.read_text(encoding="utf-8")
        for href in re.findall(r'<a class="[^"]*ns-api-link[^"]*" href="([^"]+)"', text):
            links.setdefault(page, []).append(href)
    shuffle_page = next((p for p in links if p.name.startswith("02_")), None)
    assert shuffle_page is not None, "the page of notebook 02 links to nothing in the reference"
    assert any(h.endswith("#numpy_shufflenet.functional.shuffle.channel_shuffle_forward")
               for h in links[shuffle_page]), "notebook 02's `F.channel_shuffle_forward` is not linked"
    for page, hrefs in links.items():
        for href in hrefs:
            target, _, anchor = urljoin(page.as_uri(), href).partition("#")
            target_path = Path(urlparse(target).path)
            assert target_path.is_file(), f"{page.name}: link {href} goes nowhere"
            assert f'id="{anchor}"' in target_path.read_text(encoding="utf-8"), \
                f"{page.name}: link {href}: no entry {anchor!r} on {target_path.name}"


def _literal_blocks(doc):
    """The literal blocks (after a ``::``) of a docstring, each as its list of stripped lines."""
    blocks, lines = [], doc.splitlines()
    for i, line in enumerate(lines):
        if not line.rstrip().endswith("::"):
            continue
        indent = len(line) - len(line.lstrip())
        block = []
        for follow in lines[i + 1:]:
            if follow.strip() and len(follow) - len(follow.lstrip()) <= indent:
                break
            block.append(follow.strip())
        blocks.append([b for b in block if b])
    return [b for b in blocks if b]


def test_each_functional_pair_has_its_page_with_equations_and_shapes(site):
    """Every module of ``functional/`` has a page with its text, its equations exactly as the docstrings write
    them (every literal block, line by line), and an entry with the shapes for every pair."""
    import importlib
    import inspect
    import pkgutil

    from numpy_shufflenet import functional

    equations = 0
    for info in pkgutil.iter_modules(functional.__path__):
        module = importlib.import_module(f"{functional.__name__}.{info.name}")
        page = site / "textbook" / "functional" / f"{info.name}.html"
        assert page.is_file(), f"functional/{info.name}.py has no page in the reference"
        raw = page.read_text(encoding="utf-8")
        lines = {line.strip() for line in _text_of_html(raw).splitlines()}
        docs = [inspect.getdoc(module)] + [inspect.getdoc(f) for name, f in vars(module).items()
                                           if inspect.isfunction(f) and f.__module__ == module.__name__
                                           and not name.startswith("_")]
        for block in (b for doc in docs if doc for b in _literal_blocks(doc)):
            for line in block:
                assert line in lines, f"{page.name}: the equation line {line!r} is not shown as written"
                equations += 1
        for name, f in vars(module).items():
            if inspect.isfunction(f) and f.__module__ == module.__name__ and name.endswith("_forward"):
                anchor = f'id="{module.__name__}.{name}"'
                assert anchor in raw, f"{page.name}: no entry for {name}"
                entry = raw[raw.index(anchor) + len(anchor):]
                entry = entry[:entry.find('<dt class="sig') % (len(entry) + 1)]     # up to the next entry
                assert "Returns" in entry and "shape" in entry, f"{page.name}: {name}'s entry shows no shapes"
    assert equations > 20, f"only {equations} lines of equations found in the docstrings of functional/"


# ----------------------------------------------------------------------------------------------------------------
# the generated pages
# ----------------------------------------------------------------------------------------------------------------
def test_the_paper_page_is_the_acceptance_table(site):
    from numpy_shufflenet.paper import tables

    text = _text_of_html((site / "instructors" / "paper.html").read_text(encoding="utf-8"))
    for row in tables.acceptance_rows():
        for value in row:
            assert str(value) in text, f"the paper page lacks {value!r} (row {row[0]!r})"
    assert tables.format_table1().splitlines()[2] in text


def test_the_command_line_page_has_every_command(site):
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    try:
        import numpy_shufflenet_docs as ext
    finally:
        sys.path.pop(0)
    text = _text_of_html((site / "instructors" / "cli.html").read_text(encoding="utf-8"))
    commands = ext.cli_commands()
    assert {"make-student", "grade"} <= set(commands)
    for command in commands:
        assert ext.cli_help([command]).splitlines()[0] in text, f"the command line page lacks {command}"


def test_the_instructor_page_lists_every_exercise(site):
    nbformat = pytest.importorskip("nbformat")
    from numpy_shufflenet.course import release

    text = _text_of_html((site / "instructors" / "index.html").read_text(encoding="utf-8"))
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            meta = release.nbgrader_meta(cell)
            if meta.get("grade"):
                name = release.exercise_of_check(meta["grade_id"]) or meta["grade_id"]
                assert name in text, f"the instructor page does not list {path.name}'s exercise {name!r}"


def test_every_page_loads_only_from_the_site(site):
    """No ``src`` or ``href`` of a script, style sheet, image or font points off the site; MathJax is local."""
    remote = re.compile(r'<(script|link|img|iframe|source)\b[^>]*\b(src|href)="((https?:)?//[^"]+)"', re.IGNORECASE)
    found = []
    for page in _pages(site):
        for match in remote.finditer(page.read_text(encoding="utf-8")):
            found.append(f"{page.relative_to(site)}: <{match.group(1)} {match.group(2)}={match.group(3)}>")
    assert not found, "pages load from other hosts:\n" + "\n".join(found)
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()
    math_pages = [p for p in _pages(site) if 'class="math' in p.read_text(encoding="utf-8")]
    assert math_pages, "no page has math"
    for page in math_pages:
        assert 'mathjax/tex-chtml.js' in page.read_text(encoding="utf-8"), f"{page.name}: math without MathJax"


# ----------------------------------------------------------------------------------------------------------------
# in Chromium
# ----------------------------------------------------------------------------------------------------------------
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(site):
    """``http://127.0.0.1:PORT/``, a server of the site on a free port (a thread, stopped after the module)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=site))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _refusing_port():
    """A port on 127.0.0.1 that nothing listens on: a proxy there refuses every connection."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    paths, reason = _browser()
    if paths is None:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = paths
    os.environ.setdefault("SE_OFFLINE", "true")              # selenium must not look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1400", "--hide-scrollbars",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
                 f"--proxy-server=http://127.0.0.1:{_refusing_port()}"):      # loopback bypasses it; nothing else
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    driver.set_script_timeout(PAGE_TIMEOUT)
    yield driver
    driver.quit()


# Runs in the page once it has loaded: waits for MathJax's first typesetting and for every image, then says what
# it found. Lazy images are told to load now, so that the whole page is checked without scrolling.
_INSPECT = """
const done = arguments[arguments.length - 1];
const images = Array.from(document.images);
images.forEach(img => { img.loading = "eager"; });
const loaded = Promise.all(images.map(img => img.complete ? null : new Promise(ok => {
    img.addEventListener("load", ok); img.addEventListener("error", ok); })));
const typeset = (window.MathJax && MathJax.startup && MathJax.startup.promise) || Promise.resolve();
Promise.all([loaded, typeset]).then(() => {
    const sources = Array.from(document.querySelectorAll(".math"));
    done({
        mathjax: !!(window.MathJax && MathJax.version),
        sources: sources.length,
        unrendered: sources.filter(el => !el.querySelector("mjx-container")).map(el => el.textContent.slice(0, 80)),
        formulas: document.querySelectorAll("mjx-container").length,
        errors: Array.from(document.querySelectorAll("mjx-merror, [data-mjx-error]"))
            .map(el => el.getAttribute("data-mjx-error") || el.textContent.slice(0, 80)),
        images: images.length,
        broken: images.filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.src),
        title: document.title,
    });
}, err => done({failure: String(err)}));
"""


_SHOW_FIRST_FIGURE = """
const figure = document.querySelector(".cell_output img");
if (!figure) { return false; }
figure.scrollIntoView({block: "center"});
return true;
"""


def _requests(driver):
    """The URLs the page asked for and the responses that failed, from Chromium's performance log."""
    urls, failed = [], []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
        elif message["method"] == "Network.responseReceived" and message["params"]["response"]["status"] >= 400:
            failed.append(f'{message["params"]["response"]["status"]} {message["params"]["response"]["url"]}')
    return urls, failed


def _off_machine(url):
    """True for a request that would leave the machine: not 127.0.0.1, and not data held by the page or the
    browser itself (``data:``, ``blob:``, ``about:``)."""
    parsed = urlparse(url)
    return parsed.scheme not in ("data", "blob", "about") and parsed.hostname != "127.0.0.1"


def test_every_page_in_chromium(site, served, chromium):
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    pages = _pages(site)
    assert len(pages) >= len(NOTEBOOKS) + 5
    rows, problems = [], []
    chromium.get("about:blank")                    # the browser's own start page is not the site's business
    chromium.get_log("browser")
    chromium.get_log("performance")
    for page in pages:
        name = str(page.relative_to(site))
        chromium.get(served + name)
        found = chromium.execute_async_script(_INSPECT)
        if "failure" in found:
            problems.append(f"{name}: the page's check failed: {found['failure']}")
            continue
        urls, failed = _requests(chromium)
        console = [e["message"] for e in chromium.get_log("browser") if e["level"] == "SEVERE"]
        off = [u for u in urls if _off_machine(u)]
        shot = name.replace("/", "__").removesuffix(".html")
        chromium.save_screenshot(str(SHOTS / f"{shot}.png"))
        if chromium.execute_script(_SHOW_FIRST_FIGURE):           # a notebook's first figure, as a reader scrolls
            chromium.save_screenshot(str(SHOTS / f"{shot}__first-figure.png"))
        rows.append((name, found["formulas"], found["images"], len(off), len(console), len(urls)))
        if found["sources"] and not found["mathjax"]:
            problems.append(f"{name}: {found['sources']} formulas but MathJax did not load")
        for what, items in (("unrendered formulas", found["unrendered"]), ("MathJax errors", found["errors"]),
                            ("images not loaded", found["broken"]), ("requests off the machine", off),
                            ("failed responses", failed), ("console errors", console)):
            if items:
                problems.append(f"{name}: {len(items)} {what}: {items[:3]}")
    header = ("page", "formulas", "images", "requests off the machine", "console errors", "requests")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    table = "\n".join(" | ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in [header] + rows)
    total = (f"{len(rows)} pages, {sum(r[1] for r in rows)} formulas, {sum(r[2] for r in rows)} images, "
             f"{sum(r[3] for r in rows)} requests off the machine, {sum(r[4] for r in rows)} console errors")
    (SHOTS / "report.txt").write_text(table + "\n" + total + "\n")
    print(f"\n{table}\n{total}\nscreenshots in {SHOTS}")
    assert not problems, "\n".join(problems)
    assert sum(r[1] for r in rows) > 0, "no formula rendered on any page"
    assert sum(r[2] for r in rows) > 0, "no image on any page"
