#!/usr/bin/env bash
# System packages the tests use: Debian's headless Chromium for the HTML report test.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "note: chromium is not installed and cannot be installed here; the HTML render test will skip" >&2
  fi
fi
