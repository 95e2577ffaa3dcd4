#!/usr/bin/env bash
# Make sure the browser tests can drive a real headless browser: Debian's chromium and its
# chromedriver (installed here when missing), the pair tests/browser/ starts through selenium.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  echo "browser tests use $(chromedriver --version | cut -d' ' -f1-2)"
  exit 0
fi

echo "chromium or chromedriver not found: installing them with apt-get"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if command -v apt-get >/dev/null 2>&1 && $sudo apt-get update -qq \
   && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
      >/dev/null; then
  exit 0
fi
cat >&2 <<'MSG'
Could not install chromium and chromium-driver. The browser tests (tests/browser/) need both
on PATH: apt-get install chromium chromium-driver (Debian/Ubuntu), or a chromium with the
chromedriver of the same version.
MSG
exit 1
