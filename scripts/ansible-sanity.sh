#!/usr/bin/env bash
# Runs `ansible-test sanity` on the op.host collection (ansible/) with Debian's ansible-core,
# offline, and says which tests ran, which passed, and which could not run here and why.
#
#   scripts/ansible-sanity.sh [TEST...]    default: every test ansible-test lists for the collection
#
# ansible-test wants the collection under .../ansible_collections/op/host/, so the files are
# copied into a temporary tree of that shape. It runs each test that needs Python packages in a
# virtual environment it fills with pip from PyPI, which this machine cannot reach; for those
# whose packages Debian ships (voluptuous, PyYAML, Jinja2, yamllint, pycodestyle: installed by
# scripts/setup.sh --tests) this script makes that environment itself, from Debian's Python
# with its system packages, and marks it ready as ansible-test would have left it. A test whose
# packages are still missing is reported as not run, with ansible-test's own words.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

work=$(mktemp -d /tmp/op-ansible-sanity-XXXXXX)
trap 'rm -rf "$work"' EXIT
collection=$work/ansible_collections/op/host
mkdir -p "$(dirname "$collection")"
cp -r "$root/ansible" "$collection"
rm -rf "$collection/tests/output"

# Debian's Python first (not a pyenv or other one in PATH), a HOME of the run's own for the
# virtual environments, and the locale ansible-test accepts.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=$work/home LC_ALL=C.UTF-8
mkdir -p "$HOME"
cd "$collection"

sanity() { ansible-test sanity --python 3.11 --color no --test "$1" 2>&1; }

# A venv ansible-test could not fill: Debian's Python with its packages, marked as made. The
# one in which the import test loads modules gets only PyYAML (what ansible-test itself reads
# there): a module may import only what Python and ansible-core bring, and Debian's other
# packages there would hide an import that breaks it.
prepare_venv() {
  local venv=$1
  rm -rf "$venv"
  case $venv in
    */sanity.import/*)
      /usr/bin/python3 -m venv --without-pip "$venv"
      ln -s /usr/lib/python3/dist-packages/yaml /usr/lib/python3/dist-packages/_yaml \
        "$venv"/lib/python3*/site-packages/
      ;;
    *) /usr/bin/python3 -m venv --system-site-packages --without-pip "$venv" ;;
  esac
  "$venv/bin/python" /usr/lib/python3/dist-packages/ansible_test/_util/target/tools/yamlcheck.py >"$venv/meta.yaml.json"
  echo '[]' >"$venv/meta.install.json"
  touch "$venv/marker.txt"
}

if [ $# -gt 0 ]; then tests=("$@"); else mapfile -t tests < <(ansible-test sanity --list-tests 2>/dev/null); fi

passed=() failed=() skipped=() notrun=()
for test in "${tests[@]}"; do
  output=$(sanity "$test") && status=0 || status=$?
  # A test may need several venvs (import: one for modules, one for other plugins).
  for _ in 1 2 3; do
    venv=$(sed -n 's/.*Python [0-9.]* at "\(.*\)\/bin\/python" does not have pip available.*/\1/p' <<<"$output")
    [ -n "$venv" ] || break
    prepare_venv "$venv"
    output=$(sanity "$test") && status=0 || status=$?
  done
  if grep -q "Skipping sanity test \"$test\"" <<<"$output"; then
    skipped+=("$test")
  elif [ "$status" -eq 0 ]; then
    passed+=("$test")
  elif grep -q -E "does not have pip available|ModuleNotFoundError|No module named|requirements" <<<"$output"; then
    notrun+=("$test: $(grep -m1 -E 'does not have pip|ModuleNotFoundError|No module named|FATAL' <<<"$output")")
  else
    failed+=("$test")
    printf '%s\n' "$output" | grep -v 'Using locale' >&2
  fi
done

# ansible-test says nothing of a test that found no file of its kind (shellcheck, pslint...):
# such a test is counted as passed.
printf 'passed (%d): %s\n' "${#passed[@]}" "${passed[*]}"
printf 'skipped by ansible-test (%d): %s\n' "${#skipped[@]}" "${skipped[*]}"
printf 'could not run here (%d):\n' "${#notrun[@]}"
for line in "${notrun[@]}"; do printf '  %s\n' "$line"; done
printf 'failed (%d): %s\n' "${#failed[@]}" "${failed[*]}"
[ "${#failed[@]}" -eq 0 ]
