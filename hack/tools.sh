#!/usr/bin/env bash
# System tools the test command needs besides Python packages and Go builds (Debian packages).
set -euo pipefail
# ansible-test sanity checks the shell scripts with shellcheck.
if ! command -v shellcheck >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "tools: installing shellcheck (Debian) for ansible-test sanity"
    (apt-get update -qq && apt-get install -y -qq shellcheck) >/dev/null 2>&1 \
      || echo "tools: WARNING: could not install shellcheck; sanity will report it missing"
  else
    echo "tools: WARNING: shellcheck is missing (apt-get install shellcheck); sanity will report it"
  fi
fi
