#!/usr/bin/env bash
# Make sure the tests can reach a real Redis: REDIS_URL if set, else a redis-server
# binary the tests start on a private socket (installed here when missing).
set -euo pipefail

if [ -n "${REDIS_URL:-}" ]; then
  echo "tests use REDIS_URL (their own key prefix, cleaned afterwards)"
  exit 0
fi
if command -v redis-server >/dev/null 2>&1; then
  echo "tests start a private $(redis-server --version | cut -d' ' -f1-3) on a unix socket"
  exit 0
fi

echo "redis-server not found: installing it with apt-get"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if command -v apt-get >/dev/null 2>&1 \
   && $sudo apt-get update -qq && $sudo apt-get install -y -qq redis-server >/dev/null; then
  # Debian starts the packaged service; the tests only need the binary.
  exit 0
fi
cat >&2 <<'MSG'
Could not install redis-server. The tests need a real Redis, either:
  - the redis-server binary on PATH (apt-get install redis-server, brew install redis), or
  - REDIS_URL=redis://host:port/db pointing at a Redis the tests may write to.
MSG
exit 1
