#!/usr/bin/env bash
# Test setup: make sure Debian's chromium is there for the report's headless-browser test. Installs it with
# apt when missing and possible (root, apt-get); otherwise says why, and that test skips with the reason.
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup_browser: chromium is missing and cannot be installed here (needs root and apt-get); the browser test will skip" >&2
  exit 0
fi
echo "setup_browser: installing chromium (Debian package) for the report's browser test" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
  || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; } \
  || echo "setup_browser: apt-get could not install chromium; the browser test will skip" >&2
exit 0
