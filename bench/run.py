#!/usr/bin/env python3
"""Side-by-side benchmark of tableau-publisher against Tableau's Python client (TSC 0.42) and a
raw curl upload, all against the same emulator on loopback, in one run. Prints a markdown
table and writes it to target/bench-results.md. Run through scripts/bench (which builds the
release binaries first). Not a test: numbers depend on the machine."""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(ROOT, "target", "release")
EMULATOR = os.path.join(REL, "tableau-emulator")
TABPUB = os.path.join(REL, "tabpub")
INGEST = os.path.join(REL, "examples", "ingest")
FINALIZE = os.path.join(REL, "examples", "finalize")
# Seconds between the last tp_feed_chunk and tp_finalize_and_publish: the tail of the host's
# upstream job, during which the background hash catches up with the 1 GiB fed at disk speed.
FEED_TAIL = 2.0
SAMPLE = os.path.join(ROOT, "tests", "fixtures", "sample.hyper")
MIB = 1024 * 1024
GIB = 1024 * MIB


def run_measured(cmd, env=None, stdin=None):
    """Runs cmd under GNU time (so this big Python process's pages are not counted in the
    child's peak RSS); returns (returncode, wall s, cpu s, peak RSS MiB, stdout, stderr)."""
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    stats = tempfile.NamedTemporaryFile(mode="r", suffix=".time")
    started = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", stats.name] + cmd,
                          stdout=out, stderr=err, env=env, stdin=stdin)
    wall = time.perf_counter() - started
    user, system, rss_kib = stats.read().split()[-3:]
    out.seek(0)
    err.seek(0)
    return (proc.returncode, wall, float(user) + float(system), int(rss_kib) / 1024,
            out.read().decode(), err.read().decode())


def make_file(path, size):
    """A .hyper header followed by pseudo-random bytes (a 64 MiB random block repeated)."""
    header = open(SAMPLE, "rb").read()
    block = os.urandom(64 * MIB)
    with open(path, "wb") as f:
        f.write(header[: min(len(header), size)])
        left = size - min(len(header), size)
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n


