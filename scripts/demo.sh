#!/usr/bin/env bash
# The main job: installs what is missing, builds, applies the demo state and shows the result.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
op=scripts/op
state=${1:-state/demo.json}

echo; echo "==> op plan $state"
$op plan "$state"
echo; echo "==> op apply $state"
$op apply "$state"
echo; echo "==> op apply $state --check (exit 0: the host matches)"
$op apply "$state" --check
echo; echo "==> op query"
$op query
echo; echo "==> op ledger log --limit 10"
$op ledger log --limit 10
echo; echo "==> op ledger verify"
$op ledger verify
echo; echo "==> op status"
$op status
