#!/usr/bin/env bash
# Install ctui as a tool in its own environment, pinned to the versions in uv.lock, so that
# `ctui` works in any folder; `--demo` then builds the demo project and opens it.
#
#   bash install.sh [--demo]
#
# Needs Python >= 3.11 and git. Installs uv with pip when it is missing. The tool lives where
# `uv tool dir` says; its `ctui` goes to `uv tool dir --bin` (linked into /usr/local/bin too
# when that folder is on PATH and writable and the other one is not on PATH).
set -euo pipefail
cd "$(dirname "$0")"
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if ! command -v uv >/dev/null 2>&1; then
  say "installing uv (pip)"
  python3 -m pip install -q uv
fi

say "installing ctui and its locked dependencies (a minute or so the first time)"
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
uv export --frozen --no-dev --no-emit-project --no-hashes --quiet -o "$constraints"
# byte-compiled once here: every later start is fast even with PYTHONDONTWRITEBYTECODE set
uv tool install --force --compile-bytecode --constraints "$constraints" .

bin_dir=$(uv tool dir --bin)
ctui="$bin_dir/ctui"
on_path() { case ":$PATH:" in *":$1:"*) return 0 ;; *) return 1 ;; esac; }
if on_path "$bin_dir"; then
  say "ctui is at $ctui"
elif on_path /usr/local/bin && [ -w /usr/local/bin ]; then
  ln -sf "$ctui" /usr/local/bin/ctui
  say "ctui is at $ctui, linked from /usr/local/bin/ctui"
else
  uv tool update-shell >/dev/null 2>&1 || true
  say "ctui is at $ctui; $bin_dir is not on your PATH yet: open a new shell (uv added it)," \
    "or run: export PATH=\"$bin_dir:\$PATH\""
fi
"$ctui" --version

if [ "${1:-}" = "--demo" ]; then
  say "building the demo project"
  exec "$ctui" demo
fi
