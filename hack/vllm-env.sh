#!/usr/bin/env bash
# Creates (or reuses) the sandbox's vLLM 0.8.5 venv and prints its path on the last line. Cached like
# the project venv (hack/env.sh): keyed by the hash of tests/cluster/requirements-vllm.txt, so a fresh
# clone on a machine that built it takes a second; a new machine installs it from PyPI (about 4 min,
# 8 GB with torch and its CUDA libraries; no GPU is needed for what the sandbox runs).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${HAW_ICC_CACHE:-$HOME/.cache/haw-icc-llm}
py=${PYTHON:-python3}
req="$here/tests/cluster/requirements-vllm.txt"
key=$(cat "$req" "$here/hack/vllm-env.sh" | sha256sum | cut -c1-12)
venv="$cache/vllm-0.8.5-$key"
if [ ! -f "$venv/.complete" ]; then
  echo "vllm-env: building $venv (first time: about 4 min)" >&2
  rm -rf "$venv"
  mkdir -p "$cache"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip==25.3 >&2
  "$venv/bin/pip" install -q --no-deps -r "$req" >&2
  "$venv/bin/python" -c "import vllm.entrypoints.openai.cli_args" >/dev/null 2>&1 \
    || { echo "vllm-env: vLLM does not import in $venv" >&2; exit 1; }
  touch "$venv/.complete"
fi
echo "$venv"
