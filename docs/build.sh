#!/usr/bin/env bash
# Build the course site into build/site (or the folder given as the first argument):
#
#     python -m pip install -e ".[docs]"
#     bash docs/build.sh
#
# 1. stage docs/ in build/docs-src and write the *student* copies of notebooks/ into it (make-student: no
#    solution, no hidden test reaches the site);
# 2. run Sphinx with warnings as errors: it executes each student copy once (Run All, stubs and all), renders it,
#    and builds the API reference from the docstrings; MathJax is copied from the sphinx-mathjax-offline package,
#    so the site needs no network to build or to read.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/build/site}"
stage="$root/build/docs-src"
doctrees="$root/build/docs-doctrees"

if [ -e "$out" ] && [ -n "$(ls -A "$out")" ] && [ ! -e "$out/.buildinfo" ]; then
    echo "docs/build.sh: $out exists and is not a Sphinx build; expected a new, empty or earlier site folder" >&2
    exit 2
fi
rm -rf "$stage" "$doctrees" "$out"
mkdir -p "$stage"
cp -R "$root/docs/." "$stage/"
rm -f "$stage/build.sh"
python -m numpy_shufflenet make-student "$root/notebooks" "$stage/notebooks"
# The notebooks run in their folder and find the test fixtures at ../tests/fixtures, as in the repository.
ln -s "$root/tests" "$stage/tests"

export NUMPY_SHUFFLENET_DOCS_ROOT="$root"
unset MPLBACKEND                         # the kernel's own inline backend, so that the figures reach the pages
unset NUMPY_SHUFFLENET_GRADING           # the pages show what students see: unfinished exercises say so
start=$SECONDS
python -m sphinx -W --keep-going -q -b html -d "$doctrees" "$stage" "$out"
pages=$(find "$out" -name '*.html' -not -path '*/_static/*' | wc -l)
echo "docs/build.sh: $pages pages, $(du -sh "$out" | cut -f1) in $out ($((SECONDS - start)) s)"
