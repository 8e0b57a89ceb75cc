#!/usr/bin/env bash
# ansible-test sanity must run from .../ansible_collections/<namespace>/<name>/: copy the tracked
# (and untracked, not ignored) files there and run it with the project's Python.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${HAW_ICC_CACHE:-$HOME/.cache/haw-icc-llm}
mkdir -p "$cache/sanity"
top=$(mktemp -d "$cache/sanity/run.XXXXXX")
trap 'rm -rf "$top"' EXIT
dest="$top/ansible_collections/haw_icc/llm"
mkdir -p "$dest"
(cd "$repo" && git ls-files -co --exclude-standard | grep -v '^\.cache/' | tar -cf - -T -) | tar -xf - -C "$dest"
cd "$dest"
git init -q . && git add -A >/dev/null   # ansible-test lists the files through git
export PATH="$repo/.venv/bin:$PATH"
ansible-test sanity --venv --python 3.11 --color no ${SANITY_ARGS:-}
