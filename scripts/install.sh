#!/usr/bin/env bash
# Installs what Gatehouse needs on a Debian machine: HAProxy (Debian's haproxy 2.6 package), Chromium
# (the dashboard's browser test) and the npm dependencies, which include Node.js 24 itself (the `node` package) for npm/npx to run.
# Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi
# Headless Chromium for the admin dashboard's end-to-end test (test/e2e/dashboard.test.ts).
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install: apt-get install ${missing[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "install: npm ci" >&2
  npm ci --no-audit --no-fund
fi
