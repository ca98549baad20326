#!/usr/bin/env bash
# Installs what op needs on a Debian 12 host, builds it, and returns quickly when everything is
# already there. Idempotent; run as root. Used by scripts/demo.sh, scripts/test.sh and .ci/run.
#
#   scripts/setup.sh           what op and its demo need
#   scripts/setup.sh --tests   also what only the tests use: ssh and Ansible (to log in to and
#                              run a play on a provisioned container), zsh and fish (to run the
#                              completion scripts op prints) and the Debian cloud image
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

apt_updated=no
apt_install() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$apt_updated" = no ]; then
    log "apt-get update"
    apt-get update -qq
    apt_updated=yes
  fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/setup.sh: run as root (it installs packages and op changes the host)" >&2
  exit 1
fi

# op and its tests need network namespaces (CAP_SYS_ADMIN); say so now rather than mid-test.
if ! unshare -n true 2>/dev/null; then
  echo "scripts/setup.sh: cannot create a network namespace here (unshare -n failed);" \
    "op needs CAP_SYS_ADMIN (a privileged container or a VM)" >&2
  exit 1
fi

# nftables: the firewall plugin; iproute2: ip netns for tests and the network plugin, and the
# throw-away namespaces of nftables rule normalisation; util-linux: nsenter (into those);
# strace: the test that audits every program op starts (no shell).
apt_install nftables iproute2 util-linux ca-certificates strace
command -v npm >/dev/null 2>&1 || apt_install nodejs npm

# Open vSwitch (network plugin, OVS bridges) and Incus (lxc plugin): installed, started and,
# for Incus, given a storage pool, a test bridge and the locally built busybox image.
scripts/setup-ovs.sh
scripts/setup-incus.sh

# Node packages, including the runtime itself (the `node` package brings Node 24, so the
# machine's own Node only has to be able to run npm). Skipped when the lock file is unchanged.
stamp=node_modules/.op-installed
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ]; then
  # `npm install`, not `npm ci`: the npm shipped here rejects this lock file in `ci` mode
  # ("Missing: @biomejs/cli-android-arm64@"), an npm fault with other platforms' optional
  # packages; install follows the same lock file.
  log "npm install"
  npm install --no-audit --no-fund --loglevel=error
  echo "$lock_hash" >"$stamp"
fi

log "building"
PATH="$PWD/node_modules/.bin:$PATH" npm run --silent build

if [ "${1:-}" = --tests ]; then
  apt_install openssh-client ansible-core zsh fish
  # What scripts/ansible-sanity.sh needs for ansible-test's validate-modules, runtime-metadata,
  # yamllint, pep8 and pylint on the op.host collection: no Python package index is reached
  # here, so Debian's packages stand in for the ones ansible-test would fetch with pip.
  apt_install python3-voluptuous yamllint python3-pycodestyle pylint
  scripts/setup-cloud-image.sh
fi
