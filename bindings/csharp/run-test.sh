#!/usr/bin/env bash
# Compiles the C# binding and its test with Mono and runs the test against the emulator.
# Assumes `cargo build --workspace` was done. Needs Mono (Debian: apt-get install mono-mcs mono-runtime).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v mcs >/dev/null 2>&1 || ! command -v mono >/dev/null 2>&1; then
    echo "run-test.sh: Mono is not installed (need mcs and mono; Debian/Ubuntu: apt-get install mono-mcs mono-runtime)" >&2
    exit 1
fi

mkdir -p target
mcs -nologo -warnaserror+ -out:target/csharp-test.exe \
    bindings/csharp/TableauPublisher.cs bindings/csharp/TestBinding.cs
LD_LIBRARY_PATH="target/debug${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" mono target/csharp-test.exe