class Emulator:
    def __init__(self):
        self.proc = subprocess.Popen(
            [EMULATOR, "--listen", "127.0.0.1:0", "--discard-data", "--quiet", "--exit-on-stdin-eof"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.url = self.proc.stdout.readline().decode().strip()

    def get(self, path):
        with urllib.request.urlopen(self.url + path) as r:
            return json.loads(r.read())

    def call(self, method, path, body=None, headers=None):
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        with urllib.request.urlopen(req) as r:
            return r.read().decode()

    def cpu_seconds(self):
        """User + system CPU time the emulator process has used so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def tabpub_config(workdir, url, name, chunk):
    cfg = {
        "server_url": url, "site": "",
        "auth": {"method": "pat", "token_name": "ci", "token_secret": "ci-secret"},
        "project": "default", "datasource_name": name, "mode": "overwrite",
        "spool_dir": workdir, "chunk_size_bytes": chunk,
        # Like TSC and curl here: a synchronous publish, so all three do the same requests.
        "as_job": False,
    }
    path = os.path.join(workdir, f"{name}.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def tabpub_publish(emu, workdir, path, name, chunk):
    rc, wall, cpu, rss, out, err = run_measured(
        [TABPUB, "publish", "--config", tabpub_config(workdir, emu.url, name, chunk), "--input", path])
    if rc != 0:
        sys.exit(f"tabpub failed: {err}")
    return wall, cpu, rss, json.loads(out)


def tabpub_finalize(emu, workdir, path, name, chunk):
    """The plugin's own path: fed through tp_feed_chunk, then tp_finalize_and_publish timed alone."""
    rc, _, cpu, rss, out, err = run_measured(
        [FINALIZE, tabpub_config(workdir, emu.url, name, chunk), path, str(FEED_TAIL)])
    if rc != 0:
        sys.exit(f"finalize failed: {err}")
    timings, result = out.split("\n", 1)
    return float(timings.split()[1]), cpu, rss, json.loads(result)


def tsc_publish(emu, path, name, chunk):
    env = dict(os.environ, TSC_CHUNK_SIZE_MB=str(chunk // MIB))
    rc, wall, cpu, rss, out, err = run_measured(
        [sys.executable, os.path.join(ROOT, "bench", "tsc_publish.py"), emu.url, path, name], env=env)
    if rc != 0:
        sys.exit(f"TSC failed: {err}")
    return float(out.strip()), cpu, rss


def sign_in(emu):
    import xml.etree.ElementTree as ET
    body = ('<tsRequest><credentials personalAccessTokenName="ci" personalAccessTokenSecret="ci-secret">'
            '<site contentUrl=""/></credentials></tsRequest>').encode()
    root = ET.fromstring(emu.call("POST", "/api/3.25/auth/signin", body, {"Content-Type": "text/xml"}))
    ns = {"t": "http://tableau.com/api"}
    creds = root.find("t:credentials", ns)
    return creds.get("token"), creds.find("t:site", ns).get("id")


def raw_session(emu, token, site):
    import xml.etree.ElementTree as ET
    root = ET.fromstring(emu.call("POST", f"/api/3.25/sites/{site}/fileUploads", b"", {"X-Tableau-Auth": token}))
    return root.find("{http://tableau.com/api}fileUpload").get("uploadSessionId")


def curl_appends(emu, token, site, session, pieces):
    """One curl process, one kept-alive connection, one PUT per piece."""
    url = f"{emu.url}/api/3.25/sites/{site}/fileUploads/{urllib.parse.quote(session, safe='')}"
    args = ["curl", "-sS", "--fail"]
    for i, piece in enumerate(pieces):
        if i:
            args.append("--next")
        args += ["-o", "/dev/null", "-X", "PUT", "-H", f"X-Tableau-Auth: {token}",
                 "-H", "Content-Type: multipart/mixed",
                 "-F", "request_payload=;type=text/xml",
                 "-F", f"tableau_file=@{piece};filename=file;type=application/octet-stream", url]
    return args


def split_pieces(path, workdir, chunk):
    """The file split into chunk-sized pieces on disk (untimed), written back like the other
    uploaders' input, so no writeback runs during the timed upload. Returns (dir, paths)."""
    piece_dir = os.path.join(workdir, "pieces")
    os.makedirs(piece_dir, exist_ok=True)
    subprocess.run(["split", "-b", str(chunk), "-d", "-a", "4", path, os.path.join(piece_dir, "p")], check=True)
    os.sync()
    return piece_dir, sorted(os.path.join(piece_dir, p) for p in os.listdir(piece_dir))


def raw_upload(emu, path, workdir, chunk, name):
    """curl sending the same chunks (split beforehand, untimed), then the commit."""
    piece_dir, pieces = split_pieces(path, workdir, chunk)
    token, site = sign_in(emu)
    projects = emu.call("GET", f"/api/3.25/sites/{site}/projects?filter=name:eq:default", None, {"X-Tableau-Auth": token})
    project = projects.split('project id="')[1].split('"')[0]
    started = time.perf_counter()
    session = raw_session(emu, token, site)
    rc, _, cpu, _, _, err = run_measured(curl_appends(emu, token, site, session, pieces))
    if rc != 0:
        sys.exit(f"curl failed: {err}")
    payload = f'<tsRequest><datasource name="{name}"><project id="{project}"/></datasource></tsRequest>'
    body = ("--b\r\nContent-Disposition: name=\"request_payload\"\r\nContent-Type: text/xml\r\n\r\n"
            + payload + "\r\n--b--\r\n").encode()
    emu.call("POST", f"/api/3.25/sites/{site}/datasources?uploadSessionId={urllib.parse.quote(session, safe='')}"
             f"&datasourceType=hyper&overwrite=true", body,
             {"X-Tableau-Auth": token, "Content-Type": "multipart/mixed; boundary=b"})
    wall = time.perf_counter() - started
    shutil.rmtree(piece_dir)
    return wall, cpu


def sink_rate(emu, path, workdir, chunk):
    """Two curl processes uploading half the chunks each at once: what the emulator absorbs."""
    piece_dir, pieces = split_pieces(path, workdir, chunk)
    token, site = sign_in(emu)
    halves = [pieces[0::2], pieces[1::2]]
    cmds = [curl_appends(emu, token, site, raw_session(emu, token, site), h) for h in halves]
    started = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL) for c in cmds]
    for p in procs:
        if p.wait() != 0:
            sys.exit("curl failed")
    wall = time.perf_counter() - started
    shutil.rmtree(piece_dir)
    return os.path.getsize(path) / wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024, help="upload size (default 1 GiB)")
    ap.add_argument("--chunk-mib", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rss-sizes-mib", default="100,1024,4096")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--upload-only", action="store_true", help="skip the memory and ingest parts")
    args = ap.parse_args()
    chunk = args.chunk_mib * MIB
    workdir = tempfile.mkdtemp(prefix="tp-bench-", dir=args.workdir)
    lines = []

    def say(s=""):
        print(s, flush=True)
        lines.append(s)

    try:
        size = args.size_mib * MIB
        big = os.path.join(workdir, "upload.hyper")
        make_file(big, size)
        emu = Emulator()

        # Upload throughput, side by side.
        ours, in_place, theirs, raw = [], [], [], []
        cpu_ours, rss_ours, rss_tsc, cpu_emu = [], [], [], []
        for i in range(args.repeat):
            os.sync()
            emu_before = emu.cpu_seconds()
            wall, _, peak, result = tabpub_finalize(emu, workdir, big, f"fin{i}", chunk)
            cpu_emu.append(emu.cpu_seconds() - emu_before)
            assert result["bytes"] == size and len(result["sha256"]) == 64, result
            ours.append(wall)
            rss_ours.append(peak)
            wall, cpu, peak, _ = tabpub_publish(emu, workdir, big, f"tp{i}", chunk)
            in_place.append(wall)
            cpu_ours.append(cpu)
            rss_ours.append(peak)
            t, _, peak = tsc_publish(emu, big, f"tsc{i}", chunk)
            theirs.append(t)
            rss_tsc.append(peak)
            w, _ = raw_upload(emu, big, workdir, chunk, f"raw{i}")
            raw.append(w)
        sink = sink_rate(emu, big, workdir, chunk)
        t_ours, t_place, t_tsc, t_raw = (statistics.median(x) for x in (ours, in_place, theirs, raw))
        mbps = lambda t: size / t / MIB

        say(f"## Benchmark ({platform.node()}: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
            f"{open('/proc/meminfo').readline().split()[1] and round(int(open('/proc/meminfo').readline().split()[1]) / 1024 / 1024)} GiB)")
        say()
        say(f"Upload of {args.size_mib} MiB in {args.chunk_mib} MiB chunks to the emulator on loopback "
            f"(`--discard-data`), median of {args.repeat}:")
        say()
        say("| Uploader | Seconds | MiB/s | vs tabpub | Peak RSS MiB |")
        say("|---|---|---|---|---|")
        say(f"| tabpub: `tp_finalize_and_publish` after the bytes were fed with `tp_feed_chunk` (and hashed "
            f"meanwhile); signs in, uploads, publishes, signs out "
            f"| {t_ours:.2f} | {mbps(t_ours):.0f} | 1.00 | {max(rss_ours):.0f} |")
        say(f"| tabpub publish --input FILE (whole process: the file in place, hashed while uploading) "
            f"| {t_place:.2f} | {mbps(t_place):.0f} | {t_ours / t_place:.2f} | - |")
        say(f"| TSC 0.42 (the publish call only) | {t_tsc:.2f} | {mbps(t_tsc):.0f} | {t_ours / t_tsc:.2f} "
            f"| {max(rss_tsc):.0f} |")
        say(f"| curl, same chunks pre-split, one connection (raw baseline) | {t_raw:.2f} | {mbps(t_raw):.0f} "
            f"| {t_ours / t_raw:.2f} | - |")
        emu_per_gib = statistics.median(cpu_emu) / (size / GIB)
        say(f"| emulator sink alone (2 curl streams at once) | - | {sink / MIB:.0f} | - | - |")
        say()
        say(f"The emulator used {emu_per_gib:.2f} CPU-s per GiB it received from tabpub: one core of it "
            f"absorbs about {GIB / MIB / emu_per_gib:.0f} MiB/s.")
        say()
        say(f"tabpub's finalize is **{t_tsc / t_ours:.1f}x** TSC's throughput and **{t_raw / t_ours:.2f}x** the raw "
            f"baseline's (targets: >= 3x and >= 0.8x); publishing a file in place (hashing it on the way) is "
            f"{t_tsc / t_place:.1f}x and {t_raw / t_place:.2f}x. CPU of `tabpub publish --input FILE`: "
            f"**{statistics.median(cpu_ours) / (size / GIB):.2f} s per GiB** published.")
        if args.upload_only:
            return
        say()

        # Peak memory.
        say("| Publish size | Peak RSS of tabpub (MiB) |")
        say("|---|---|")
        rss = []
        for mib in [int(x) for x in args.rss_sizes_mib.split(",")]:
            path = os.path.join(workdir, f"rss-{mib}.hyper")
            make_file(path, mib * MIB)
            _, _, peak, _ = tabpub_publish(emu, workdir, path, f"rss{mib}", chunk)
            os.remove(path)
            rss.append(peak)
            say(f"| {mib} MiB | {peak:.1f} |")
        say()
        say(f"Target: flat, and <= 2 x chunk + 32 MiB = {2 * args.chunk_mib + 32} MiB.")
        say()

        # Requests of a small publish.
        path = os.path.join(workdir, "small.hyper")
        make_file(path, MIB)
        before = len(emu.get("/_emulator/requests"))
        tabpub_publish(emu, workdir, path, "small", chunk)
        reqs = emu.get("/_emulator/requests")[before:]
        say(f"A 1 MiB publish makes {len(reqs)} requests:")
        say()
        for r in reqs:
            say(f"- `{r['method']} {r['path'].split('/sites/')[0] if '/sites/' not in r['path'] else '/sites/{site}' + r['path'].split('/sites/')[1][36:]}` -> {r['status']}")
        say()
        emu.stop()

        # Ingest.
        say("| Ingest of 1 GiB | tp_feed_chunk MiB/s | dd MiB/s | ratio |")
        say("|---|---|---|---|")
        src = big if size == GIB else os.path.join(workdir, "src.hyper")
        if src != big:
            make_file(src, GIB)
        out_dir = os.path.join(workdir, "ingest")
        os.makedirs(out_dir, exist_ok=True)
        for block in (4 * 1024, 64 * 1024, MIB):
            feeds, dds = [], []
            for i in range(args.repeat + 1):
                os.sync()
                rc, _, _, _, out, err = run_measured([INGEST, src, out_dir, str(block)])
                if rc != 0:
                    sys.exit(f"ingest failed: {err}")
                os.sync()
                target = os.path.join(out_dir, "dd.out")
                _, wall, _, _, _, _ = run_measured(["dd", f"if={src}", f"of={target}", f"bs={block}"])
                os.remove(target)
                if i == 0:
                    continue  # warm-up: the first write after a large delete is throttled by writeback
                feeds.append(GIB / float(out.split()[0]) / MIB)
                dds.append(GIB / wall / MIB)
            f, d = statistics.median(feeds), statistics.median(dds)
            say(f"| {block // 1024} KiB chunks | {f:.0f} | {d:.0f} | {f / d:.2f} |")
        say()
        say("Target: >= 0.9 x dd at 64 KiB chunks and above. (The spool buffers and writes; a background thread "
            "hashes what was written.)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    with open(os.path.join(ROOT, "target", "bench-results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
