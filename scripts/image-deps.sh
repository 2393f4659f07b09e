#!/usr/bin/env bash
# Installs what `npm run image` and `npm run image:smoke` need on a Debian machine, if missing:
# mmdebstrap (the root filesystem), binutils (strip), umoci (unpacks the image into a bundle),
# runc (runs it), curl (the smoke test's client). Safe to run again.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for pair in mmdebstrap:mmdebstrap strip:binutils umoci:umoci runc:runc curl:curl setcap:libcap2-bin; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "image-deps: apt-get install ${missing[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
