#!/usr/bin/env bash
# System tools the test command needs besides Python packages and Go builds (Debian packages):
# ShellCheck for ansible-test sanity, and Chromium with its driver for the WebUI browser test
# (driven by Playwright with executable_path=/usr/bin/chromium; nothing downloads a browser).
set -euo pipefail
need=()
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "tools: installing ${need[*]} (Debian)"
  (apt-get update -qq && apt-get install -y -qq "${need[@]}") >/dev/null 2>&1 \
    || echo "tools: WARNING: could not install ${need[*]}; the tests that need them will fail and say so"
else
  echo "tools: WARNING: missing ${need[*]} (apt-get install ${need[*]}); the tests that need them will fail and say so"
fi
