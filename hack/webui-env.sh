#!/usr/bin/env bash
# Creates (or reuses) the sandbox's Open WebUI 0.6.18 venv and prints its path on the last line, cached
# like hack/vllm-env.sh: keyed by the hash of tests/cluster/requirements-webui.txt and this script.
# A new machine installs it from PyPI: 168 s and 8.2 GB (torch comes with sentence-transformers) on
# 2026-12-02. Groundwork for issue 16 (the real Open WebUI in the sandbox): make test does not call it yet.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${HAW_ICC_CACHE:-$HOME/.cache/haw-icc-llm}
py=${PYTHON:-python3}
req="$here/tests/cluster/requirements-webui.txt"
key=$(cat "$req" "$here/hack/webui-env.sh" | sha256sum | cut -c1-12)
venv="$cache/webui-0.6.18-$key"
if [ ! -f "$venv/.complete" ]; then
  echo "webui-env: building $venv (first time: about 3 min, 8 GB)" >&2
  rm -rf "$venv"
  mkdir -p "$cache"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip==25.3 >&2
  "$venv/bin/pip" install -q --no-deps -r "$req" >&2
  "$venv/bin/python" -c "import open_webui" >/dev/null 2>&1 \
    || { echo "webui-env: Open WebUI does not import in $venv" >&2; exit 1; }
  touch "$venv/.complete"
fi
echo "$venv"
