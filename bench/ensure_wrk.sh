#!/usr/bin/env bash
# `make bench` drives gunicorn with wrk: install it with apt-get when it is missing.
# Exits 0 either way; without wrk the bench falls back to its Python load generator.
set -uo pipefail

command -v wrk >/dev/null 2>&1 && exit 0
echo "wrk not found: installing it with apt-get"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if command -v apt-get >/dev/null 2>&1 \
   && $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null; then
  exit 0
fi
echo "could not install wrk: the bench uses its Python load generator instead" >&2
exit 0
