#!/usr/bin/env bash
# Runs every Molecule scenario (extensions/molecule/<scenario>) against the running sandbox.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo/extensions" 2>/dev/null || { echo "molecule: no scenarios yet"; exit 0; }
export PATH="$repo/.venv/bin:$PATH" ANSIBLE_CONFIG="$repo/ansible.cfg"
rc=0
for s in molecule/*/; do
  s=$(basename "$s"); [ "$s" = default ] && continue
  echo "--- molecule scenario $s"
  molecule test -s "$s" || rc=1
done
exit $rc
