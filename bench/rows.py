#!/usr/bin/env python3
"""Benchmark of the rows -> .hyper path: `tabpub publish --input rows.csv` (build the CSV into a
.hyper with Tableau's hyperd, then publish it to the emulator on loopback) against the limit,
Hyper's own COPY of the same file through the Python Hyper API (tableauhyperapi), in one run.
Prints a markdown table and writes it to target/bench-rows.md. Run through scripts/bench-rows
(which builds the release binaries first). Not a test: numbers depend on the machine.

Peak RSS: GNU time's %M is the child's ru_maxrss, which Linux folds together with the peaks of
the children that child waited for (hyperd is one of tabpub's); so tabpub's own peak and
hyperd's are read separately, by polling VmHWM in /proc/<pid>/status of each process."""
import argparse
import hashlib
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(ROOT, "target", "release")
EMULATOR = os.path.join(REL, "tableau-emulator")
TABPUB = os.path.join(REL, "tabpub")
MIB = 1024 * 1024
# Rows of distinct content; the file repeats them with new ids (block by block).
POOL = 100_000
# The goals.
GOAL_ROWS_PER_S = 1_000_000
GOAL_RATIO = 0.8
GOAL_RSS_MIB = 64


# ---------------------------------------------------------------------------------------------
# The CSV.

FIRST = ["Anna", "Jürgen", "Zoë", "François", "Łukasz", "Søren", "José", "Björk", "Ana María",
         "Chloé", "Mikko", "Ángel", "Noël", "Dmitrij", "Yūko", "Priya", "Wei", "Olumide"]
LAST = ["Müller", "Smith", "O'Brien", "Nguyễn", "García", "Dvořák", "Kowalski", "Öztürk",
        "Johansson", "Rossi", "Tanaka", "Ivanov", "Ferreira", "Haddad", "Kim", "Brown"]
CITIES = ["München", "São Paulo", "東京", "Zürich", "Kraków", "Montréal", "Reykjavík", "Москва",
          "New York", "Köln", "Åarhus", "Málaga", "서울", "Dublin", "Paris", "Lagos"]
NOTES = ["", "", "", "ok", "late delivery", "gift 🎁", "rush, priority", "call back",
         "fragile", "naïve café order", "said \"thanks\"", "returned", "", "ünterwegs"]
HEADER = "id,customer,city,amount,order_date,shipped_at,paid,quantity,note\n"


def csv_field(s):
    """A CSV field, quoted when it has a comma, a quote or a newline (never `""` for empty)."""
    if any(c in s for c in ',"\n'):
        return '"' + s.replace('"', '""') + '"'
    return s


def pool_lines(rng):
    """POOL rows after the id: each `@NNNNN,` + the rest; `@` is replaced by a block prefix."""
    lines = []
    day0 = 19000  # days since 1970-01-01 (2022-01-08)
    import datetime
    epoch = datetime.date(1970, 1, 1)
    for i in range(POOL):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        # Some names as "Last, First" (a quoted comma), some plain.
        customer = f"{last}, {first}" if rng.random() < 0.3 else f"{first} {last}"
        city = rng.choice(CITIES) if rng.random() > 0.05 else ""
        amount = f"{rng.randint(-50000, 9999999) / 100:.2f}"
        d = epoch + datetime.timedelta(days=day0 + rng.randint(0, 1500))
        order_date = d.isoformat() if rng.random() > 0.03 else ""
        secs = rng.randint(0, 86399)
        shipped = f"{d.isoformat()} {secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
        if rng.random() < 0.2:
            shipped += f".{rng.randint(0, 999999):06d}"
        if rng.random() < 0.05:
            shipped = ""
        paid = "true" if rng.random() < 0.7 else "false"
        if rng.random() < 0.02:
            paid = ""
        quantity = str(rng.randint(1, 500)) if rng.random() > 0.04 else ""
        note = rng.choice(NOTES)
        fields = [customer, city, amount, order_date, shipped, paid, quantity, note]
        lines.append(f"@{i:05d}," + ",".join(csv_field(f) for f in fields) + "\n")
    return lines


