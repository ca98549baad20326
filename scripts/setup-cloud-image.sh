#!/usr/bin/env bash
# A small Debian 12 cloud image for the tests of the provision-to-SSH workflow: debootstrap from
# the Debian archive this machine's apt already uses (no host name is written here), with
# systemd, openssh-server and cloud-init, packaged as Incus metadata + rootfs tarballs whose
# templates hand Incus's `cloud-init.*` keys to cloud-init's NoCloud seed, and imported under
# the alias below. Built once per machine: the tarballs are cached under $cache keyed by this
# recipe's hash, and the image is re-imported only when that hash changes.
#
#   scripts/setup-cloud-image.sh          build (if needed) and import (if needed); root
#   scripts/setup-cloud-image.sh --hash   print the recipe hash
set -euo pipefail
cd "$(dirname "$0")/.."

alias=op-test/debian-cloud
cache=/var/cache/op-test/debian-cloud
suite=bookworm
# What the image holds beyond debootstrap's minbase: an init, sshd, cloud-init and what its
# Debian network renderer (ifupdown) needs to ask for an address, and nftables, which op's
# Debian package depends on (its install test runs dpkg -i with no network). Installed with apt inside the
# new tree, not with debootstrap's --include, whose one-pass configure fails on cloud-init's
# Python dependencies.
packages="systemd-sysv openssh-server cloud-init ifupdown isc-dhcp-client iproute2 sudo netbase ca-certificates nftables"

log() { printf '==> %s\n' "$*"; }

recipe_hash=$(sha256sum "$0" | cut -c1-16)
if [ "${1:-}" = --hash ]; then
  echo "$recipe_hash"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/setup-cloud-image.sh: run as root" >&2
  exit 1
fi

# The mirror debootstrap uses: the first Debian archive entry of this machine's apt sources
# (deb822 or one-line form), the same place apt installs everything else from.
mirror() {
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk 'BEGIN { RS = "" } /(^|\n)Suites:([^\n]* )?bookworm( |\n|$)/ {
        if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { s = substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", s); print s; exit } }' \
      /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $3 == "bookworm" { print ($2 ~ /^\[/ ? $3 : $2); exit }' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || {
    echo "scripts/setup-cloud-image.sh: found no bookworm entry in the apt sources to build the image from" >&2
    exit 1
  }
  echo "$uri"
}

build() {
  local out=$1 work
  command -v debootstrap >/dev/null || {
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null 2>&1 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
  }
  work=$(mktemp -d)
  trap 'umount "$work/rootfs/proc" 2>/dev/null || true; rm -rf "$work"' RETURN
  log "debootstrap $suite"
  debootstrap --variant=minbase "$suite" "$work/rootfs" "$(mirror)" >"$work/log" 2>&1 || {
    tail -20 "$work/log" "$work/rootfs/debootstrap/debootstrap.log" >&2 2>/dev/null
    return 1
  }
  log "installing $packages"
  cp /etc/resolv.conf "$work/rootfs/etc/resolv.conf"
  # No service may start inside the build tree.
  printf '#!/bin/sh\nexit 101\n' >"$work/rootfs/usr/sbin/policy-rc.d"
  chmod 755 "$work/rootfs/usr/sbin/policy-rc.d"
  mount -t proc proc "$work/rootfs/proc"
  chroot "$work/rootfs" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends $packages >"$work/log" 2>&1 || {
    tail -20 "$work/log" >&2
    return 1
  }
  umount "$work/rootfs/proc"
  rm -f "$work/rootfs/usr/sbin/policy-rc.d" "$work/rootfs/etc/resolv.conf"
  # Smaller and quicker to boot: no package lists or caches, no host keys baked in (sshd's
  # are made at first boot by cloud-init), no machine id shared by every container.
  chroot "$work/rootfs" apt-get clean
  rm -rf "$work/rootfs"/var/lib/apt/lists/* "$work/rootfs"/etc/ssh/ssh_host_* \
    "$work/rootfs"/usr/share/doc/* "$work/rootfs"/usr/share/man/*
  : >"$work/rootfs/etc/machine-id"
  # cloud-init reads only the NoCloud seed the templates below write, and leaves the locale
  # alone (the image has no locales package: setting one would fail the boot's cloud-config).
  printf 'datasource_list: [ NoCloud, None ]\nlocale: false\n' \
    >"$work/rootfs/etc/cloud/cloud.cfg.d/90-op-nocloud.cfg"
  printf 'auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n' \
    >"$work/rootfs/etc/network/interfaces"

  mkdir -p "$work/meta/templates"
  cat >"$work/meta/metadata.yaml" <<EOF
architecture: $(uname -m)
creation_date: $(date +%s)
properties:
  description: Debian 12 with sshd and cloud-init, built by op's scripts/setup-cloud-image.sh
  os: debian
  release: "12"
  op.recipe: "$recipe_hash"
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
  /var/lib/cloud/seed/nocloud-net/meta-data:
    when: [create, copy]
    create_only: false
    template: cloud-init-meta.tpl
  /var/lib/cloud/seed/nocloud-net/user-data:
    when: [create, copy]
    create_only: false
    template: cloud-init-user.tpl
    properties:
      default: |
        #cloud-config
        {}
  /var/lib/cloud/seed/nocloud-net/vendor-data:
    when: [create, copy]
    create_only: false
    template: cloud-init-vendor.tpl
    properties:
      default: |
        #cloud-config
        {}
  /var/lib/cloud/seed/nocloud-net/network-config:
    when: [create, copy]
    create_only: false
    template: cloud-init-network.tpl
    properties:
      default: |
        version: 1
        config:
          - type: physical
            name: eth0
            subnets:
              - type: dhcp
                control: auto
EOF
  printf '{{ container.name }}\n' >"$work/meta/templates/hostname.tpl"
  cat >"$work/meta/templates/cloud-init-meta.tpl" <<'EOF'
instance-id: {{ container.name }}
local-hostname: {{ container.name }}
EOF
  printf '{{ config_get("cloud-init.user-data", properties.default) }}\n' \
    >"$work/meta/templates/cloud-init-user.tpl"
  printf '{{ config_get("cloud-init.vendor-data", properties.default) }}\n' \
    >"$work/meta/templates/cloud-init-vendor.tpl"
  printf '{{ config_get("cloud-init.network-config", properties.default) }}\n' \
    >"$work/meta/templates/cloud-init-network.tpl"

  mkdir -p "$out"
  tar -C "$work/meta" -czf "$out/metadata.tar.gz.tmp" metadata.yaml templates
  tar -C "$work/rootfs" --numeric-owner -czf "$out/rootfs.tar.gz.tmp" .
  mv "$out/metadata.tar.gz.tmp" "$out/metadata.tar.gz"
  mv "$out/rootfs.tar.gz.tmp" "$out/rootfs.tar.gz"
  echo "$recipe_hash" >"$out/recipe"
}

if [ "$(cat "$cache/recipe" 2>/dev/null)" != "$recipe_hash" ]; then
  log "building the Debian cloud image $alias (recipe $recipe_hash)"
  rm -rf "$cache"
  build "$cache"
fi

imported=$(incus image list "$alias" --format csv --columns l 2>/dev/null || true)
current=$(incus image get-property "$alias" op.recipe 2>/dev/null || true)
if [ -z "$imported" ] || [ "$current" != "$recipe_hash" ]; then
  log "importing $alias"
  incus image alias delete "$alias" >/dev/null 2>&1 || true
  incus image import "$cache/metadata.tar.gz" "$cache/rootfs.tar.gz" --alias "$alias" >/dev/null
fi
