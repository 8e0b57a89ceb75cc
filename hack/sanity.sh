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
# ansible-test fetches its pip bootstrap script from a host we cannot reach; give it ours.
pipver=$(python -c 'import ansible_test._internal.python_requirements as r, re, inspect; print(re.search(r"pip=.([0-9.]+).", inspect.getsource(r)).group(1))')
boot="$HOME/.ansible/test/cache/get_pip_${pipver//./_}.py"
mkdir -p "$(dirname "$boot")"; cp "$repo/hack/get_pip_offline.py" "$boot"
read -ra extra <<< "${SANITY_ARGS:-}"
ansible-test sanity --venv --python 3.11 --color no "${extra[@]}"
