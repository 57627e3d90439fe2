#!/usr/bin/env bash
# Tests the Alteryx tool (hosts/alteryx) with pytest: the configuration converter, the Arrow ->
# Hyper mapping, and PublishToTableau run through ayx-python-sdk's SdkToolTestService against
# the emulator. Builds nothing Rust: it expects target/debug/libtableau_publisher.so,
# target/debug/tableau-emulator and target/debug/tabpub (cargo build --workspace --locked).
#
# The venv is target/alteryx-venv, made with Python 3.10 (else 3.13; what ayx-python-sdk 2.6.1
# needs) from pyenv or PATH, and reused while hosts/alteryx/requirements.txt is unchanged (its
# sha256 is kept in the venv). With no such Python, or when the packages cannot be installed, it
# prints "ALTERYX TESTS DID NOT RUN: <why>" and exits 0: never a silent pass, but no failure for
# a machine without the interpreter or a registry. A failing test exits non-zero.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

did_not_run() {
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  echo "ALTERYX TESTS DID NOT RUN: $*"
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  exit 0
}

for f in libtableau_publisher.so tableau-emulator tabpub; do
  [ -e "target/debug/$f" ] || { echo "run-tests.sh: target/debug/$f is missing; run cargo build --workspace --locked first" >&2; exit 1; }
done

# --- a Python that ayx-python-sdk 2.6.1 supports ------------------------------------------------
find_python() {
  local pyenv_root version candidate
  pyenv_root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
  for version in 3.10 3.13; do
    for candidate in $(ls -d "$pyenv_root"/versions/"$version".*/bin/python"$version" 2>/dev/null | sort -V -r) \
                     "$(command -v "python$version" || true)"; do
      if [ -n "$candidate" ] && "$candidate" -c 'import venv' >/dev/null 2>&1; then
        echo "$candidate"
        return 0
      fi
    done
  done
  return 1
}
python="$(find_python)" || did_not_run "no Python 3.10 or 3.13 (pyenv or PATH) to run ayx-python-sdk 2.6.1"

# --- the venv, reused while requirements.txt is the same -----------------------------------------
venv="$root/target/alteryx-venv"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version.split()[0])')"
if [ "$(cat "$venv/.requirements-sha256" 2>/dev/null || true)" != "$want" ] || ! "$venv/bin/python" -c '' 2>/dev/null; then
  echo "run-tests.sh: creating $venv with $python"
  rm -rf "$venv"
  "$python" -m venv "$venv" || did_not_run "$python -m venv failed"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" \
    || { rm -rf "$venv"; did_not_run "pip could not install hosts/alteryx/requirements.txt"; }
  echo "$want" >"$venv/.requirements-sha256"
fi

# --- the tests ----------------------------------------------------------------------------------
"$here/sync-binding.sh" # the binding the tool ships: a copy of bindings/python/tableau_publisher.py
export TABLEAU_PUBLISHER_LIB="$root/target/debug/libtableau_publisher.so"
export TABLEAU_EMULATOR_BIN="$root/target/debug/tableau-emulator"
cd "$here/backend"
set +e
"$venv/bin/python" -m pytest -p no:cacheprovider -q -rs tests "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "run-tests.sh: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
