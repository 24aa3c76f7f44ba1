#!/usr/bin/env bash
# mypy on the installed layout: training/, export/, serving/ live at the root but import as baton.*,
# so type-check a tree of symlinks shaped like the package.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=build/typecheck
rm -rf "$tree" && mkdir -p "$tree/baton"
for f in baton/*.py baton/*/; do f="${f%/}"; [ "$(basename "$f")" = __pycache__ ] || ln -s "$PWD/$f" "$tree/baton/$(basename "$f")"; done
for pkg in training export serving tools; do ln -s "$PWD/$pkg" "$tree/baton/$pkg"; done
cd "$tree" && "${PYTHON:-python}" -m mypy --config-file ../../pyproject.toml -p baton
