#!/usr/bin/env bash
# Creates (or reuses) the venv of the ansible-core 2.21 test job (requirements-core221.txt, with
# pyenv's Python 3.12) and prints its path on the last line. Cached like hack/env.sh: keyed by the
# hash of the requirement file and this script. Used by tests/integration/test_installed_collection.py.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${HAW_ICC_CACHE:-$HOME/.cache/haw-icc-llm}
py=${PYTHON312:-$(pyenv prefix 3.12.1 2>/dev/null || echo /root/.pyenv/versions/3.12.1)/bin/python}
req="$here/requirements-core221.txt"
key=$(cat "$req" "$here/hack/venv-core221.sh" | sha256sum | cut -c1-12)
venv="$cache/core221-$key"
if [ ! -f "$venv/.complete" ]; then
  echo "venv-core221: building $venv (first time: about 2 min)" >&2
  rm -rf "$venv"
  mkdir -p "$cache"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip==25.3 >&2
  "$venv/bin/pip" install -q -r "$req" >&2
  "$venv/bin/ansible" --version | head -1 | grep -q "core 2.21" || { echo "venv-core221: not ansible-core 2.21" >&2; exit 1; }
  touch "$venv/.complete"
fi
echo "$venv"
