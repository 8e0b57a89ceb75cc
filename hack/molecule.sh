#!/usr/bin/env bash
# Runs every Molecule scenario (extensions/molecule/<scenario>/molecule.yml) against the running
# sandbox named by SANDBOX_DIR (default: <repo>/.sandbox), as the namespace-only student wstu002.
# Usage: hack/molecule.sh [scenario...]   (all scenarios when none is given)
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export SANDBOX_DIR=${SANDBOX_DIR:-$repo/.sandbox}
[ -f "$SANDBOX_DIR/students/wstu002-default.kubeconfig" ] || {
  echo "molecule: no sandbox at $SANDBOX_DIR (start it with make sandbox-up)"; exit 1; }
cd "$repo/extensions" 2>/dev/null || { echo "molecule: no scenarios yet"; exit 0; }
export PATH="$repo/.venv/bin:$PATH" ANSIBLE_CONFIG="$repo/ansible.cfg"
scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  for f in molecule/*/molecule.yml; do scenarios+=("$(basename "$(dirname "$f")")"); done
fi
rc=0
failed=()
for s in "${scenarios[@]}"; do
  echo "--- molecule scenario $s"
  if ! molecule test -s "$s"; then rc=1; failed+=("$s"); fi
done
[ $rc -eq 0 ] && echo "--- molecule: ${#scenarios[@]} scenarios passed" || echo "--- molecule FAILED: ${failed[*]}"
exit $rc
