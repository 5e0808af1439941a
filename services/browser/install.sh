#!/usr/bin/env bash
# A real browser for the UI tests: Debian's chromium and chromedriver (as root), nothing
# downloaded by Selenium. Idempotent: does nothing when both are installed.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
echo "browser: installing Debian's chromium and chromium-driver ..." >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
