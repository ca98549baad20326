#!/usr/bin/env bash
# Builds the Debian package op_<version>_<arch>.deb with dpkg-deb: the built program, its
# run-time node modules only, the Node runtime the project uses (the npm package `node`), the
# start-up snapshot, /usr/bin/op, the systemd units of packaging/, /etc/op/state.json and
# /etc/default/op as conffiles, the man page op(1) and completion for bash, zsh and fish.
# The installed host needs neither the repository, nor npm, nor a compiler.
#
#   scripts/package.sh [--version V] [--out DIR]
#     --version  the package's version (default: package.json's, with Debian revision -1)
#     --out      where the .deb is written (default: dist/)
#
# Layout: the tree scripts/op expects (dist/, node_modules/, scripts/op) under /usr/lib/op,
# so that scripts/op and the snapshot's native-module lookup (OP_ROOT) work unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

version=""
out="$root/dist"
while [ $# -gt 0 ]; do
  case $1 in
    --version) version=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "scripts/package.sh: unknown argument $1 (see the header of this script)" >&2; exit 64 ;;
  esac
done
node=$root/node_modules/node/bin/node
[ -x "$node" ] || { echo "scripts/package.sh: run npm ci (or scripts/setup.sh) first" >&2; exit 1; }
# One build of a tree at a time: two (the package and Ansible system tests run in parallel)
# would write dist/ and its startup snapshot together and could leave a broken blob.
exec 9>"$root/node_modules/.op-package.lock"
flock 9
[ -n "$version" ] || version="$("$node" -p 'require("./package.json").version')-1"
arch=$(dpkg --print-architecture)
log() { printf '==> %s\n' "$*"; }

log "building"
PATH="$root/node_modules/.bin:$PATH" npm run --silent build >/dev/null

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 755 "$stage" # the package's / : mktemp made it 0700
lib=$stage/usr/lib/op
mkdir -p "$lib/dist" "$lib/scripts" "$stage/usr/bin" "$stage/lib/systemd/system" \
  "$stage/etc/op" "$stage/etc/default" "$stage/usr/share/man/man1" \
  "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
  "$stage/usr/share/fish/vendor_completions.d" "$stage/usr/share/doc/op/examples" "$stage/DEBIAN"

# -p keeps the times: scripts/op uses the snapshot only when it is newer than the code.
cp -pr dist/bin dist/src dist/plugins dist/op.blob "$lib/dist/"
cp -p scripts/op "$lib/scripts/op"
# package.json: Node reads "type": "module" from it to load dist/ as ES modules.
cp -p package.json package-lock.json "$lib/"

log "run-time node modules"
# From npm's cache when it has them (the build machine just installed the same lock file).
(cd "$lib" && npm ci --omit=dev --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null)
rm -f "$lib/package-lock.json"
# What a run never reads: C headers (no compiler on the host), source maps, other platforms'
# builds of LevelDB's addon.
platform=linux-$("$node" -p process.arch)
rm -rf "$lib"/node_modules/node/node_modules/node-*/include "$lib"/node_modules/node/node_modules/node-*/share
find "$lib/node_modules" -name '*.map' -delete
find "$lib/node_modules/classic-level/prebuilds" -mindepth 1 -maxdepth 1 ! -name "$platform" -exec rm -rf {} +
rm -f "$lib/node_modules/classic-level/prebuilds/$platform/"*.musl.node
# The snapshot loads LevelDB's native addon by its path within the op tree (scripts/snapshot.mjs).
for addon in $(grep -o '"node_modules/[^"]*\.node"' dist/op-snapshot.cjs | tr -d '"'); do
  [ -f "$lib/$addon" ] || { echo "scripts/package.sh: $addon, which the snapshot loads, is not in the package" >&2; exit 1; }
done
# The snapshot fits only the node binary that built it: the package must carry that one.
cmp -s "$node" "$lib/node_modules/node/bin/node" ||
  { echo "scripts/package.sh: npm installed another node than the one that built the snapshot" >&2; exit 1; }

printf '#!/bin/sh\n# op, installed by its Debian package (the program is under /usr/lib/op).\nexec /usr/lib/op/scripts/op "$@"\n' >"$stage/usr/bin/op"
chmod 755 "$stage/usr/bin/op"

cp packaging/op-apply.service packaging/op-drift.service packaging/op-drift.timer \
  packaging/op-watch.service "$stage/lib/systemd/system/"
cp packaging/state.json "$stage/etc/op/state.json"
cp packaging/default "$stage/etc/default/op"
cp packaging/state.example.yaml "$stage/usr/share/doc/op/examples/state.yaml"
cp state/demo.json "$stage/usr/share/doc/op/examples/demo.json"
cp LICENSE "$stage/usr/share/doc/op/copyright"

log "man page and completion"
"$node" scripts/man.mjs "$stage/usr/share/man/man1/op.1" >/dev/null
gzip -9n "$stage/usr/share/man/man1/op.1"
scripts/op completion bash >"$stage/usr/share/bash-completion/completions/op"
scripts/op completion zsh >"$stage/usr/share/zsh/vendor-completions/_op"
scripts/op completion fish >"$stage/usr/share/fish/vendor_completions.d/op.fish"

cp packaging/postinst packaging/prerm packaging/postrm "$stage/DEBIAN/"
chmod 755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"
printf '/etc/op/state.json\n/etc/default/op\n' >"$stage/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
# The node binary links libc (>= 2.28, Node 24's floor), libstdc++ and libgcc_s.
cat >"$stage/DEBIAN/control" <<EOF
Package: op
Version: $version
Architecture: $arch
Maintainer: op developers <op@localhost>
Installed-Size: $size
Depends: nftables, iproute2, libc6 (>= 2.28), libstdc++6, libgcc-s1
Suggests: incus, openvswitch-switch
Section: admin
Priority: optional
Description: declarative state reconciler for Linux hosts
 op makes a host's Incus containers, network (links, bridges, addresses, Open
 vSwitch) and nftables firewall match a state file, and records every change in
 a hash-chained, signed ledger. It brings its own Node runtime.
 .
 Units (none enabled on install): op-apply.service applies /etc/op/state.json at
 boot, op-watch.service corrects drift as it happens, op-drift.timer checks or
 corrects every 10 minutes (/etc/default/op).
 .
 Upgrades keep the ledger (/var/lib/op/ledger), its key (/etc/op/ledger.key)
 and the state file. Purging removes the state file, /etc/default/op, the
 cache and the status document, but KEEPS the ledger and its key: they are the
 audit trail of what op did to the host. Remove them by hand if you mean to.
EOF

mkdir -p "$out"
deb=$out/op_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --threads-max="$(nproc)" --build "$stage" "$deb" >/dev/null
log "$deb ($(du -h "$deb" | cut -f1))"
