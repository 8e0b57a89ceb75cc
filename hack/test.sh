#!/usr/bin/env bash
# The one test command (`make test`, called by .ci/run): starts a private sandbox, runs every
# suite against it, stops it, and exits non-zero if any suite failed.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo" || exit 1
export PATH="$repo/.venv/bin:$PATH" ANSIBLE_CONFIG="$repo/ansible.cfg"
# A sandbox of its own (own directory and ports), so a running demo is not disturbed.
export SANDBOX_DIR="$repo/.sandbox-test" SANDBOX_API_PORT=26443 SANDBOX_ETCD_PORT=22379 \
  SANDBOX_ETCD_PEER_PORT=22380 SANDBOX_KWOK_PORT=20247 SANDBOX_ENGINE_PORT=28000 \
  SANDBOX_HUB_PORT=28090
# Every vLLM pod of the tests runs vLLM 0.8.5's own start-up checks (tests/cluster/pod_runner.py).
export SANDBOX_VLLM_CHECKS=1
suites=${TEST_SUITES:-sandbox pytest molecule lint sanity}
failed=()
declare -A took
t_all=$(date +%s)

run_suite() { # name, command...
  local name=$1; shift
  local t0; t0=$(date +%s)
  echo "=== suite: $name"
  if "$@"; then echo "=== suite: $name passed"; else echo "=== suite: $name FAILED"; failed+=("$name"); fi
  took[$name]=$(( $(date +%s) - t0 ))
}

cleanup() { bash tests/cluster/sandbox.sh down >/dev/null 2>&1 || true; }
trap cleanup EXIT

for s in $suites; do
  case "$s" in
    sandbox) run_suite sandbox-up bash tests/cluster/sandbox.sh up ;;
    # One pytest run: unit tests (no cluster), sandbox smoke checks, integration tests.
    # -vv: failure reasons and the short summary are never cut to the terminal width.
    pytest) run_suite pytest python -m pytest -p no:cacheprovider -vv --durations=15 tests/unit tests/cluster tests/integration ;;
    unit) run_suite unit python -m pytest -p no:cacheprovider tests/unit ;;
    molecule) run_suite molecule bash hack/molecule.sh ;;
    lint) run_suite ansible-lint ansible-lint --profile production ;;
    sanity) run_suite sanity bash hack/sanity.sh ;;
    *) echo "unknown suite $s"; failed+=("$s") ;;
  esac
done

echo
echo "=== summary (seconds): $(for k in "${!took[@]}"; do printf '%s=%s ' "$k" "${took[$k]}"; done)total=$(( $(date +%s) - t_all ))"
if [ ${#failed[@]} -gt 0 ]; then
  echo "=== FAILED suites: ${failed[*]}"
  exit 1
fi
echo "=== all suites passed"