def make_csv(path, rows, seed=1):
    """A header and `rows` rows, written a block (POOL rows, ~10 MB) at a time: the block's
    template with `@` replaced by the block's id prefix (ids 1000000000, 1000000001, ...)."""
    rng = random.Random(seed)
    lines = pool_lines(rng)
    template = "".join(lines).encode()
    assert template.count(b"@") == POOL
    with open(path, "wb", buffering=0) as f:
        f.write(HEADER.encode())
        block = 0
        left = rows
        while left > 0:
            prefix = str(10000 + block).encode()
            if left >= POOL:
                f.write(template.replace(b"@", prefix))
                left -= POOL
            else:
                f.write("".join(lines[:left]).encode().replace(b"@", prefix))
                left = 0
            block += 1
    return os.path.getsize(path)


# ---------------------------------------------------------------------------------------------
# Measuring a process tree.

def children(pid):
    """Child pids of every thread of pid (a child is listed under the thread that forked it)."""
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    out += [int(c) for c in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def status_of(pid):
    """(name, VmHWM KiB, VmRSS KiB) of pid, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return None
    name = re.search(r"^Name:\s*(\S+)", text, re.M)
    hwm = re.search(r"^VmHWM:\s*(\d+)", text, re.M)
    rss = re.search(r"^VmRSS:\s*(\d+)", text, re.M)
    if not (name and hwm and rss):
        return None  # a zombie
    return name.group(1), int(hwm.group(1)), int(rss.group(1))


def measure(cmd, env=None, poll=0.02):
    """Runs cmd under GNU time, polling VmHWM of every process below it. Returns a dict:
    rc, wall, cpu, time_maxrss_mib (GNU time's %M), peaks {pid: (name, MiB)} per process,
    stdout, and stderr lines with their seconds since the start."""
    stats = tempfile.NamedTemporaryFile(mode="r", suffix=".time")
    started = time.perf_counter()
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%e %U %S %M", "-o", stats.name] + cmd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out_chunks, err_lines = [], []

    def read_out():
        out_chunks.append(proc.stdout.read())

    def read_err():
        for line in proc.stderr:
            err_lines.append((time.perf_counter() - started, line.decode(errors="replace").rstrip("\n")))

    threads = [threading.Thread(target=read_out), threading.Thread(target=read_err)]
    for t in threads:
        t.start()
    peaks, seen, logs, cpu = {}, {}, {}, {}
    while proc.poll() is None:
        todo = children(proc.pid)  # the command itself (time's child), then its descendants
        while todo:
            pid = todo.pop()
            st = status_of(pid)
            if st:
                name, hwm, _ = st
                now = time.perf_counter() - started
                if pid not in peaks or hwm > peaks[pid][1]:
                    peaks[pid] = (name, hwm)
                seen[pid] = (seen.get(pid, (now, now))[0], now)
                cpu[pid] = cpu_of(pid) or cpu.get(pid, 0.0)
                if name.startswith("hyperd") and pid not in logs:
                    logs[pid] = open_log(pid)
                    if logs[pid] is None:
                        del logs[pid]
                todo += children(pid)
        time.sleep(poll)
    wall = time.perf_counter() - started
    for t in threads:
        t.join()
    hyperd_logs = {}
    for pid, f in logs.items():
        hyperd_logs[pid] = f.read()
        f.close()
    _, user, system, rss_kib = stats.read().split()[-4:]
    return {
        "rc": proc.returncode, "wall": wall, "cpu": float(user) + float(system),
        "time_maxrss_mib": int(rss_kib) / 1024,
        "peaks": {pid: (name, kib / 1024) for pid, (name, kib) in peaks.items()},
        # Seconds since the start at which each process was first and last seen.
        "seen": seen, "hyperd_logs": hyperd_logs,
        # User + system CPU seconds of each process at its last poll.
        "cpu_by_pid": cpu,
        "stdout": b"".join(out_chunks).decode(), "stderr": err_lines,
    }


def cpu_of(pid):
    """User + system CPU seconds pid has used so far (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_name(m, name):
    return sum(m["cpu_by_pid"].get(pid, 0.0) for pid, (n, _) in m["peaks"].items() if n.startswith(name))


def open_log(pid):
    """hyperd's log, opened through its own file descriptor (so it can be read after the
    private directory holding it is deleted), or None while it has not opened one."""
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").endswith(".log"):
                    return open(f"/proc/{pid}/fd/{fd}", errors="replace")
            except OSError:
                pass
    except OSError:
        pass
    return None


def queries(m):
    """(statement text, elapsed s, CPU s of its execution) of each query hyperd logged."""
    out = []
    for text in m["hyperd_logs"].values():
        for line in text.splitlines():
            if '"k":"query-end"' not in line:
                continue
            try:
                v = json.loads(line)["v"]
            except ValueError:
                continue
            cpu = v.get("execution", {}).get("threads", {}).get("cpu-time", 0.0)
            out.append((v.get("query-trunc", v.get("statement", "?")), v.get("elapsed", 0.0), cpu))
    return out


def hyperd_life(m):
    """(first seen, last seen) seconds of the hyperd process, or None."""
    times = [m["seen"][pid] for pid, (n, _) in m["peaks"].items() if n.startswith("hyperd")]
    return (min(t[0] for t in times), max(t[1] for t in times)) if times else None


def copy_query(m):
    """(elapsed, cpu) of the COPY (or INSERT) statement hyperd logged, or None."""
    for text, elapsed, cpu in queries(m):
        if text.upper().startswith(("COPY", "INSERT")):
            return elapsed, cpu
    return None


def peak_of(m, name):
    """The largest VmHWM (MiB) among the processes whose name starts with name (hyperd's main
    thread calls itself hyperdMain), 0 if none was seen."""
    return max([mib for n, mib in m["peaks"].values() if n.startswith(name)] or [0.0])


# ---------------------------------------------------------------------------------------------
# The emulator and tabpub.

class Emulator:
    def __init__(self):
        self.proc = subprocess.Popen(
            [EMULATOR, "--listen", "127.0.0.1:0", "--discard-data", "--quiet", "--exit-on-stdin-eof"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.url = self.proc.stdout.readline().decode().strip()

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def tabpub_config(workdir, url, name):
    cfg = {
        "server_url": url, "site": "",
        "auth": {"method": "pat", "token_name": "ci", "token_secret": "ci-secret"},
        "project": "default", "datasource_name": name, "mode": "overwrite",
        "spool_dir": workdir,
        # As in bench/run.py: a synchronous publish, so the emulator's simulated job delay
        # (300 ms + polling) is not counted.
        "as_job": False,
    }
    path = os.path.join(workdir, f"{name}.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def tabpub_publish(emu, workdir, path, name):
    m = measure([TABPUB, "publish", "--progress", "--config", tabpub_config(workdir, emu.url, name),
                 "--input", path])
    if m["rc"] != 0:
        sys.exit(f"tabpub failed ({m['rc']}):\n" + "\n".join(l for _, l in m["stderr"]))
    m["result"] = json.loads(m["stdout"])
    return m


def phases(stderr):
    """Seconds since the start of the first line matching each marker of tabpub --progress."""
    marks = {
        "build_start": r"^tabpub: info: building the extract",
        "build_done": r"^tabpub: info: built the extract",
        "signing_in": r"^tabpub: signing in",
        "upload_start": r"^tabpub: uploading",
        "committing": r"^tabpub: committing",
        "signing_out": r"^tabpub: signing out",
        "published": r"^tabpub: info: published",
    }
    found = {}
    for t, line in stderr:
        for k, rx in marks.items():
            if k not in found and re.search(rx, line):
                found[k] = t
    return found


# ---------------------------------------------------------------------------------------------
# The limit: Hyper's COPY through the Python Hyper API (run in a process of its own).

def sql_type(name):
    """tabpub's column type name (as its result JSON writes it) in SQL."""
    t = name.lower()
    fixed = {"smallint": "SMALLINT", "integer": "INTEGER", "bigint": "BIGINT",
             "double": "DOUBLE PRECISION", "bool": "BOOLEAN", "date": "DATE", "time": "TIME",
             "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMP WITH TIME ZONE", "text": "TEXT"}
    if t in fixed:
        return fixed[t]
    if t.startswith("numeric"):
        return t.upper()
    raise ValueError(f"unknown column type {name}")


def hyper_copy_child(csv_path, out, columns_json, log_dir):
    """The child side: prints JSON timings (seconds since this script's first line)."""
    t0 = time.perf_counter()
    from tableauhyperapi import Connection, CreateMode, HyperProcess, Telemetry, escape_string_literal
    t_import = time.perf_counter()
    columns = json.loads(columns_json)
    decl = ", ".join('"' + c["name"].replace('"', '""') + '" ' + c["sql"] for c in columns)
    params = {"default_database_version": "2", "log_dir": log_dir}
    with HyperProcess(telemetry=Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters=params) as hyper:
        t_started = time.perf_counter()
        with Connection(hyper.endpoint, out, CreateMode.CREATE_AND_REPLACE) as conn:
            conn.execute_command('CREATE SCHEMA "Extract"')
            conn.execute_command(f'CREATE TABLE "Extract"."Extract" ({decl})')
            t_copy0 = time.perf_counter()
            rows = conn.execute_command(
                f'COPY "Extract"."Extract" FROM {escape_string_literal(csv_path)} '
                "WITH (FORMAT csv, HEADER true, NULL '')")
            t_copy1 = time.perf_counter()
        t_closed = time.perf_counter()
    t_end = time.perf_counter()
    print(json.dumps({"rows": rows, "import": t_import - t0, "hyper_start": t_started - t_import,
                      "copy": t_copy1 - t_copy0, "conn_close": t_closed - t_copy1,
                      "hyper_stop": t_end - t_closed, "in_script": t_end - t0}))


def hyper_copy(csv_path, out, columns, workdir):
    log_dir = os.path.join(workdir, "hyperapi-log")
    os.makedirs(log_dir, exist_ok=True)
    m = measure([sys.executable, os.path.abspath(__file__), "--hyper-copy-child", csv_path, out,
                 json.dumps(columns), log_dir])
    if m["rc"] != 0:
        sys.exit("Hyper API COPY failed:\n" + "\n".join(l for _, l in m["stderr"]))
    m["timings"] = json.loads(m["stdout"].strip().splitlines()[-1])
    return m


# ---------------------------------------------------------------------------------------------

def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = int(open("/proc/meminfo").readline().split()[1]) / 1024 / 1024
    return f"{os.cpu_count()} cores, {model}, {mem:.0f} GiB RAM, Linux {platform.release()}"


def versions(hyperd):
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
        except Exception:
            return "?"
    import tableauhyperapi
    return (f"{out([TABPUB, '--version'])}, {out(['rustc', '--version'])}, "
            f"tableauhyperapi {tableauhyperapi.__version__} (hyperd {hyperd}), Python {platform.python_version()}")


def find_hyperd():
    import tableauhyperapi
    return os.path.join(os.path.dirname(tableauhyperapi.__file__), "bin", "hyper", "hyperd")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--hyper-copy-child":
        hyper_copy_child(*sys.argv[2:6])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--workdir", default=None, help="parent of the temporary directory")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--output", default=os.path.join(ROOT, "target", "bench-rows.md"))
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="tp-bench-rows-", dir=args.workdir)
    lines = []

    def say(s=""):
        print(s, flush=True)
        lines.append(s)

    emu = None
    try:
        csv_path = os.path.join(workdir, "rows.csv")
        t = time.perf_counter()
        size = make_csv(csv_path, args.rows)
        gen_s = time.perf_counter() - t
        os.sync()
        print(f"generated {args.rows} rows, {size / MIB:.1f} MiB in {gen_s:.1f} s", flush=True)

        load_before = open("/proc/loadavg").read().split()[:3]
        emu = Emulator()
        # The whole command, rows -> .hyper -> published.
        emu_cpu0 = emu.cpu_seconds()
        tp = tabpub_publish(emu, workdir, csv_path, "rows")
        emu_cpu = emu.cpu_seconds() - emu_cpu0
        res = tp["result"]
        ext = res.get("extract") or {}
        assert ext.get("rows") == args.rows, f"tabpub built {ext.get('rows')} rows, not {args.rows}: {res}"
        cols = ext["columns"]
        # The result names each column's type under "type" (or "column_type").
        columns = [{"name": c["name"], "sql": sql_type(c.get("type") or c.get("column_type"))} for c in cols]
        ph = phases(tp["stderr"])
        tp_rss = peak_of(tp, "tabpub")
        tp_hyperd = peak_of(tp, "hyperd")
        print(f"tabpub: {tp['wall']:.2f} s, build {ext.get('seconds', 0):.2f} s, "
              f"own peak {tp_rss:.1f} MiB, hyperd {tp_hyperd:.1f} MiB, GNU time %M {tp['time_maxrss_mib']:.1f} MiB",
              flush=True)

        # The limit.
        os.sync()
        hyper_out = os.path.join(workdir, "limit.hyper")
        py = hyper_copy(csv_path, hyper_out, columns, workdir)
        pt = py["timings"]
        assert pt["rows"] == args.rows, pt
        py_hyperd = peak_of(py, "hyperd")
        print(f"Hyper API: script {py['wall']:.2f} s, COPY {pt['copy']:.2f} s", flush=True)

        # Where tabpub's time goes, measured apart: the sha256 of the built extract (the same
        # size as the limit's) and its upload alone (tabpub publishing the .hyper in place).
        hyper_size = os.path.getsize(hyper_out)
        t = time.perf_counter()
        h = hashlib.sha256()
        with open(hyper_out, "rb") as f:
            while True:
                b = f.read(8 * MIB)
                if not b:
                    break
                h.update(b)
        sha_s = time.perf_counter() - t
        up = tabpub_publish(emu, workdir, hyper_out, "limit_hyper")
        # Fixed costs of the rows path: a 1-row CSV.
        tiny = os.path.join(workdir, "tiny.csv")
        make_csv(tiny, 1)
        small = tabpub_publish(emu, workdir, tiny, "tiny")
        small_ext = small["result"]["extract"]
        emu.stop()
        emu = None

        rows = args.rows
        tp_rate = rows / tp["wall"]
        copy_rate = rows / pt["copy"]
        script_rate = rows / py["wall"]
        ratio_copy = pt["copy"] / tp["wall"]  # tabpub rate / limit rate
        ratio_script = py["wall"] / tp["wall"]
        say(f"## Rows -> .hyper benchmark ({machine()})")
        say()
        say(f"`tabpub publish --config C --input rows.csv` (build with hyperd, then publish to the emulator on "
            f"loopback, `--discard-data`, synchronous publish) against Hyper's own COPY of the same file "
            f"through the Python Hyper API. One run each.")
        say()
        say("| Measure | Value |")
        say("|---|---|")
        say(f"| Rows | {rows:,} |")
        say(f"| CSV | {size / MIB:.1f} MiB, {len(columns)} columns: "
            + ", ".join(f"{c['name']} {c['sql'].lower()}" for c in columns) + " |")
        say(f"| Built .hyper | {hyper_size / MIB:.1f} MiB (the limit's; tabpub's: {res['bytes'] / MIB:.1f} MiB) |")
        say(f"| tabpub whole command | **{tp['wall']:.2f} s**, **{tp_rate / 1e6:.2f} M rows/s** "
            f"({tp['cpu']:.1f} CPU-s: tabpub's own {cpu_by_name(tp, 'tabpub'):.2f}, hyperd's {cpu_by_name(tp, 'hyperd'):.1f}) |")
        say(f"| &nbsp;&nbsp;of which the build (tabpub's own figure: sample + hyperd start + COPY + stop) "
            f"| {ext.get('seconds', 0):.2f} s ({rows / ext['seconds'] / 1e6:.2f} M rows/s) |")
        if "build_done" in ph and "published" in ph:
            say(f"| &nbsp;&nbsp;after the build: sha256 of the .hyper, sign-in, upload, publish "
                f"| {ph['published'] - ph['build_done']:.2f} s "
                f"(build done -> signing in {ph.get('signing_in', 0) - ph['build_done']:.2f} s, "
                f"upload {ph.get('committing', ph.get('signing_out', 0)) - ph.get('upload_start', 0):.2f} s) |")
            say(f"| &nbsp;&nbsp;before the build (start, config, locate hyperd) | {ph.get('build_start', 0):.2f} s |")
        say(f"| Python Hyper API COPY only (the limit) | **{pt['copy']:.2f} s**, **{copy_rate / 1e6:.2f} M rows/s** |")
        say(f"| Python Hyper API whole script (interpreter, import {pt['import']:.2f} s, HyperProcess start "
            f"{pt['hyper_start']:.2f} s, COPY, close {pt['conn_close'] + pt['hyper_stop']:.2f} s) "
            f"| {py['wall']:.2f} s, {script_rate / 1e6:.2f} M rows/s |")
        say(f"| Ratio tabpub / limit (rows/s; vs COPY only) | **{ratio_copy:.2f}** |")
        say(f"| Ratio tabpub / limit (rows/s; vs whole script) | {ratio_script:.2f} |")
        say(f"| Peak RSS of tabpub itself (VmHWM polled) | **{tp_rss:.1f} MiB** |")
        say(f"| Peak RSS of tabpub's hyperd (VmHWM polled) | {tp_hyperd:.1f} MiB (the Hyper API's hyperd: {py_hyperd:.1f} MiB) |")
        folded = tp_hyperd > tp_rss and abs(tp["time_maxrss_mib"] - tp_hyperd) < max(2, tp_hyperd * 0.02)
        say(f"| GNU time %M of tabpub | {tp['time_maxrss_mib']:.1f} MiB "
            f"({'hyperd' + chr(39) + 's peak folded in (the waited child' + chr(39) + 's ru_maxrss), not tabpub' + chr(39) + 's' if folded else 'tabpub' + chr(39) + 's own'}) |")
        say(f"| Emulator CPU during the publish | {emu_cpu:.2f} s |")
        say(f"| Machine | {machine()} |")
        say(f"| Load average before / after the timed runs (other work on the machine skews a run) "
            f"| {' '.join(load_before)} / {' '.join(open('/proc/loadavg').read().split()[:3])} |")
        say(f"| Versions | {versions(find_hyperd())} |")
        say()
        say("Apart, for where the time goes:")
        say()
        say("| Part | Seconds |")
        say("|---|---|")
        say(f"| Generating the CSV (not counted) | {gen_s:.2f} |")
        say(f"| sha256 of the {hyper_size / MIB:.0f} MiB .hyper (Python hashlib, one core) | {sha_s:.2f} |")
        say(f"| `tabpub publish --input limit.hyper` (the built .hyper alone: hashed while uploading) | {up['wall']:.2f} "
            f"(peak RSS {peak_of(up, 'tabpub'):.1f} MiB) |")
        say(f"| `tabpub publish --input tiny.csv` (1 row: fixed costs) | {small['wall']:.2f} "
            f"(build {small_ext['seconds']:.2f}) |")
        say(f"| Python Hyper API: HyperProcess start / COPY / close + stop | {pt['hyper_start']:.2f} / {pt['copy']:.2f} / "
            f"{pt['conn_close'] + pt['hyper_stop']:.2f} |")
        life = hyperd_life(tp)
        if life:
            say(f"| tabpub, start -> hyperd running (config, locate hyperd, CSV sample + type inference, spawn) "
                f"| {life[0]:.2f} |")
            say(f"| tabpub's hyperd alive (start, CREATE/ATTACH, COPY, DETACH, shutdown) | {life[1] - life[0]:.2f} |")
        for label, m in (("tabpub's", tp), ("the Hyper API's", py)):
            q = queries(m)
            c = copy_query(m)
            if c:
                rest = sum(e for t, e, _ in q if not t.upper().startswith(("COPY", "INSERT")))
                say(f"| {label} hyperd log: COPY elapsed (execution CPU-s) / all other statements "
                    f"| {c[0]:.2f} ({c[1]:.2f}) / {rest:.2f} |")
        if life and "build_done" in ph:
            say(f"| tabpub, hyperd gone -> \"built the extract\" logged | {ph['build_done'] - life[1]:.2f} |")
        if "build_done" in ph and "signing_in" in ph:
            say(f"| tabpub, \"built\" -> \"signing in\" (sha256 of the built .hyper, before sign-in) "
                f"| {ph['signing_in'] - ph['build_done']:.2f} |")
        if "signing_in" in ph and "published" in ph:
            say(f"| tabpub, \"signing in\" -> published (sign-in, upload, publish, sign-out) "
                f"| {ph['published'] - ph['signing_in']:.2f} |")
        say(f"| tabpub process exit after \"published\" logged | {tp['wall'] - ph.get('published', tp['wall']):.2f} |")
        say()
        goals = [
            (f">= 1 M rows/s end to end", tp_rate >= GOAL_ROWS_PER_S, f"{tp_rate / 1e6:.2f} M rows/s"),
            (f">= {GOAL_RATIO}x the Python COPY limit", ratio_copy >= GOAL_RATIO, f"{ratio_copy:.2f}x"),
            (f"peak RSS of the host process <= {GOAL_RSS_MIB} MiB", tp_rss <= GOAL_RSS_MIB, f"{tp_rss:.1f} MiB"),
        ]
        say("| Goal | Measured | Met |")
        say("|---|---|---|")
        for goal, ok, value in goals:
            say(f"| {goal} | {value} | {'yes' if ok else '**no**'} |")
        say()
        say("tabpub --progress log (seconds since start):")
        say()
        say("```")
        for t, line in tp["stderr"]:
            if "uploading" in line and not line.endswith(" 0.0/" + line.rsplit("/", 1)[-1]):
                continue
            say(f"{t:7.2f} {line}")
        say("```")
    finally:
        if emu:
            emu.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
