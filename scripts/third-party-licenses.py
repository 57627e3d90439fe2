#!/usr/bin/env python3
"""Writes the licences of every crate built into the shipped binaries, for a release bundle.

Usage: third-party-licenses.py TARGET_TRIPLE OUTPUT_FILE

Walks `cargo metadata` (resolved for TARGET_TRIPLE) from tableau-publisher and tabpub through
normal dependencies only (not dev or build ones: they are not in the binaries), and writes each
crate's name, version, licence expression and the text of its LICENSE*/COPYING*/NOTICE* files.
Fails when a crate has neither a licence expression nor a licence file.
"""
import json
import os
import subprocess
import sys

ROOTS = ("tableau-publisher", "tabpub")


def main():
    target, output = sys.argv[1], sys.argv[2]
    meta = json.loads(subprocess.check_output(
        ["cargo", "metadata", "--locked", "--format-version", "1", "--filter-platform", target]))
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    ours = {p["id"] for p in meta["packages"] if p["source"] is None}
    todo = [pid for pid, p in packages.items() if p["name"] in ROOTS and pid in ours]
    seen = set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        for dep in nodes[pid]["deps"]:
            if any(k["kind"] is None for k in dep["dep_kinds"]):
                todo.append(dep["pkg"])
    crates = sorted((packages[pid] for pid in seen if pid not in ours),
                    key=lambda p: (p["name"], p["version"]))
    with open(output, "w", encoding="utf-8") as out:
        out.write("Third-party software in tableau-publisher (%s): %d crates.\n\n" % (target, len(crates)))
        for p in crates:
            root = os.path.dirname(p["manifest_path"])
            files = sorted(f for f in os.listdir(root)
                           if f.upper().startswith(("LICENSE", "LICENCE", "COPYING", "NOTICE"))
                           and os.path.isfile(os.path.join(root, f)))
            if not p.get("license") and not files:
                sys.exit("third-party-licenses: %s %s has no licence" % (p["name"], p["version"]))
            out.write("=" * 78 + "\n%s %s: %s\n" % (p["name"], p["version"], p.get("license") or "see below"))
            for f in files:
                with open(os.path.join(root, f), encoding="utf-8", errors="replace") as text:
                    out.write("\n--- %s\n%s\n" % (f, text.read().rstrip()))
            out.write("\n")
    print("third-party-licenses: %d crates -> %s" % (len(crates), output))


if __name__ == "__main__":
    main()
