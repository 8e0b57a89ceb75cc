#!/usr/bin/env bash
# Creates (or reuses) one of the sandbox's pinned program venvs and prints its path on the last line:
#
#   sandbox-venv.sh vllm    vLLM 0.8.5 (tests/cluster/requirements-vllm.txt): its own start-up checks
#                           on every vLLM pod (pod_runner.py); about 4 min and 8 GB the first time
#   sandbox-venv.sh webui   Open WebUI 0.6.18 (tests/cluster/requirements-webui.txt): the real WebUI of
#                           every WebUI pod (pod_webui.py); about 3 min and 8 GB the first time
#
# Cached like the project venv (hack/env.sh): keyed by the hash of the requirement file and this
# script, so a fresh clone on a machine that built it takes a second; a new machine installs it from
# PyPI (the frozen sets need no resolver run: pip install --no-deps).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${HAW_ICC_CACHE:-$HOME/.cache/haw-icc-llm}
py=${PYTHON:-python3}
case "${1:-}" in
  vllm) name=vllm-0.8.5 check="import vllm.entrypoints.openai.cli_args" ;;
  webui) name=webui-0.6.18 check="import open_webui.main" ;;
  *) echo "usage: $0 vllm|webui" >&2; exit 2 ;;
esac
req="$here/tests/cluster/requirements-$1.txt"
key=$(cat "$req" "$here/hack/sandbox-venv.sh" | sha256sum | cut -c1-12)
venv="$cache/$name-$key"
if [ ! -f "$venv/.complete" ]; then
  echo "sandbox-venv: building $venv (first time: 3 to 4 min, 8 GB)" >&2
  rm -rf "$venv"
  mkdir -p "$cache"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip==25.3 >&2
  "$venv/bin/pip" install -q --no-deps -r "$req" >&2
  # The import check runs offline and in a scratch directory (Open WebUI writes its data dir on import).
  (cd "$(mktemp -d)" && mkdir data && DATA_DIR="$PWD/data" OFFLINE_MODE=true HF_HUB_OFFLINE=1 "$venv/bin/python" -c "$check") >/dev/null 2>&1 \
    || { echo "sandbox-venv: '$check' fails in $venv" >&2; exit 1; }
  touch "$venv/.complete"
fi
echo "$venv"
