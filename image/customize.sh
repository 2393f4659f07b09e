#!/usr/bin/env bash
# mmdebstrap customize hook for image/rootfs.sh: runs on the host with the new root filesystem's
# path as $1, after every package is installed and before the tar is written.
set -euo pipefail
root="${1:?usage: customize.sh ROOTFS}"

# The unprivileged user Gatehouse runs as (65532, as distroless images use), with its home and the
# default state directory. Written directly rather than with useradd, so that no date enters
# /etc/shadow.
uid=65532
echo "gatehouse:x:$uid:$uid:Gatehouse:/var/lib/gatehouse:/usr/sbin/nologin" >>"$root/etc/passwd"
echo "gatehouse:x:$uid:" >>"$root/etc/group"
echo "gatehouse:!::0:99999:7:::" >>"$root/etc/shadow"
install -d -m 0755 -o "$uid" -g "$uid" "$root/var/lib/gatehouse"

# HAProxy that may bind ports below 1024 without root: a copy of Debian's binary with the
# cap_net_bind_service file capability, for hostNetwork pods where the
# net.ipv4.ip_unprivileged_port_start sysctl cannot be set. /usr/sbin/haproxy itself stays
# without capabilities: a binary with file capabilities cannot even be executed (EPERM) in a
# container whose bounding set lacks them, e.g. one that drops ALL capabilities.
install -d -m 0755 "$root/usr/lib/gatehouse"
install -m 0755 "$root/usr/sbin/haproxy" "$root/usr/lib/gatehouse/haproxy-net-bind"
setcap cap_net_bind_service=+ep "$root/usr/lib/gatehouse/haproxy-net-bind"

# What a container never needs: caches, logs, apt and debconf leftovers.
rm -rf "$root"/var/cache/* "$root"/var/log/* "$root"/var/lib/apt/lists/* \
  "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
# Record of the installed packages, for scanners and for the build's report.
chroot "$root" dpkg-query -W -f '${Package} ${Version}\n' >"$root/usr/lib/gatehouse/packages.txt"
