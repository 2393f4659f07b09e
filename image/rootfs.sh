#!/usr/bin/env bash
# The image's base layer: a minimal Debian bookworm root filesystem made by mmdebstrap, written as
# a tar to $1. Only Debian's own packages: the essential set (no apt), HAProxy (the same Debian
# package the tests run against), CA certificates, iproute2 (`ip`, for --infrastructure host's
# address binding) and libstdc++ (Node.js needs it). No docs, man pages, locales or apt lists.
#
# Reproducible: with the same SOURCE_DATE_EPOCH (required) and the same package versions in the
# archive, the tar is byte for byte the same (mmdebstrap sorts entries and clamps mtimes to it).
#
# Usage: SOURCE_DATE_EPOCH=<seconds> image/rootfs.sh OUT.tar
# Environment: GATEHOUSE_DEBIAN_MIRROR (default http://deb.debian.org/debian),
#              GATEHOUSE_DEBIAN_SECURITY_MIRROR (default http://deb.debian.org/debian-security).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: rootfs.sh OUT.tar}"
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH must be set (seconds since the epoch)}"
export SOURCE_DATE_EPOCH

mirror="${GATEHOUSE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security="${GATEHOUSE_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
suite=bookworm
packages=haproxy,ca-certificates,iproute2,libstdc++6

# Paths dpkg never unpacks (copyright files stay: they are the packages' licences).
dpkgopts=()
for dir in doc man info locale lintian bash-completion zsh gdb; do
  dpkgopts+=("--dpkgopt=path-exclude=/usr/share/$dir/*")
done
dpkgopts+=("--dpkgopt=path-include=/usr/share/doc/*/copyright")

# merged-usr hook: /bin, /lib, /sbin as symlinks into /usr without the usrmerge package (which
# would pull in perl); customize.sh adds the gatehouse user and the state directory.
nice -n "${BUILD_NICE:-10}" mmdebstrap \
  --variant=essential \
  --format=tar \
  --arch=amd64 \
  --include="$packages" \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --customize-hook="$here/customize.sh \"\$1\"" \
  --skip=output/dev \
  "${dpkgopts[@]}" \
  "$suite" "$out" \
  "deb $mirror $suite main" \
  "deb $mirror $suite-updates main" \
  "deb $security $suite-security main"
