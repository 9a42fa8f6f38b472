#!/usr/bin/env bash
# A Debian rootfs with systemd, to boot under systemd-nspawn so the seeder's unit runs under a real PID 1.
# Built once with debootstrap (a minute or two) and cached as a tarball; prints its path.
set -euo pipefail
cache=${MODELSWARM_IMAGE_CACHE:-$HOME/.cache/modelswarm-image}
tar=$cache/debian-bookworm-systemd.tar
if [ ! -f "$tar" ]; then
  mkdir -p "$cache"
  work=$(mktemp -d "${TMPDIR:-/tmp}/ms-sdroot.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$work/root" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >&2
  rm -rf "$work/root"/var/cache/apt/archives/*.deb "$work/root"/var/lib/apt/lists/*
  tar -C "$work/root" --numeric-owner -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
fi
echo "$tar"
