#!/usr/bin/env bash
# Incus for the lxc plugin's tests and benchmark (DESIGN.md §7): incus-base from Debian's
# bookworm-backports, incusd started without systemd, a `dir` storage pool, a bridge with a
# fixed test subnet and no NAT, a default profile using both, and a busybox image built here
# (no image server is reachable). Idempotent and quick when everything is already there.
#
#   scripts/setup-incus.sh                   set everything up (root)
#   scripts/setup-incus.sh build-image DIR   only write DIR/metadata.tar.gz and DIR/rootfs.tar.gz
set -euo pipefail
cd "$(dirname "$0")/.."

# Fixed names and the test subnet (198.18.0.0/15, no NAT: nothing leaves the host).
pool=default
bridge=opincbr0
bridge_address=198.19.250.1/24
image_alias=op-test/busybox
sources=/etc/apt/sources.list.d/op-bookworm-backports.sources
log_dir=/var/log/incus

log() { printf '==> %s\n' "$*"; }

# A busybox rootfs whose init stops cleanly on SIGPWR (what Incus sends for a graceful stop),
# so `incus stop` and op's stop_timeout behave as on a real distribution, only faster.
build_image() {
  local out=$1 work
  work=$(mktemp -d)
  mkdir -p "$out" "$work/rootfs"/{bin,sbin,etc,dev,proc,sys,tmp,root,run,var/log,usr/share/udhcpc}
  cp /bin/busybox "$work/rootfs/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$work/rootfs/bin/$applet"
  done
  cat >"$work/rootfs/sbin/init" <<'EOF'
#!/bin/sh
# Test image init: ask for an address (only Incus's own test bridge answers), then wait;
# SIGPWR/SIGTERM end pid 1, which stops the container at once.
trap 'exit 0' PWR TERM INT USR1 USR2
ip link set lo up
udhcpc -b -q -i eth0 -s /usr/share/udhcpc/default.script >/dev/null 2>&1 &
while :; do sleep 3600 & wait $!; done
EOF
  cat >"$work/rootfs/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
case "$1" in
  bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/${mask:-24}" dev "$interface" ;;
  deconfig) ip addr flush dev "$interface" ;;
esac
EOF
  chmod 755 "$work/rootfs/sbin/init" "$work/rootfs/usr/share/udhcpc/default.script"
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$work/rootfs/etc/passwd"
  printf 'root:x:0:\n' >"$work/rootfs/etc/group"
  mkdir -p "$work/meta"
  cat >"$work/meta/metadata.yaml" <<EOF
architecture: $(uname -m)
creation_date: $(date +%s)
properties:
  description: busybox test image built by op's scripts/setup-incus.sh
  os: busybox
  release: "$(/bin/busybox | head -1 | awk '{print $2}')"
EOF
  tar -C "$work/meta" -czf "$out/metadata.tar.gz" metadata.yaml
  tar -C "$work/rootfs" --numeric-owner -czf "$out/rootfs.tar.gz" .
  rm -rf "$work"
}

if [ "${1:-}" = build-image ]; then
  build_image "${2:?usage: setup-incus.sh build-image DIR}"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/setup-incus.sh: run as root" >&2
  exit 1
fi

# 1. Packages. The backports entry is derived from the host's own Debian entry (its bookworm
# stanza, Suites line changed), so no host name is written here.
installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}
if ! installed incus-base || ! installed dnsmasq-base || ! installed busybox-static; then
  if [ ! -f "$sources" ]; then
    log "adding bookworm-backports to apt sources ($sources)"
    [ -f /etc/apt/sources.list.d/debian.sources ] || {
      echo "no /etc/apt/sources.list.d/debian.sources to derive bookworm-backports from" >&2
      exit 1
    }
    # Written aside and moved into place only once checked, so a failure leaves nothing behind.
    awk 'BEGIN { RS = ""; ORS = "\n\n" }
      /(^|\n)Suites:([^\n]* )?bookworm( |\n|$)/ { sub(/(^|\n)Suites:[^\n]*/, "\nSuites: bookworm-backports"); sub(/^\n/, ""); print }' \
      /etc/apt/sources.list.d/debian.sources >"$sources.tmp"
    grep -q '^Suites: bookworm-backports$' "$sources.tmp" || {
      echo "could not derive a bookworm-backports entry from debian.sources" >&2
      rm -f "$sources.tmp"
      exit 1
    }
    mv "$sources.tmp" "$sources"
  fi
  log "apt-get update"
  apt-get update -qq
  log "installing incus-base (bookworm-backports) and busybox-static"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -t bookworm-backports incus-base incus-client >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    busybox-static dnsmasq-base iproute2 >/dev/null
fi

# 2. The daemon, without systemd: detached, logging to a file.
if ! incus admin waitready --timeout 1 >/dev/null 2>&1; then
  log "starting incusd"
  mkdir -p "$log_dir"
  setsid /usr/libexec/incus/incusd --group root >>"$log_dir/incusd.log" 2>&1 </dev/null &
  incus admin waitready --timeout 60
fi

# 3. Storage pool, bridge and default profile.
incus storage show "$pool" >/dev/null 2>&1 || {
  log "creating storage pool $pool (dir)"
  incus storage create "$pool" dir >/dev/null
}
incus network show "$bridge" >/dev/null 2>&1 || {
  log "creating bridge $bridge ($bridge_address, no NAT)"
  incus network create "$bridge" ipv4.address="$bridge_address" ipv4.nat=false \
    ipv6.address=none >/dev/null
}
profile=$(incus profile show default)
grep -q "^  root:" <<<"$profile" || incus profile device add default root disk path=/ pool="$pool" >/dev/null
grep -q "^  eth0:" <<<"$profile" || incus profile device add default eth0 nic network="$bridge" name=eth0 >/dev/null

# 4. The test image.
if ! incus image alias list --format csv | grep -q "^$image_alias,"; then
  log "building and importing image $image_alias"
  dir=$(mktemp -d)
  build_image "$dir"
  incus image import "$dir/metadata.tar.gz" "$dir/rootfs.tar.gz" --alias "$image_alias" >/dev/null
  rm -rf "$dir"
fi

# 5. Open vSwitch for the OVS-bridge tests (its own script; bridges use datapath_type=netdev).
if [ -x scripts/setup-ovs.sh ]; then
  scripts/setup-ovs.sh
elif ! ovs-vsctl --timeout=2 show >/dev/null 2>&1; then
  if ! command -v ovs-vsctl >/dev/null; then
    log "installing openvswitch-switch"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openvswitch-switch >/dev/null
  fi
  log "starting Open vSwitch"
  /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random >/dev/null
fi
