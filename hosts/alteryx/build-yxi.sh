#!/usr/bin/env bash
# Builds "build/yxi/Tableau Publisher.yxi" (the installer Designer opens) with ayx_plugin_cli:
#   hosts/alteryx/build-yxi.sh [LIBRARY]
# LIBRARY is the tableau-publisher library the tool ships next to the Python binding; default:
# target/x86_64-pc-windows-gnu/release/tableau_publisher.dll if it exists (scripts/test-windows
# builds it), else target/release/libtableau_publisher.so.
#
# ayx_plugin_cli installs backend/requirements-thirdparty.txt with this machine's pip, so the
# wheels in the .yxi are for this machine's platform: build the .yxi for Designer on Windows
# (Git Bash, with Python 3.10 and the packages of hosts/alteryx/requirements.txt installed), or a
# Linux one here only to check the packaging. The tool's UI (ui/PublishToTableau, React) is built
# by the CLI with npm when ui/PublishToTableau/node_modules exists (npm install there first);
# without it the .yxi is built with --omit-ui and the tool's settings are edited as XML.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/target/alteryx-venv"
[ -x "$venv/bin/ayx_plugin_cli" ] && export PATH="$venv/bin:$PATH"
command -v ayx_plugin_cli >/dev/null || { echo "build-yxi.sh: no ayx_plugin_cli; run hosts/alteryx/run-tests.sh (it makes $venv) or pip install -r hosts/alteryx/requirements.txt" >&2; exit 1; }

lib="${1:-}"
if [ -z "$lib" ]; then
  for candidate in "$root/target/x86_64-pc-windows-gnu/release/tableau_publisher.dll" "$root/target/release/libtableau_publisher.so"; do
    if [ -f "$candidate" ]; then lib="$candidate"; break; fi
  done
fi
[ -n "$lib" ] && [ -f "$lib" ] || { echo "build-yxi.sh: no library to ship; build it (cargo build --release, or scripts/test-windows for the DLL) or give its path" >&2; exit 1; }

"$here/sync-binding.sh" "$lib"
cd "$here"
omit_ui=(--omit-ui)
[ -d ui/PublishToTableau/node_modules ] && omit_ui=()
ayx_plugin_cli create-yxi "${omit_ui[@]}"
echo "built $here/build/yxi/Tableau Publisher.yxi (library: $(basename "$lib"))"
