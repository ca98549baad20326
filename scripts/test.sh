#!/usr/bin/env bash
# The full test suite: installs what is missing, builds, checks generated files, types and
# lint, then runs every test (unit and system) and prints one closing line of counts.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
export PATH="$PWD/node_modules/.bin:$PATH"

echo "==> generated files are up to date"
node scripts/gen.mjs --check
echo "==> type check"
tsc -p tsconfig.json
echo "==> lint and format"
biome ci --reporter=summary .

echo "==> tests (the unit and system projects of vitest.config.ts)"
report=$(mktemp)
status=0
vitest run --reporter=default --reporter=json --outputFile.json="$report" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' "$report" || echo "tests: 0 passed, 1 failed"
rm -f "$report"
exit $status
