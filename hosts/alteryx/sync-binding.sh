#!/usr/bin/env bash
# Puts the Python binding (bindings/python/tableau_publisher.py, not forked: copied as it is) into
# the tool's package, and with an argument the library next to it, where the binding looks first:
#   hosts/alteryx/sync-binding.sh [target/release/tableau_publisher.dll|libtableau_publisher.so]
# Both copies are build outputs (.gitignore), refreshed by run-tests.sh and build-yxi.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
pkg="$here/backend/ayx_plugins"
cp "$root/bindings/python/tableau_publisher.py" "$pkg/tableau_publisher.py"
if [ $# -gt 0 ]; then
  rm -f "$pkg"/tableau_publisher.dll "$pkg"/libtableau_publisher.so "$pkg"/libtableau_publisher.dylib
  cp "$1" "$pkg/"
fi
